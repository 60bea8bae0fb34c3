"""Administration pages (admins only: an `all: true` role): users and the departure flow (R44),
departments, roles with an effective-permission viewer, and the export log (R42)."""
from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from engine.departure import depart, owned_counts
from engine.errors import FormworkError
from engine.ids import as_id
from engine.permissions import ACTIONS, FLAG_ACTIONS, PermissionDenied
from engine.records.ownership import successor_for
from engine.users import MIN_PASSWORD_LENGTH, UserError

from .context import records, tenant
from .i18n import gettext as _, label
from .sharing import departments

bp = Blueprint("admin", __name__, url_prefix="/admin")
EXPORT_LOG_PAGE = 100


def _perms():
    return records().permissions


def is_admin_user() -> bool:
    user = getattr(current_user, "user", None)
    return user is not None and _perms().is_superuser(user)


@bp.app_context_processor
def inject():
    return {"is_admin_user": is_admin_user}


@bp.before_request
def admins_only():
    if not is_admin_user():
        raise PermissionDenied(_("Only administrators may open this page."))


def _user_error(exc: FormworkError) -> str:
    if isinstance(exc, UserError):
        translated = _(exc.key, **exc.params)
        return translated if translated != exc.key else str(exc)
    return str(exc)


def _role_labels() -> dict[str, str]:
    roles = tenant().model.config.get("roles") or {}
    out = {"admin": _("Administrator")}
    for name, spec in roles.items():
        raw = (spec or {}).get("label")
        if isinstance(raw, dict):
            from .i18n import get_lang
            out[name] = raw.get(get_lang()) or next(iter(raw.values()), name)
        else:
            out[name] = raw or name
    return out


# ------------------------------------------------------------------------------------------ users

@bp.get("/")
def index():
    return redirect(url_for("admin.users"))


def _users_page(shown: dict | None = None):
    """The users page; `shown` carries a generated password to show once in this body.

    A password never travels in a flash message: flashes live in the session cookie, which the
    browser stores and sends back. The page answering the POST shows it and is never cached."""
    accounts = tenant().users.list()
    resp = make_response(render_template(
        "admin/users.html", accounts=accounts, roles=_role_labels(), departments=departments(),
        dept_names=dict(departments()), admin_tab="users", form=request.args, shown=shown,
        min_password_length=MIN_PASSWORD_LENGTH))
    if shown:
        resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/users")
def users():
    return _users_page()


@bp.post("/users")
def add_user():
    f = request.form
    try:
        account, generated = tenant().users.add(
            f.get("username", ""), f.getlist("roles"), department=f.get("department") or None,
            password=f.get("password") or None, manages=f.getlist("manages"),
            display_name=f.get("display_name") or None, email=f.get("email") or None)
    except FormworkError as exc:
        flash(_user_error(exc), "error")
        return redirect(url_for("admin.users"))
    flash(_("Created user %(user)s.", user=account.username), "success")
    if generated:
        return _users_page({"password": generated, "message": _(
            "Initial password for %(user)s (shown only here, once; it must be changed at first login):",
            user=account.username)})
    return redirect(url_for("admin.users"))


def _account(username):
    account = tenant().users.by_username(username)
    if account is None:
        from engine.errors import NotFound
        raise NotFound(_("No such user."))
    return account


@bp.route("/users/<username>/disable", methods=["GET", "POST"])
def disable_user(username):
    """Departure (R44): the account stops at once and its records go to a successor."""
    account = _account(username)
    if request.method == "POST":
        if account.id == current_user.user.id:
            flash(_("You cannot disable your own account."), "error")
            return redirect(url_for("admin.users"))
        try:
            result = depart(tenant(), username, request.form.get("transfer_to") or None, by=current_user.user)
        except FormworkError as exc:
            flash(_user_error(exc), "error")
            return redirect(url_for("admin.disable_user", username=username))
        flash(_("Disabled %(user)s; sessions and API tokens stopped.", user=username), "success")
        if result.counts:
            flash(_("Handed %(n)s records over to %(user)s.", n=result.total, user=result.successor), "success")
        return redirect(url_for("admin.users"))
    successor = successor_for(tenant(), account)
    return render_template("admin/disable.html", account=account, owned=owned_counts(tenant(), account),
                           successor=successor, entities=tenant().model.entities,
                           candidates=[u for u in tenant().users.list(include_inactive=False) if u.id != account.id],
                           admin_tab="users")


@bp.post("/users/<username>/enable")
def enable_user(username):
    _account(username)
    tenant().users.enable(username)
    flash(_("Enabled %(user)s.", user=username), "success")
    return redirect(url_for("admin.users"))


