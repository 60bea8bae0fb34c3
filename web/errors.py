"""Error pages and JSON errors: 404/400/500 rendered in the user's language, never a traceback."""
from __future__ import annotations

from flask import flash, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from engine.errors import BadRequest, Locked, NotFound
from engine.permissions import PermissionDenied

from .i18n import gettext as _
from .security import api_error, is_api_request, safe_next


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        if is_api_request():
            return api_error(400, f"CSRF check failed: {exc.description}")
        flash(_("The form expired; please try again."), "error")
        return redirect(safe_next(request.full_path.rstrip("?") if request.method == "GET"
                                  else request.path, "/"))

    @app.errorhandler(NotFound)
    def not_found(exc):
        if is_api_request():
            return api_error(404, str(exc) or "not found")
        return render_template("errors/error.html", code=404, title=_("Page not found"),
                               message=_("The page or record you asked for does not exist.")), 404

    @app.errorhandler(PermissionDenied)
    def forbidden(exc):
        if is_api_request():
            return api_error(403, str(exc))
        return render_template("errors/error.html", code=403, title=_("Not allowed"),
                               message=str(exc)), 403

    @app.errorhandler(Locked)
    def locked(exc):
        """A write refused because a pending approval froze the record or some of its fields (R4)."""
        if is_api_request():
            return api_error(423, str(exc), fields=exc.fields, approval_id=exc.approval_id)
        return render_template("errors/error.html", code=423, title=_("Locked by a pending approval"),
                               message=str(exc)), 423

    @app.errorhandler(BadRequest)
    def bad_request(exc):
        if is_api_request():
            return api_error(400, str(exc))
        return render_template("errors/error.html", code=400, title=_("Something went wrong"),
                               message=str(exc)), 400

    @app.errorhandler(500)
    def server_error(exc):
        if is_api_request():
            return api_error(500, "internal error; the server log has the details")
        try:
            return render_template("errors/error.html", code=500, title=_("Something went wrong"),
                                   message=_("The request could not be completed.")), 500
        except Exception:  # noqa: BLE001 - the error page itself must not fail
            return "Internal Server Error", 500

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if is_api_request():
            return api_error(exc.code or 500, exc.description or exc.name)
        title = _("Page not found") if exc.code == 404 else _("Something went wrong")
        message = (_("The page or record you asked for does not exist.") if exc.code == 404
                   else _("The request could not be completed."))
        return render_template("errors/error.html", code=exc.code, title=title,
                               message=message), exc.code
