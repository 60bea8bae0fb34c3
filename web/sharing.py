"""Who a record belongs to, from the pages: sharing (R34), transfer of one or many records, and the
CSV export of a list (R42). Every decision is the engine's (engine.records.ownership, records.export)."""
from __future__ import annotations

import io

from flask import Blueprint, Response, flash, redirect, request, url_for
from flask_login import current_user

from engine.errors import BadRequest, FormworkError, NotFound, ValidationFailed
from engine.i18n import message
from engine.permissions import PermissionDenied
from engine.records import ownership

from . import access
from .context import records, tenant
from .i18n import get_locale, gettext as _, label
from .listing import ListQuery
from .security import safe_next

bp = Blueprint("sharing", __name__, url_prefix="/e")


def _entity(name: str):
    ent = tenant().model.entities.get(name)
    if ent is None or ent.is_child:
        raise NotFound(message("not_found", get_locale()))
    return ent


def _me():
    return current_user.user


def _error_text(exc: FormworkError) -> str:
    if isinstance(exc, ValidationFailed):
        return "; ".join(m for msgs in exc.errors.values() for m in msgs) or str(exc)
    return str(exc)


def _detail(ent, record_id):
    return redirect(url_for("entities.detail", entity=ent.name, record_id=record_id) + "#sharing")


def active_users() -> list:
    return tenant().users.list(include_inactive=False)


def departments() -> list[tuple[str, str]]:
    depts = tenant().model.config.get("departments") or {}
    return [(name, label(_dept_label(spec)) or name) for name, spec in depts.items()]


def _dept_label(spec):
    raw = (spec or {}).get("label") if isinstance(spec, dict) else None
    if isinstance(raw, dict):
        from .i18n import get_lang
        return raw.get(get_lang()) or next(iter(raw.values()), None)
    return raw


def record_sharing(ent, rec) -> dict:
    """What the detail page shows about ownership: the shares, and whether the user may change them."""
    try:
        shares = ownership.shares_of(tenant(), ent.name, rec["id"], _me())
    except FormworkError:
        shares = []
    manage = access.can_on(ent, "transfer", rec)
    dept_names = dict(departments())
    for s in shares:
        s["department_label"] = dept_names.get(s["department"], s["department"]) if s["department"] else None
    return {"shares": shares, "manage": manage,
            "users": [u for u in active_users() if u.id != rec.get("owner")] if manage else [],
            "departments": departments() if manage else []}


@bp.app_context_processor
def inject():
    return {"record_sharing": record_sharing, "transfer_targets": active_users}


@bp.post("/<entity>/<int:record_id>/share")
def share(entity, record_id):
    ent = _entity(entity)
    kind, _sep, who = (request.form.get("with") or "").partition(":")
    who = who.strip()
    if kind not in ("user", "department"):
        who = ""
    if not who:
        flash(_("Choose a user or a department to share with."), "error")
        return _detail(ent, record_id)
    try:
        ownership.share(tenant(), ent.name, record_id, _me(),
                        with_user=who if kind == "user" else None,
                        with_department=who if kind == "department" else None,
                        access=request.form.get("access") or "read")
    except (NotFound, PermissionDenied):
        raise
    except FormworkError as exc:
        flash(_error_text(exc), "error")
        return _detail(ent, record_id)
    flash(_("Shared."), "success")
    return _detail(ent, record_id)


@bp.post("/<entity>/<int:record_id>/unshare/<int:share_id>")
def unshare(entity, record_id, share_id):
    ent = _entity(entity)
    shares = records().schema.system["shares"]
    import sqlalchemy as sa

    with tenant().db.connect() as conn:
        row = conn.execute(sa.select(shares.c.entity, shares.c.record_id).where(shares.c.id == share_id)).first()
    if row is None or row.entity != ent.name or row.record_id != record_id:
        raise NotFound(message("not_found", get_locale()))
    ownership.unshare(tenant(), share_id, _me())
    flash(_("Share removed."), "success")
    return _detail(ent, record_id)


@bp.post("/<entity>/<int:record_id>/transfer")
def transfer_one(entity, record_id):
    ent = _entity(entity)
    to = (request.form.get("to") or "").strip()
    if not to:
        flash(_("Choose who takes the record over."), "error")
        return _detail(ent, record_id)
    try:
        ownership.transfer(tenant(), ent.name, [record_id], to, _me())
    except NotFound:
        raise
    except FormworkError as exc:
        flash(_error_text(exc), "error")
        return _detail(ent, record_id)
    flash(_("Transferred to %(user)s.", user=to), "success")
    # The new owner may be outside the user's read scope: go back to the list then.
    try:
        records().get(ent.name, record_id, _me())
    except NotFound:
        return redirect(url_for("entities.list_view", entity=ent.name))
    return _detail(ent, record_id)


@bp.post("/<entity>/transfer")
def transfer_many(entity):
    """Bulk transfer of chosen records by a manager: all of them or none."""
    ent = _entity(entity)
    back = safe_next(request.form.get("next"), url_for("entities.list_view", entity=ent.name))
    to = (request.form.get("to") or "").strip()
    try:
        ids = [int(i) for i in request.form.getlist("ids")]
    except ValueError:
        ids = []
    if not ids or not to:
        flash(_("Choose records and who takes them over."), "error")
        return redirect(back)
    try:
        n = ownership.transfer(tenant(), ent.name, ids, to, _me())
    except NotFound:
        flash(_("Nothing was transferred: some of the chosen records are not available to you."), "error")
        return redirect(back)
    except FormworkError as exc:
        flash(_("Nothing was transferred: %(reason)s", reason=_error_text(exc)), "error")
        return redirect(back)
    flash(_("Transferred %(n)s records to %(user)s.", n=n, user=to), "success")
    return redirect(back)


@bp.get("/<entity>/export.csv")
def export_csv(entity):
    """The list as CSV, within the user's export scope and limit, logged in fw_exports (R42)."""
    from engine.io.transfer import write_csv

    ent = _entity(entity)
    svc = records()
    if not access.can(ent, "export"):
        raise PermissionDenied(message("forbidden_action", get_locale(), action="export",
                                       entity=label(ent.label) or ent.name))
    query = ListQuery.from_args(ent, request.args)
    try:
        rows = svc.export(ent.name, _me(), filters=query.filters, search=query.search, channel="web")
    except (PermissionDenied, BadRequest) as exc:
        flash(str(exc), "error")
        return redirect(url_for("entities.list_view", entity=ent.name, **request.args))
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel opens UTF-8 Chinese correctly with a BOM
    write_csv(svc, ent, rows, buf, False, svc.permissions.visible_fields(ent, _me()))
    name = f"{ent.name}-{tenant().now().astimezone(tenant().timezone).strftime('%Y%m%d-%H%M')}.csv"
    return Response(buf.getvalue(), mimetype="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