@bp.post("/users/<username>/reset-password")
def reset_password(username):
    _account(username)
    _user, generated = tenant().users.reset_password(username)
    message = _("New password for %(user)s (shown only here, once; it must be changed at next login; other sessions and API tokens were ended):", user=username)  # noqa: E501 - one string for the i18n check
    return _users_page({"password": generated, "message": message})


# ------------------------------------------------------------------------------------------ departments

@bp.get("/departments")
def departments_view():
    config = tenant().model.config.get("departments") or {}
    labels = dict(departments())
    accounts = tenant().users.list()
    nodes = {name: {"name": name, "label": labels.get(name, name), "children": [],
                    "managers": [u for u in accounts if name in (u.manages or [])],
                    "members": [u for u in accounts if u.department == name]} for name in config}
    roots = []
    for name, spec in config.items():
        parent = (spec or {}).get("parent")
        (nodes[parent]["children"] if parent in nodes else roots).append(nodes[name])
    return render_template("admin/departments.html", roots=roots, admin_tab="departments")


# ------------------------------------------------------------------------------------------ roles

def _grant_text(g) -> str:
    text = {"none": _("none"), "own": _("own records"), "department": _("own department"),
            "department_tree": _("department and below"), "all": _("all records")}.get(g.scope, g.scope)
    if g.where_expr is not None:
        text += " " + _("where %(condition)s", condition=g.where_expr.source)
    return text


def effective(user, entity) -> dict:
    """What `user` may do with `entity`, per action with the scopes that allow it, and per field."""
    perms = _perms()
    rows = []
    for action in ACTIONS:
        allowed = perms.can(entity, user, action)
        scopes = []
        if allowed and perms.is_superuser(user):
            scopes = [_("all records")]
        elif allowed and action not in FLAG_ACTIONS:
            for role in perms._user_roles(user):
                g = role.grants.get(entity.name, {}).get(action)
                if g is not None and g.scope != "none":
                    scopes.append(f"{_grant_text(g)} ({role.name})")
        rows.append({"action": action, "allowed": allowed, "scopes": scopes})
    limit = perms.export_limit(entity, user) if perms.can(entity, user, "export") else None
    access = perms.field_access(entity, user)
    fields = [{"name": n, "label": label(f.label) or n, "access": access.get(n, "hidden")}
              for n, f in entity.fields.items()]
    return {"actions": rows, "export_limit": limit, "fields": fields}


@bp.get("/roles")
def roles():
    perms = _perms()
    matrix = perms.matrix()
    by_role: dict[str, list] = {}
    for row in matrix:
        by_role.setdefault(row["role"], []).append(row)
    accounts = tenant().users.list()
    entities = [e for e in tenant().model.entities.values() if not e.is_child]
    chosen_user = request.args.get("user") or ""
    chosen_entity = request.args.get("entity") or ""
    result = None
    if chosen_user and chosen_entity:
        account = tenant().users.by_username(chosen_user)
        entity = tenant().model.entities.get(chosen_entity)
        if account is None or entity is None:
            flash(_("Choose a user and an entity."), "error")
        else:
            result = {"user": account, "entity": entity, **effective(account, entity)}
    return render_template("admin/roles.html", by_role=by_role, role_labels=_role_labels(),
                           entity_labels={e.name: label(e.label) or e.name for e in tenant().model.entities.values()},
                           accounts=accounts, entities=entities, chosen_user=chosen_user,
                           chosen_entity=chosen_entity, result=result, actions=ACTIONS, admin_tab="roles")


# ------------------------------------------------------------------------------------------ export log

@bp.get("/exports")
def exports():
    table = records().schema.system["exports"]
    before = as_id(request.args.get("before") or "") or 0
    stmt = sa.select(table).order_by(table.c.id.desc()).limit(EXPORT_LOG_PAGE + 1)
    if before:
        stmt = stmt.where(table.c.id < before)
    with tenant().db.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    more = len(rows) > EXPORT_LOG_PAGE
    rows = rows[:EXPORT_LOG_PAGE]
    tz = tenant().timezone
    for r in rows:
        at = r["at"]
        if at is not None and at.tzinfo is None:
            from datetime import timezone
            at = at.replace(tzinfo=timezone.utc)
        r["when"] = at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if at else ""
        try:
            flt = json.loads(r["filters"] or "{}")
        except ValueError:
            flt = {}
        r["filter_text"] = ", ".join(f"{k}={v}" for k, v in flt.items())
    entity_labels = {e.name: label(e.label) or e.name for e in tenant().model.entities.values()}
    return render_template("admin/exports.html", rows=rows, entity_labels=entity_labels,
                           next_before=rows[-1]["id"] if more and rows else None, admin_tab="exports")
