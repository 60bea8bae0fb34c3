"""Duplicates and data quality pages (R14, R18, R20, R36): clusters of likely duplicates per entity,
a merge page choosing the surviving value per field, and the live data-quality figures.

Everything is asked of the engine (engine.dedup.scan, engine.dedup.merge, engine.quality) as the
signed-in user: a scan and the figures only cover the records they may read, and a merge is
permission-checked by the engine, whose refusal is shown as it is."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from engine.dedup.index import DedupIndex
from engine.dedup.merge import merge
from engine.dedup.scan import scan
from engine.errors import FormworkError, ValidationFailed
from engine.ids import as_id
from engine.permissions import PermissionDenied
from engine.quality import quality_entities, quality_report

from . import access
from .context import records, tenant
from .i18n import get_locale, gettext as _, label

bp = Blueprint("dedup", __name__)
MAX_CLUSTERS = 100
MAX_MERGE = 10


def me():
    return current_user.user


def _is_admin() -> bool:
    user = getattr(current_user, "user", None)
    return user is not None and records().permissions.is_superuser(user)


def dedup_entities() -> list:
    """Entities with duplicate rules the current user may clean up (update rights, or an admin)."""
    index = DedupIndex.for_tenant(tenant())
    return [e for e in tenant().model.entities.values()
            if not e.is_child and index.rules(e) and (_is_admin() or access.can(e, "update"))]


def quality_pages() -> list:
    return [e for e in quality_entities(tenant().model) if _is_admin() or access.can(e, "read")]


@bp.app_context_processor
def inject():
    def can_dedup():
        return getattr(current_user, "user", None) is not None and bool(dedup_entities())

    def can_quality():
        return getattr(current_user, "user", None) is not None and bool(quality_pages())

    return {"can_dedup": can_dedup, "can_quality": can_quality}


def _entity(name: str):
    ent = tenant().model.entities.get(name)
    if ent is None:
        abort(404)
    if ent not in dedup_entities():
        if ent.is_child or not DedupIndex.for_tenant(tenant()).rules(ent):
            abort(404)
        raise PermissionDenied(_("You may not clean up duplicates of %(entity)s.", entity=elabel(ent)))
    return ent


def elabel(ent) -> str:
    return label(ent.label) or ent.name


# ------------------------------------------------------------------------------------------ scan

@bp.get("/duplicates/")
def index():
    ents = dedup_entities()
    if not ents:
        raise PermissionDenied(_("No entity has duplicate rules you may act on."))
    return redirect(url_for("dedup.clusters", entity=ents[0].name))


def _threshold():
    raw = request.args.get("threshold", "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 1 <= value <= 100 else None


@bp.get("/duplicates/<entity>")
def clusters(entity):
    ent = _entity(entity)
    threshold = _threshold()
    found = scan(tenant(), ent, me(), threshold=threshold)
    rules = DedupIndex.for_tenant(tenant()).rules(ent)
    return render_template("dedup/clusters.html", ent=ent, entity_label=elabel(ent), tabs=dedup_entities(),
                           clusters=found[:MAX_CLUSTERS], total=len(found), rules=rules, threshold=threshold,
                           elabel=elabel, nav_active="dedup")


# ------------------------------------------------------------------------------------------ merge

def _ids(values) -> list[int]:
    out = []
    for v in values:
        rid = as_id(str(v))
        if rid is not None and rid not in out:
            out.append(rid)
    return out[:MAX_MERGE]


def _merge_rows(ent, recs: list[dict]) -> list[dict]:
    """One row per field the user may see: each record's value shown, and whether it is choosable."""
    svc = records()
    fa = access.field_access(ent)
    types = tenant().field_types
    shown = {r["id"]: svc.display(ent.name, r, get_locale(), me()) for r in recs}
    rows = []
    for f in ent.fields.values():
        if fa.get(f.name) == "hidden" or f.child is not None:
            continue
        texts = [shown[r["id"]].get(f.name) for r in recs]
        texts = ["" if t is None else (", ".join(map(str, t)) if isinstance(t, list) else str(t)) for t in texts]
        choosable = (fa.get(f.name) == "write" and not types.for_field(f).computed and f.type != "file"
                     and len(set(texts)) > 1)
        rows.append({"field": f, "label": label(f.label) or f.name, "texts": texts, "choosable": choosable})
    return rows


def _render_merge(ent, recs, survivor, chosen, status=200):
    return render_template("dedup/merge.html", ent=ent, entity_label=elabel(ent), recs=recs, survivor=survivor,
                           rows=_merge_rows(ent, recs), chosen=chosen, titles={
                               r["id"]: records().title_of(ent, r) for r in recs},
                           nav_active="dedup"), status


@bp.route("/duplicates/<entity>/merge", methods=["GET", "POST"])
def merge_page(entity):
    ent = _entity(entity)
    svc = records()
    source = request.form if request.method == "POST" else request.args
    ids = _ids(source.getlist("ids"))
    if len(ids) < 2:
        flash(_("Choose at least two records to merge."), "error")
        return redirect(url_for("dedup.clusters", entity=ent.name))
    recs = [svc.get(ent.name, rid, me(), locale=get_locale()) for rid in ids]
    survivor = as_id(source.get("survivor", "")) or ids[0]
    if survivor not in ids:
        survivor = ids[0]
    chosen = {}
    for f in ent.fields.values():
        raw = source.get(f"choice-{f.name}", "")
        if as_id(raw) in ids:
            chosen[f.name] = as_id(raw)
    if request.method == "GET":
        return _render_merge(ent, recs, survivor, chosen)
    merged = [i for i in ids if i != survivor]
    choices = {name: rid for name, rid in chosen.items()}
    try:
        result = merge(tenant(), ent, survivor, merged, choices, me(), locale=get_locale())
    except ValidationFailed as exc:
        for msgs in exc.errors.values():
            for msg in msgs:
                flash(msg, "error")
        return _render_merge(ent, recs, survivor, chosen, status=422)
    except FormworkError as exc:
        flash(str(exc), "error")
        status = 403 if isinstance(exc, PermissionDenied) else 409
        return _render_merge(ent, recs, survivor, chosen, status=status)
    flash(_("Merged %(n)s record(s) into “%(title)s”.", n=len(result["merged"]),
            title=svc.title_of(ent, result["survivor"])), "success")
    return redirect(url_for("entities.detail", entity=ent.name, record_id=survivor))


# ------------------------------------------------------------------------------------------ quality

@bp.get("/quality/")
def quality():
    ents = quality_pages()
    if not ents:
        raise PermissionDenied(_("No entity has data-quality settings you may read."))
    report = quality_report(tenant(), [e.name for e in ents], me(), locale=get_locale())
    model = tenant().model

    def field_label(entity, name):
        f = model.entity(entity).fields.get(name)
        if f is not None:
            return label(f.label) or name
        return {"owner": _("Owner"), "department": _("Department")}.get(name, name)

    return render_template("dedup/quality.html", report=report, field_label=field_label, nav_active="quality")
