"""Login, logout, the forced first-login password change (R2) and the language switch."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import InputRequired

from engine.users import MIN_PASSWORD_LENGTH, PasswordPolicyError

from .context import tenant
from .i18n import LANGUAGES, gettext as _
from .security import WebUser, safe_next

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired()])
    password = PasswordField("Password", validators=[InputRequired()])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired()])
    new = PasswordField("New password", validators=[InputRequired()])
    confirm = PasswordField("Confirm new password", validators=[InputRequired()])


def client_ip() -> str:
    """The peer address (a reverse proxy must be configured with ProxyFix to pass the real one)."""
    return request.remote_addr or "unknown"


def _sign_in(account) -> None:
    lang = session.get("lang")
    session.clear()  # no fixation: a fresh session for the signed-in user
    if lang:
        session["lang"] = lang
    login_user(WebUser(account))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next"), url_for("home.index")))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        result = tenant().users.authenticate(form.username.data, form.password.data, client_ip())
        if result.ok:
            _sign_in(result.user)
            target = safe_next(request.args.get("next"), url_for("home.index"))
            if result.user.must_change_password:
                return redirect(url_for("auth.change_password", next=target))
            return redirect(target)
        status = 429 if result.reason == "throttled" else 401
        error = (_("Too many failed attempts. Try again in 15 minutes.") if result.reason == "throttled"
                 else _("Invalid username or password."))
    elif request.method == "POST":
        status = 400
        error = _("Invalid username or password.")
    return render_template("auth/login.html", form=form, error=error), status


@bp.route("/logout", methods=["POST"])
def logout():
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have been signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
def change_password():
    form = PasswordForm()
    errors: dict[str, list[str]] = {}
    forced = current_user.must_change_password
    if form.validate_on_submit():
        if form.new.data != form.confirm.data:
            errors["confirm"] = [_("The two passwords do not match.")]
        else:
            try:
                account = tenant().users.change_password(current_user.username, form.current.data,
                                                         form.new.data)
            except PasswordPolicyError as exc:
                field = "current" if exc.key == "password_wrong" else "new"
                errors[field] = [_(exc.key, **exc.params)]
            else:
                _sign_in(account)  # the epoch moved on: other sessions end, this one continues
                flash(_("Password changed."), "success")
                return redirect(safe_next(request.args.get("next"), url_for("home.index")))
    elif request.method == "POST":
        for name, msgs in form.errors.items():
            errors[name] = [_("This field is required.") for _m in msgs]
    status = 422 if errors else 200
    return render_template("auth/password.html", form=form, errors=errors, forced=forced,
                           min_length=MIN_PASSWORD_LENGTH), status


@bp.route("/language", methods=["POST"])
def set_language():
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
        if current_user.is_authenticated and not current_user.via_token:
            tenant().users.set_locale(current_user.id, lang)
    return redirect(safe_next(request.form.get("next"), url_for("home.index")))
