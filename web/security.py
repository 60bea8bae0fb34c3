"""Sign-in plumbing: Flask-Login with session epochs, Bearer tokens for the API, CSRF on every POST."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from .context import tenant
from .i18n import gettext

# Endpoints reachable without signing in.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "auth.set_language", "static", "health"})
# Endpoints a user who must change the initial password may still reach.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout", "auth.set_language",
                                       "static", "health"})


def tenant_identity(app) -> str:
    """The tenant this app's sessions belong to: its name and its database's random id."""
    state = app.extensions["formwork"]
    current = state.tenant
    instance = current.instance_id
    if not instance:
        # Not migrated yet: sessions must still not be valid for another tenant, so sign them
        # with a random stand-in kept by this app (they end when it restarts).
        instance = state.extra.setdefault("unmigrated_session_id", secrets.token_hex(16))
    return f"{current.name}:{instance}"


class TenantSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions with the tenant's identity in the signing salt: a cookie of
    one tenant does not verify for another even when both are configured with the same SECRET_KEY."""

    def get_signing_serializer(self, app):
        serializer = super().get_signing_serializer(app)
        if serializer is not None:
            serializer.salt = f"{self.salt}:{tenant_identity(app)}".encode()
        return serializer


class WebUser:
    """Flask-Login's view of an engine User; the id carries the user's credential version (the
    session epoch, R44) and the tenant's database id, and a session whose id no longer matches
    both is treated as signed out."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user, via_token: bool = False):
        self.user = user
        self.via_token = via_token

    @property
    def is_active(self) -> bool:
        return self.user.active

    def get_id(self) -> str:
        return f"{self.user.id}.{self.user.session_epoch}.{tenant().instance_id or ''}"

    def __getattr__(self, name):
        return getattr(self.user, name)


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer …` header, "" for a malformed header, None for none."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else ""


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def safe_next(target: str | None, default: str) -> str:
    """Only same-site relative paths are followed after login or a language switch."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7f for c in target):
        # Control characters: a newline cannot go into a Location header, and browsers drop tabs
        # and newlines from URLs ("/\t/evil.example" would become "//evil.example").
        return default
    return target


def init_app(app) -> None:
    """Attach tenant-bound sessions, a LoginManager and CSRFProtect owned by this app (no
    module-level state)."""
    app.session_interface = TenantSessionInterface()
    login_manager = LoginManager()
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.init_app(app)

    @login_manager.user_loader
    def load_user(user_id: str):
        if bearer_token() is not None:
            return None  # an Authorization header decides alone; the session is ignored
        try:
            raw_id, raw_epoch, instance = user_id.split(".", 2)
            account = tenant().users.get(int(raw_id))
            epoch = int(raw_epoch)
        except (ValueError, TypeError):
            account = epoch = instance = None
        if account is None or not account.active or account.session_epoch != epoch \
                or instance != (tenant().instance_id or ""):
            session.pop("_user_id", None)
            session["ended"] = True
            return None
        return WebUser(account)

    @login_manager.request_loader
    def load_user_from_request(req):
        token = bearer_token()
        if not token:
            return None
        account = tenant().users.user_for_token(token)
        return WebUser(account, via_token=True) if account else None

    @login_manager.unauthorized_handler
    def unauthorized():
        if is_api_request():
            return api_error(401, "authentication required: send `Authorization: Bearer <token>`")
        if request.headers.get("HX-Request"):
            resp = app.response_class(status=401)
            resp.headers["HX-Redirect"] = url_for("auth.login")
            return resp
        ended = session.pop("ended", False)
        nxt = request.full_path if request.method == "GET" else None
        if nxt and nxt.endswith("?"):
            nxt = nxt[:-1]
        from flask import flash
        flash(gettext("Your session has ended. Please sign in again.") if ended
              else gettext("Please sign in to continue."), "info")
        return redirect(url_for("auth.login", next=nxt if nxt and nxt != "/" else None))

    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # tied to the session instead
    csrf = CSRFProtect(app)
    app.extensions["formwork_csrf"] = csrf

    @app.before_request
    def gatekeeper():
        endpoint = request.endpoint or ""
        # Bearer-authenticated API calls cannot be forged by a browser; everything else is checked.
        # An API call with no valid sign-in at all is answered 401 below, not a CSRF 400.
        if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE") \
                and not (is_api_request() and (bearer_token() or not current_user.is_authenticated)):
            csrf.protect()
        if endpoint in PUBLIC_ENDPOINTS:
            return None
        if is_api_request() and bearer_token() is not None and not current_user.is_authenticated:
            return api_error(401, "invalid or revoked token")
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        if current_user.must_change_password and not current_user.via_token \
                and endpoint not in PASSWORD_CHANGE_ENDPOINTS:
            if is_api_request():
                return api_error(403, "the initial password must be changed first")
            return redirect(url_for("auth.change_password", next=request.full_path.rstrip("?")))
        return None


def api_error(status: int, message: str, **extra):
    body = {"error": message}
    body.update(extra)
    resp = jsonify(body)
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="formwork"'
    return resp
