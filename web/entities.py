"""Generated pages for every entity: list, create, detail, edit and delete, all from the metadata."""
from __future__ import annotations

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from werkzeug.datastructures import CombinedMultiDict, MultiDict

from engine.dedup.followups import follow_up_source
from engine.errors import BadRequest, Conflict, DuplicatesFound, Locked, ValidationFailed
from engine.fields.storage import DEFAULT_CONTENT_TYPE, INLINE_TYPES, SNIFF_BYTES, sniff

from engine.i18n import message
from engine.ids import as_id
from engine.permissions import PermissionDenied

from . import access
from . import forms as F
from . import workflows as W
from .context import records, tenant
from .headers import UPLOAD_CSP
from .i18n import get_lang, get_locale, gettext as _, label
from .listing import ListQuery, filter_controls, heading, list_columns
from .timeline import timeline

bp = Blueprint("entities", __name__, url_prefix="/e")


def entity_or_404(name: str):
    ent = tenant().model.entities.get(name)
    if ent is None:
        abort(404)
    return ent


def service():
    svc = records()
    if svc is None:  # pragma: no cover - the engine always ships it now
        abort(503)
    return svc


def me():
    return current_user.user


def elabel(ent) -> str:
    return label(ent.label) or ent.name


def require(ent, action: str, record: dict | None = None) -> None:
    """403 before showing a page whose action the engine would refuse anyway."""
    allowed = access.can_on(ent, action, record) if record is not None else access.can(ent, action)
    if not allowed:
        raise PermissionDenied(message("forbidden_action", get_locale(), entity=elabel(ent), action=action))


def writable(field) -> bool:
    """May the current user write this field (top-level or subtable row field)?"""
    ent = field.entity
    if not W.form_writable(field):  # a flow's status field, or frozen by a pending approval
        return False
    return ent is None or access.field_access(ent).get(field.name, "write") == "write"


def editable(field) -> bool:
    return F.is_editable(field) and writable(field)


def visible_columns(ent, columns: list[dict]) -> list[dict]:
    hidden = {n for n, a in access.field_access(ent).items() if a == "hidden"}
    return [c for c in columns if c["name"] not in hidden]


# ------------------------------------------------------------------------------------------ list

@bp.get("/<entity>/")
def list_view(entity):
    ent = entity_or_404(entity)
    svc = service()
    query = ListQuery.from_args(ent, request.args)
    try:
        page = svc.list(ent.name, me(), filters=query.filters, search=query.search, sort=query.sort,
                        limit=query.limit, after=query.after, locale=get_locale())
        total = svc.count(ent.name, me(), filters=query.filters, search=query.search)
    except BadRequest as exc:
        flash(str(exc), "error")
        return redirect(url_for("entities.list_view", entity=ent.name))
    columns = visible_columns(ent, list_columns(ent, tenant().field_types))
    texts = svc.display_many(ent.name, page.items, get_locale(), me())
    rows = [{"id": r["id"], "text": t, "record": r} for r, t in zip(page.items, texts)]
    hidden = {n for n, a in access.field_access(ent).items() if a == "hidden"}
    controls = [c for c in filter_controls(ent, query, F.Choices(tenant(), get_lang()))
                if c["name"].split("__")[0] not in hidden]
    for c in controls:
        if c["kind"] == "reference" and as_id(c["value"]) is not None:
            c["title"] = svc.titles(c["to"], [int(c["value"])], me()).get(int(c["value"]), "")
    template = "entities/_table.html" if request.headers.get("HX-Request") and \
        request.headers.get("HX-Target") == "list-results" else "entities/list.html"
    return render_template(template, ent=ent, columns=columns, rows=rows, page=page, total=total,
                           query=query, controls=controls,
                           nav_active=ent.name, entity_label=elabel(ent))


@bp.get("/<entity>/lookup")
def lookup(entity):
    """Reference picker results: records whose title or text matches, as clickable options."""
    ent = entity_or_404(entity)
    svc = service()
    q = (request.args.get("q") or "").strip()[:100]
    page = svc.list(ent.name, me(), search=q or None, sort="-updated_at", limit=10)
    items = [{"id": r["id"], "title": svc.title_of(ent, r)} for r in page.items]
    return render_template("entities/_lookup.html", ent=ent, items=items, q=q,
                           target=request.args.get("target", ""))


# ------------------------------------------------------------------------------------------ forms

def _choices():
    return F.Choices(tenant(), get_lang())


def _reference_titles(ent, data: dict) -> dict:
    """{"field": title, "lines-0-product": title} for every reference value in the form data."""
    svc = service()
    out = {}
    for f in ent.fields.values():
        if f.type == "reference" and data.get(f.name):
            try:
                out[f.name] = svc.titles(f.to, [int(data[f.name])], me()).get(int(data[f.name]), "")
            except (TypeError, ValueError):
                out[f.name] = str(data[f.name])
        elif f.child is not None:
            for i, row in enumerate(data.get(f.name) or []):
                for cf in f.child.fields.values():
                    if cf.type == "reference" and row.get(cf.name):
                        try:
                            rid = int(row[cf.name])
                            out[f"{f.name}-{i}-{cf.name}"] = svc.titles(cf.to, [rid], me()).get(rid, "")
                        except (TypeError, ValueError):
                            out[f"{f.name}-{i}-{cf.name}"] = str(row[cf.name])
    return out


def _bound_data(form) -> dict:
    data = {}
    for name, fld in form._fields.items():
        if hasattr(fld, "entries"):
            data[name] = [{k: v.data for k, v in e.form._fields.items()} for e in fld.entries]
        else:
            data[name] = fld.data
    return data


CURRENCY_SYMBOLS = {"CNY": "¥", "RMB": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


def _computed_texts(ent, form, record) -> tuple[dict, dict]:
    """Formula texts for the form: from the submitted values after a POST, else from the record."""
    fields: dict = {}
    rows: dict = {}
    if record is not None:
        text = service().display(ent.name, record, get_locale(), me())
        fields = {f.name: text.get(f.name, "") for f in ent.fields.values() if not editable(f)}
        rows = {f.name: text.get(f.name) or [] for f in ent.subtables()}
    if request.method == "POST":
        values = F.submitted_values(ent, form, request.form, MultiDict(), creating=True,
                                    keep_blank_rows=True)
        try:
            shown = _preview(ent, values)
        except Exception:  # noqa: BLE001 - a preview must never break the form
            return fields, rows
        fields.update({k: v for k, v in shown["fields"].items() if v})
        rows.update(shown["rows"])
    return fields, rows


def _confirmed() -> bool:
    """The user pressed "not a duplicate — save anyway" on the duplicate prompt (R14)."""
    return request.form.get("confirm_duplicates") == "1"


def _duplicate_view(ent, exc: DuplicatesFound) -> dict:
    """The prompt's matches (as the engine described them for this user) and where follow-ups live."""
    source = follow_up_source(tenant().model, ent)
    fu = source.entity if source is not None and access.can(source.entity, "read") else None
    return {"matches": exc.matches, "follow_entity": fu}


def _render_form(ent, form, record=None, errors=None, conflict=None, status=200, duplicates=None,
                 notice=None):
    data = _bound_data(form)
    readonly, row_texts = _computed_texts(ent, form, record)
    return render_template(
        "entities/form.html", ent=ent, form=form, record=record, errors=errors or {},
        conflict=conflict, duplicates=duplicates, sections=F.sections(ent, get_lang(), access.field_access(ent)),
        widget=F.widget, editable=editable, choices=_choices(), ref_titles=_reference_titles(ent, data),
        readonly=readonly, row_texts=row_texts, nav_active=ent.name, entity_label=elabel(ent), notice=notice,
        next_url=W.safe_next(request.values.get("next"), ""),
        currency_symbol=CURRENCY_SYMBOLS.get(tenant().model.tenant.currency, tenant().model.tenant.currency),
        version=request.form.get("version") if conflict is None and request.method == "POST"
        else (conflict.current_version if conflict else (record or {}).get("version"))), status


def _new_form(ent, formdata=None, data=None):
    cls = F.form_class(ent, _choices(), tenant().field_types, writable=writable)
    return cls(formdata=formdata, data=data)


def _formdata():
    return CombinedMultiDict([request.form, request.files]) if request.files else request.form


@bp.route("/<entity>/new", methods=["GET", "POST"])
def new(entity):
    ent = entity_or_404(entity)
    svc = service()
    require(ent, "create")
    if request.method == "POST":
        form = _new_form(ent, formdata=_formdata())
        values = F.submitted_values(ent, form, request.form, request.files, creating=True)
        try:
            rec = svc.create(ent.name, values, me(), locale=get_locale(), confirm_duplicates=_confirmed())
        except ValidationFailed as exc:
            return _render_form(ent, form, errors=exc.errors, status=422)
        except DuplicatesFound as exc:
            return _render_form(ent, form, duplicates=_duplicate_view(ent, exc), status=409)
        flash(_("Saved %(entity)s “%(title)s”.", entity=elabel(ent), title=svc.title_of(ent, rec)), "success")
        if request.form.get("_next") == "new":
            return redirect(url_for("entities.new", entity=ent.name))
        return redirect(url_for("entities.detail", entity=ent.name, record_id=rec["id"]))
    # Pre-fill from the query string (related lists' "add" buttons) and literal defaults.
    initial = {}
    for f in ent.fields.values():
        if not editable(f) or f.child is not None or f.type == "file":
            continue
        if f.name in request.args:
            initial[f.name] = request.args.getlist(f.name) if F.widget(f) == "multiselect" \
                else request.args[f.name]
        elif f.default is not None:
            initial[f.name] = F.input_value(f, f.default, tenant().timezone)
        elif f.default_expr is not None:
            initial[f.name] = _default_text(f)
    for f in ent.subtables():
        initial[f.name] = [{}]  # start with one empty line
    form = _new_form(ent, data=initial)
    return _render_form(ent, form)


def _default_text(field) -> str:
    """An expression default such as today() shown in the new form (the engine applies it anyway)."""
    try:
        value = field.default_expr.evaluate({}, now=tenant().now(), tz=tenant().timezone)
        if value is None:
            return ""
        return F.input_value(field, tenant().field_types.for_field(field).coerce(
            field, value, tenant().field_context(get_locale())), tenant().timezone)
    except Exception:  # noqa: BLE001 - a default that needs other fields is left to the engine
        return ""


def _load(ent, record_id):
    return service().get(ent.name, record_id, me(), locale=get_locale())


@bp.route("/<entity>/<int:record_id>/edit", methods=["GET", "POST"])
def edit(entity, record_id):
    ent = entity_or_404(entity)
    svc = service()
    rec = _load(ent, record_id)
    require(ent, "update", rec)
    # fields a pending approval froze are shown read-only (a submitted one is left to the engine: 423)
    W.prepare_locks(ent, rec, request.form if request.method == "POST" else None)
    if request.method == "POST":
        form = _new_form(ent, formdata=_formdata())
        values = F.submitted_values(ent, form, request.form, request.files, creating=False)
        version = request.form.get("version") or None
        try:
            saved = svc.update(ent.name, record_id, values, me(), version=version, locale=get_locale(),
                               confirm_duplicates=_confirmed())
        except ValidationFailed as exc:
            return _render_form(ent, form, record=rec, errors=exc.errors, status=422)
        except DuplicatesFound as exc:
            return _render_form(ent, form, record=rec, duplicates=_duplicate_view(ent, exc), status=409)
        except Conflict as exc:
            return _render_form(ent, form, record=rec, conflict=_conflict_view(ent, exc), status=409)
        except Locked as exc:  # an approval started since the form was opened (R4)
            W.prepare_locks(ent, rec)
            return _render_form(ent, form, record=rec, status=423,
                                notice={"kind": "error", "title": str(exc),
                                        "messages": [_("The locked fields keep their values; your other changes are below.")]})
        flash(_("Saved %(entity)s “%(title)s”.", entity=elabel(ent), title=svc.title_of(ent, saved)), "success")
        return redirect(W.safe_next(request.form.get("next"), "")
                        or url_for("entities.detail", entity=ent.name, record_id=record_id))
    form = _new_form(ent, data=F.record_to_form_data(ent, rec, tenant().timezone))
    hint = W.move_hint(ent, rec, request.args.get("move_to"))
    if hint is None:
        return _render_form(ent, form, record=rec)
    if hint["field"] in form._fields:  # "fill in and move" from the board: the target stage preset
        form[hint["field"]].data = hint["stage"]
    needed = _("Needed for “%(stage)s”", stage=hint["stage_label"])
    return _render_form(ent, form, record=rec, errors={f: [needed] for f in hint["missing"]},
                        notice={"kind": "info", "title": _("To move to “%(stage)s”, fill in:", stage=hint["stage_label"]),
                                "messages": hint["messages"]})


class ConflictView:
    def __init__(self, message, current_version, changed_by, changes):
        self.message = message
        self.current_version = current_version
        self.changed_by = changed_by
        self.changes = changes


def _conflict_view(ent, exc: Conflict) -> ConflictView:
    from .timeline import describe_changes

    return ConflictView(str(exc), exc.current_version, exc.changed_by,
                        describe_changes(ent, exc.changes or {}))


@bp.post("/<entity>/preview")
def preview(entity):
    """Formula values for a form being filled in (subtable line totals, sums), as JSON."""
    ent = entity_or_404(entity)
    form = _new_form(ent, formdata=request.form)
    values = F.submitted_values(ent, form, request.form, MultiDict(), creating=True, keep_blank_rows=True)
    return jsonify(_preview(ent, values))


def _preview(ent, values: dict) -> dict:
    svc = service()
    locale = get_locale()
    ctx = tenant().field_context(locale)
    record = svc.preview(ent.name, values, me(), locale)
    types = tenant().field_types
    out: dict = {"fields": {}, "rows": {}}
    for f in ent.fields.values():
        if f.type in ("formula",):
            out["fields"][f.name] = types.for_field(f).to_text(f, record.get(f.name), ctx)
        elif f.child is not None:
            rows = []
            for row in record.get(f.name) or []:
                rows.append({cf.name: types.for_field(cf).to_text(cf, row.get(cf.name), ctx)
                             for cf in f.child.fields.values() if cf.type == "formula"})
            out["rows"][f.name] = rows
    return out


# ------------------------------------------------------------------------------------------ detail

@bp.get("/<entity>/<int:record_id>")
def detail(entity, record_id):
    ent = entity_or_404(entity)
    svc = service()
    rec = _load(ent, record_id)
    shown = svc.display(ent.name, rec, get_locale(), me())
    if rec.get("department"):
        shown["department"] = _choices().department_label(rec["department"])
    related = []
    for ref_ent, ref_field in tenant().model.referencing(ent.name):
        if ref_ent.is_child or not access.can(ref_ent, "read") \
                or access.field_access(ref_ent).get(ref_field.name) == "hidden":
            continue
        flt = {ref_field.name: str(record_id)}
        page = svc.list(ref_ent.name, me(), filters=flt, sort="-updated_at", limit=5)
        related.append({
            "entity": ref_ent, "field": ref_field, "label": elabel(ref_ent),
            "field_label": label(ref_field.label) or ref_field.name,
            "count": svc.count(ref_ent.name, me(), filters=flt),
            "columns": _related_columns(ref_ent, ref_field),
            "rows": [{"id": r["id"], "text": t} for r, t in
                     zip(page.items, svc.display_many(ref_ent.name, page.items, get_locale(), me()))],
            "filter": flt,
        })
    return render_template("entities/detail.html", ent=ent, rec=rec, shown=shown,
                           title=heading(ent, shown, tenant().field_types, rec["id"]),
                           sections=F.sections(ent, get_lang(), access.field_access(ent)),
                           widget=F.widget, related=related,
                           history=timeline(ent, svc.history(ent.name, record_id, me())),
                           nav_active=ent.name, entity_label=elabel(ent))


def _related_columns(ref_ent, ref_field) -> list[dict]:
    """The referencing entity's list columns without the reference itself, its title first."""
    cols = [c for c in visible_columns(ref_ent, list_columns(ref_ent, tenant().field_types))
            if c["name"] not in (ref_field.name, "owner")]
    cols.sort(key=lambda c: c["name"] != ref_ent.title)
    return cols[:3]


@bp.get("/<entity>/<int:record_id>/file/<field>")
def download(entity, record_id, field):
    ent = entity_or_404(entity)
    fdef = ent.fields.get(field)
    if fdef is None or fdef.type != "file":
        abort(404)
    stored = _load(ent, record_id).get(field)
    if stored is None:
        abort(404)
    try:
        stream = tenant().storage.open(stored.key)
    except FileNotFoundError:
        abort(404)
    return serve_stored(stream, stored)


def serve_stored(stream, stored):
    """Only a raster image the bytes prove is shown inline; anything else is a download, whatever
    type was recorded, so an SVG or HTML upload never runs as a page of this origin."""
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    proven = sniff(head)
    inline = proven in INLINE_TYPES
    resp = send_file(stream, mimetype=proven or DEFAULT_CONTENT_TYPE, as_attachment=not inline,
                     download_name=stored.name or stored.key, conditional=True, max_age=0)
    # Should a browser render it after all, the document may run nothing and reach nothing.
    resp.headers["Content-Security-Policy"] = UPLOAD_CSP
    resp.headers["Cache-Control"] = "private, no-cache"
    return resp


# ------------------------------------------------------------------------------------------ delete

@bp.route("/<entity>/<int:record_id>/delete", methods=["GET", "POST"])
def delete(entity, record_id):
    ent = entity_or_404(entity)
    svc = service()
    rec = _load(ent, record_id)
    require(ent, "delete", rec)
    title = svc.title_of(ent, rec)
    if request.method == "POST":
        try:
            svc.delete(ent.name, record_id, me(), version=request.form.get("version") or None,
                       locale=get_locale())
        except ValidationFailed as exc:
            for msgs in exc.errors.values():
                for msg in msgs:
                    flash(msg, "error")
            return redirect(url_for("entities.detail", entity=ent.name, record_id=record_id))
        except (Conflict, Locked) as exc:
            flash(str(exc), "error")
            return redirect(url_for("entities.detail", entity=ent.name, record_id=record_id))
        flash(_("Deleted %(entity)s “%(title)s”.", entity=elabel(ent), title=title), "success")
        return redirect(url_for("entities.list_view", entity=ent.name))
    return render_template("entities/delete.html", ent=ent, rec=rec, title=title, nav_active=ent.name,
                           entity_label=elabel(ent))

