"""Pipelines and approvals in the pages (R4 R5 R6 R26 R27 R28): the kanban board per pipeline, the
stage/checklist/approval/help panels of a record, the inbox, and what the forms need to know about
locked and flow-owned fields.

Every decision is the engine's (engine/workflows): a move goes through `tenant.pipelines.move`, so its
criteria, locks and approvals apply exactly as they do to the API, an import or a bulk edit; a refusal
is shown as the engine worded it."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import (Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for)
from flask_login import current_user

from engine.errors import BadRequest, Conflict, Locked, NotFound, ValidationFailed
from engine.permissions import PermissionDenied
from engine.records.prepare import is_empty

from . import access
from .context import tenant
from .i18n import get_lang, get_locale, gettext as _, label
from .security import safe_next

bp = Blueprint("workflows", __name__)
PER_COLUMN = 50


def me():
    return current_user.user


def model():
    return tenant().model


# ------------------------------------------------------------------------------------ helpers

def readable_pipelines() -> list:
    """Pipelines whose entity the current user may read (the navigation's board links)."""
    if getattr(current_user, "user", None) is None:
        return []
    return [p for p in model().pipelines.values() if access.can(model().entities[p.entity], "read")]


def pipeline_or_404(name: str):
    pipe = model().pipelines.get(name)
    if pipe is None:
        abort(404)
    ent = model().entities[pipe.entity]
    if not access.can(ent, "read"):
        raise PermissionDenied(_("You may not see %(entity)s.", entity=label(ent.label) or ent.name))
    return pipe, ent


def wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def messages_of(exc, pipe=None) -> list[str]:
    """The messages of a refusal; for a stage move, the stage field's list already names every
    required field, so their per-field copies (for API clients) are not repeated."""
    if isinstance(exc, ValidationFailed):
        skip = {n for s in pipe.stages for n in s.requires} if pipe is not None and pipe.field in exc.errors \
            else set()
        return [m for key, msgs in exc.errors.items() if key not in skip for m in msgs] or [str(exc)]
    return [str(exc)]


def back(default: str):
    return redirect(safe_next(request.form.get("next") or request.args.get("next"), default))


def parse_when(value) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def when_text(value) -> str:
    """An ISO timestamp from the engine as local 'YYYY-MM-DD HH:MM'."""
    dt = parse_when(value)
    return dt.astimezone(tenant().timezone).strftime("%Y-%m-%d %H:%M") if dt else ""


def money_text(value, pipe=None) -> str:
    """A column sum in the tenant's currency, whole units (¥1,234,567)."""
    value = Decimal(str(value or 0))
    t = tenant()
    if pipe is not None and pipe.amount:
        fld = model().entities[pipe.entity].fields.get(pipe.amount)
        if fld is not None and fld.type == "money":
            try:
                text = t.field_types.for_field(fld).to_text(fld, value.quantize(Decimal("1")), t.field_context(get_locale()))
                return text[:-3] if text.endswith(".00") else text
            except Exception:  # noqa: BLE001 - fall back to plain digits
                pass
    return f"{value:,.0f}"


def short_money(text) -> str:
    """¥260,000.00 → ¥260,000 on a card (cents on a deal are noise; the record keeps them)."""
    text = str(text or "")
    return text[:-3] if text.endswith(".00") else text


def days_text(value) -> str:
    """14.0 → 14, 2.5 → 2.5."""
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number == int(number) else f"{number:.1f}"


def role_label(name: str) -> str:
    spec = (model().config.get("roles") or {}).get(name)
    raw = spec.get("label") if isinstance(spec, dict) else None
    if isinstance(raw, dict):
        return raw.get(get_lang()) or next(iter(raw.values()), name)
    return str(raw or name)


def approver_text(step: dict) -> str:
    """How a step's approver reads when the flow gives the step no label of its own."""
    if step.get("label") and step["label"] != step.get("approver"):
        return step["label"]
    kind, _sep, arg = (step.get("approver") or "").partition(":")
    if kind == "manager":
        return _("Manager of the submitter") if not arg else _("Manager %(n)s levels up", n=arg)
    if kind == "role":
        return _("Role: %(role)s", role=role_label(arg))
    if kind == "user":
        return ", ".join(a["name"] for a in step.get("approvers") or []) or arg
    if kind == "department":
        depts = model().config.get("departments") or {}
        spec = depts.get(arg) if isinstance(depts, dict) else None
        raw = spec.get("label") if isinstance(spec, dict) else None
        text = raw.get(get_lang()) if isinstance(raw, dict) else raw
        return _("Managers of %(department)s", department=text or arg)
    return step.get("approver") or ""


STATUS_BADGE = {"pending": "badge-warning", "active": "badge-warning", "approved": "badge-success",
                "rejected": "badge-danger", "withdrawn": "badge-muted", "cancelled": "badge-muted",
                "skipped": "badge-muted", "waiting": "badge-muted", "open": "badge-warning", "done": "badge-success"}


def status_badge(status: str) -> str:
    return STATUS_BADGE.get(status, "")


def record_url(entity: str | None, rid) -> str | None:
    if not entity or rid is None or entity not in model().entities:
        return None
    return url_for("entities.detail", entity=entity, record_id=rid)


# ----------------------------------------------------------------- locks and flow-owned fields

def status_field(field) -> bool:
    """A flow's status field: written by the approval engine only, never by a form."""
    return bool((getattr(field, "settings", None) or {}).get("approval"))


def pending_locks(ent, rid) -> dict[str, dict]:
    """{field: {"flow": label, "approval_id": id}} frozen by the record's pending approvals."""
    t = tenant()
    if not model().approvals_of(ent.name):
        return {}
    with t.db.connect() as conn:
        rows = t.approvals.pending(conn, ent.name, int(rid))
    out: dict[str, dict] = {}
    for row in rows:
        flow = model().approvals.get(row["flow"])
        if flow is None:
            continue
        for f in flow.lock:
            out.setdefault(f, {"flow": label(flow.label) or flow.name, "approval_id": row["id"]})
    return out


def prepare_locks(ent, rec, submitted=None) -> None:
    """Called by the edit page before it builds its form: locked fields become read-only. For a
    submitted form, a locked field it still carries (opened before the approval started) is passed on,
    so the engine refuses the change with 423 instead of it being dropped without a word."""
    locks = pending_locks(ent, rec["id"]) if rec is not None else {}
    if submitted is not None:
        locks = {f: lock for f, lock in locks.items() if f not in submitted}
    g.fw_locked = locks


def form_writable(field) -> bool:
    """False for a flow's status field and for fields a pending approval froze (this request)."""
    if status_field(field):
        return False
    return field.name not in (g.get("fw_locked") or {}) or getattr(field.entity, "parent", None) is not None


def field_lock(field) -> str | None:
    """The note under a read-only field on a form: why it cannot be changed."""
    if getattr(field.entity, "parent", None) is None:
        lock = (g.get("fw_locked") or {}).get(field.name)
        if lock:
            return _("Locked while “%(flow)s” is pending.", flow=lock["flow"])
    if status_field(field):
        flow = model().approvals.get(field.settings["approval"])
        return _("Set by the “%(flow)s” approval flow.", flow=label(flow.label) if flow else field.settings["approval"])
    return None


def move_hint(ent, rec, stage_name: str | None) -> dict | None:
    """For "fill in and move" links: the target stage preset, every unmet criterion listed and the
    empty required fields highlighted."""
    if not stage_name or rec is None:
        return None
    t = tenant()
    for pipe in model().pipelines_of(ent.name):
        target = pipe.stage(stage_name)
        if target is None:
            continue
        before = pipe.stage(rec.get(pipe.field))
        candidate = {**rec, pipe.field: target.name}
        with t.db.connect() as conn:
            unmet = t.pipelines.unmet(pipe, candidate, rec, get_locale(), loader=t.records._loader(conn))
        missing = []
        for gate in t.pipelines.gates(pipe, before, target):
            missing += [f for f in gate.requires if is_empty(rec.get(f)) and f not in missing]
        return {"field": pipe.field, "stage": target.name, "stage_label": label(target.label),
                "messages": unmet, "missing": missing}
    return None


# ------------------------------------------------------------------------------------- board

def owner_choices() -> list[tuple[str, str]]:
    return [(str(u.id), u.name) for u in tenant().users.list(include_inactive=False)]


def board_context(name: str) -> dict:
    pipe, ent = pipeline_or_404(name)
    t = tenant()
    stalled = request.args.get("stalled") in ("1", "true", "on")
    owner = (request.args.get("owner") or "").strip()
    if owner == "me":
        owner = str(me().id)
    if owner and not owner.isdigit():
        owner = ""
    q = (request.args.get("q") or "").strip()[:100]
    filters = {}
    if stalled:
        filters["stagnant"] = "1"
    if owner:
        filters["owner"] = owner
    board = t.pipelines.board(name, me(), filters=filters, search=q or None, per_column=PER_COLUMN,
                              locale=get_locale())
    can_update = access.can(ent, "update")
    flows = [f for f in model().approvals_of(ent.name) if f.status_field]
    columns = []
    for col in board.columns:
        cards = []
        for card in col.cards:
            rec = card.record
            pending = [label(f.label) for f in flows if rec.get(f.status_field) == "pending"]
            cards.append({
                "id": rec["id"], "version": rec.get("version"), "title": card.title or f"#{rec['id']}",
                "amount": short_money(card.display.get(pipe.amount)) if board.amount_visible and pipe.amount else "",
                "owner": card.display.get("owner") or "", "days": card.days_in_stage,
                "stalled": card.stagnant, "pending": pending,
                "movable": can_update and access.can_on(ent, "update", rec),
                "url": url_for("entities.detail", entity=ent.name, record_id=rec["id"]),
            })
        more = col.count - len(cards)
        columns.append({
            "stage": col.stage, "name": col.stage.name, "label": label(col.stage.label),
            "probability": f"{col.stage.probability.normalize():f}", "outcome": col.stage.outcome,
            "count": col.count, "amount": money_text(col.amount, pipe) if board.amount_visible else "",
            "weighted": money_text(col.weighted, pipe) if board.amount_visible else "",
            "cards": cards, "more": more,
            "more_url": url_for("entities.list_view", entity=ent.name) + "?" + urlencode(
                {pipe.field: col.stage.name, **filters, **({"q": q} if q else {})}),
        })
    open_cols = [c for c in board.columns if c.stage.outcome is None]
    won = [c for c in board.columns if c.stage.outcome == "won"]
    try:
        stalled_count = t.records.count(ent.name, me(), filters={**filters, "stagnant": "1"}, search=q or None)
    except BadRequest:
        stalled_count = 0
    shown = board.amount_visible
    totals = {"open_count": sum(c.count for c in open_cols),
              "amount": money_text(board.total_amount, pipe) if shown else "",
              "weighted": money_text(board.total_weighted, pipe) if shown else "",
              "won_count": sum(c.count for c in won),
              "won_amount": money_text(sum((c.amount for c in won), Decimal(0)), pipe) if shown else "",
              "stalled": stalled_count}
    params = {k: v for k, v in (("stalled", "1" if stalled else ""), ("owner", owner), ("q", q)) if v}
    return {"pipe": pipe, "ent": ent, "columns": columns, "totals": totals, "stalled": stalled, "owner": owner,
            "q": q, "owners": owner_choices(), "filtered": bool(params),
            "board_url": url_for("workflows.board", name=pipe.name) + ("?" + urlencode(params) if params else ""),
            "pipe_label": label(pipe.label) or pipe.name, "entity_label": label(ent.label) or ent.name,
            "has_amount": bool(pipe.amount) and shown, "can_create": access.can(ent, "create")}


@bp.get("/pipelines/")
def pipelines_index():
    pipes = readable_pipelines()
    if not pipes:
        abort(404)
    return redirect(url_for("workflows.board", name=pipes[0].name))


@bp.get("/pipelines/<name>")
def board(name):
    ctx = board_context(name)
    if request.args.get("partial") == "1":
        return render_template("workflows/_board.html", **ctx)
    return render_template("workflows/board.html", nav_active=f"pipeline:{name}", **ctx)


@bp.post("/pipelines/<name>/move")
def move(name):
    """Move a record to a stage (a drop on the board, the card's "move to" select, or the record page)."""
    pipe, ent = pipeline_or_404(name)
    rid = request.form.get("record_id", type=int)
    stage_name = (request.form.get("stage") or "").strip()
    version = request.form.get("version", type=int)
    target = pipe.stage(stage_name)
    default = url_for("workflows.board", name=name)
    title = None
    status = 200
    problem = None
    try:
        if rid is None:
            raise NotFound(_("The page or record you asked for does not exist."))
        rec = tenant().pipelines.move(name, rid, stage_name, me(), version=version, locale=get_locale())
        title = tenant().records.title_of(ent, rec)
    except ValidationFailed as exc:
        status, problem = 422, messages_of(exc, pipe)
    except Locked as exc:
        status, problem = 423, [str(exc)]
    except Conflict as exc:
        status, problem = 409, [str(exc), _("Reload the board to see the latest values.")]
    except PermissionDenied as exc:
        status, problem = 403, [str(exc)]
    except NotFound:
        status, problem = 404, [_("The page or record you asked for does not exist.")]
    stage_text = label(target.label) if target else stage_name
    fix_url = None
    if problem and rid is not None and status in (422, 423):
        fix_url = url_for("entities.edit", entity=ent.name, record_id=rid) + "?" + urlencode(
            {"move_to": stage_name, "next": safe_next(request.form.get("next"), default)}) \
            if status == 422 and target is not None else url_for("entities.detail", entity=ent.name, record_id=rid)
    if problem and fix_url and status == 422 and request.form.get("on_refuse") == "fill" and not wants_json():
        return redirect(fix_url)  # the record page's "move to": straight to the fields still needed
    if wants_json():
        if problem:
            return jsonify({"ok": False, "status": status,
                            "title": _("Cannot move to “%(stage)s”", stage=stage_text),
                            "messages": problem, "fix_url": fix_url,
                            "fix_label": _("Fill in and move") if status == 422 else _("Open the record")}), status
        return jsonify({"ok": True, "id": rid, "stage": stage_name, "stage_label": stage_text,
                        "message": _("Moved “%(title)s” to “%(stage)s”.", title=title, stage=stage_text)})
    if problem:
        sep = "；" if get_lang() == "zh" else "; "
        flash(_("Cannot move to “%(stage)s”", stage=stage_text) + ": " + sep.join(problem), "error")
    else:
        flash(_("Moved “%(title)s” to “%(stage)s”.", title=title, stage=stage_text), "success")
    return back(default)


# ------------------------------------------------------------------------- the record's panels

def help_targets() -> dict:
    users = [u for u in tenant().users.list(include_inactive=False) if u.id != me().id]
    roles = sorted({r for u in tenant().users.list(include_inactive=False) for r in (u.roles or [])})
    return {"users": [(f"user:{u.username}", f"{u.name} (@{u.username})") for u in users],
            "roles": [(f"role:{r}", role_label(r)) for r in roles]}


def record_workflow(ent, rec) -> dict | None:
    """What the detail page shows of pipelines and approvals for this record (None: nothing)."""
    pipes = model().pipelines_of(ent.name)
    flows = model().approvals_of(ent.name)
    if not pipes and not flows:
        return None
    cache = g.setdefault("fw_record_workflow", {})
    key = (ent.name, rec["id"])
    if key in cache:
        return cache[key]
    t = tenant()
    user = me()
    locale = get_locale()
    can_update = access.can_on(ent, "update", rec)
    out = {"pipelines": [], "approvals": [], "flows": flows, "help": None, "locks": pending_locks(ent, rec["id"]),
           "flow_labels": [label(f.label) or f.name for f in flows]}
    for pipe in pipes:
        stage = pipe.stage(rec.get(pipe.field))
        info = t.pipelines.stagnation(pipe, [rec["id"]]).get(rec["id"]) or {}
        history = t.pipelines.history(ent.name, rec["id"], user, locale)
        out["pipelines"].append({
            "pipe": pipe, "label": label(pipe.label) or pipe.name, "stage": stage,
            "stages": [{"name": s.name, "label": label(s.label), "outcome": s.outcome,
                        "probability": f"{s.probability.normalize():f}",
                        "state": ("current" if stage is not None and s.name == stage.name else
                                  "done" if stage is not None and stage.outcome is None and s.outcome is None
                                  and s.position < stage.position else "todo")} for s in pipe.stages],
            "days": info.get("days"), "limit": days_text(info.get("limit")) if info.get("limit") else None,
            "stalled": bool(info.get("stagnant")),
            "checklist": t.pipelines.checklist(pipe.name, rec["id"], user, locale),
            "history": [{**h, "entered": when_text(h["entered_at"]), "left": when_text(h["left_at"]),
                         "days": days_text(h["days"])}
                        for h in reversed(history) if h["pipeline"] == pipe.name],
            "can_update": can_update,
        })
    if flows:
        out["approvals"] = decorate(t.approvals.for_record(ent.name, rec["id"], user, locale))
    if pipes:
        out["help"] = help_targets()
    cache[key] = out
    return out


def value_text(entity: str, name: str, value) -> str:
    """A locked value from an approval's snapshot (JSON) as people read it (¥100,000.00, 25%)."""
    if value is None or value == "":
        return "—"
    ent = model().entities.get(entity)
    fld = ent.fields.get(name) if ent is not None else None
    if fld is None:
        return str(value)
    t = tenant()
    try:
        ctx = t.field_context(get_locale())
        ftype = t.field_types.for_field(fld)
        return ftype.to_text(fld, ftype.coerce(fld, value, ctx), ctx) or "—"
    except Exception:  # noqa: BLE001 - a value the type no longer reads is shown as stored
        return str(value)


def hide_fields(approvals: list[dict], user) -> list[dict]:
    """Leave out locked values of fields the user may not see (an approver's role may hide some)."""
    perms = tenant().records.permissions
    access = {}
    for a in approvals:
        ent = model().entities.get(a["entity"])
        if ent is None or not a.get("values"):
            continue
        if ent.name not in access:
            access[ent.name] = perms.field_access(ent, user) if user is not None else {}
        a["values"] = {f: v for f, v in a["values"].items() if access[ent.name].get(f, "write") != "hidden"}
    return approvals


def decorate(approvals: list[dict]) -> list[dict]:
    """Local times, readable values and approver texts for the templates."""
    hide_fields(approvals, me())
    for a in approvals:
        for name, v in (a.get("values") or {}).items():
            v["shown"] = value_text(a["entity"], name, v.get("value"))
        a["submitted"] = when_text(a["submitted_at"])
        a["decided"] = when_text(a["decided_at"])
        a["url"] = record_url(a["entity"], a["record_id"])
        a["badge"] = status_badge(a["status"])
        for st in a["steps"]:
            st["who"] = approver_text(st)
            st["badge"] = status_badge(st["status"])
            for d in st["decisions"]:
                d["when"] = when_text(d["at"])
    return approvals


@bp.post("/pipelines/<name>/<int:record_id>/checklist")
def tick(name, record_id):
    pipe, ent = pipeline_or_404(name)
    default = url_for("entities.detail", entity=ent.name, record_id=record_id) + "#stage"
    kind = request.form.get("kind", "")
    item = request.form.get("item", type=int)
    done = request.form.get("done") in ("1", "true", "on")
    try:
        tenant().pipelines.tick(name, record_id, kind, item, done, me(), get_locale())
    except (BadRequest, ValidationFailed, PermissionDenied, Locked) as exc:
        flash("；".join(messages_of(exc)), "error")
    return back(default)


@bp.post("/e/<entity>/<int:record_id>/help")
def ask_for_help(entity, record_id):
    ent = model().entities.get(entity)
    if ent is None:
        abort(404)
    default = url_for("entities.detail", entity=ent.name, record_id=record_id)
    try:
        task = tenant().tasks.ask_for_help(ent.name, record_id, me(), request.form.get("to", ""),
                                           request.form.get("note", ""), get_locale())
    except ValidationFailed as exc:
        flash(_("The help request was not sent:") + " " + "；".join(messages_of(exc)), "error")
        return back(default + "#help")
    who = task["assignee"]["name"] if task.get("assignee") else role_label(task.get("assignee_role") or "")
    flash(_("Asked %(who)s for help; they will find it in their inbox.", who=who), "success")
    return back(default)


# --------------------------------------------------------------------------------- approvals

ACTIONS = ("approve", "reject", "withdraw", "resubmit")


@bp.post("/approvals/<int:approval_id>/<action>")
def decide(approval_id, action):
    if action not in ACTIONS:
        abort(404)
    comment = (request.form.get("comment") or "").strip()
    fn = getattr(tenant().approvals, action)
    try:
        result = fn(approval_id, me(), comment, get_locale())
    except (ValidationFailed, Conflict, PermissionDenied) as exc:
        flash("；".join(messages_of(exc)), "error" if not isinstance(exc, Conflict) else "warning")
        return back(url_for("workflows.inbox"))
    settle_notifications(me(), approval_id=approval_id)
    done = {"approve": _("Approved: %(flow)s (%(title)s)."), "reject": _("Rejected: %(flow)s (%(title)s)."),
            "withdraw": _("Withdrawn: %(flow)s (%(title)s)."), "resubmit": _("Resubmitted: %(flow)s (%(title)s).")}
    flash(done[action] % {"flow": result["flow_label"], "title": result["title"]}, "success")
    return back(url_for("workflows.inbox"))


def settle_notifications(user, approval_id: int | None = None, task_id: int | None = None) -> None:
    """Whoever has acted on an approval or a task has read what told them about it."""
    t = tenant()
    table = t.notifications.table
    cond = table.c.approval_id == approval_id if approval_id is not None else table.c.task_id == task_id
    with t.db.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.select(table.c.id).where(
            table.c.user_id == user.id, table.c.read_at.is_(None), cond))]
    if ids:
        t.notifications.mark_read(user, ids)


# ------------------------------------------------------------------------------------- inbox

def unread_count() -> int:
    user = getattr(current_user, "user", None)
    if user is None:
        return 0
    cached = g.get("fw_unread")
    if cached is None:
        try:
            cached = tenant().notifications.unread_count(user)
        except Exception:  # noqa: BLE001 - a missing table (config waiting for migrate) must not break pages
            cached = 0
        g.fw_unread = cached
    return cached


@bp.get("/inbox")
def inbox():
    t = tenant()
    user = me()
    locale = get_locale()
    waiting = decorate(t.approvals.list(user, mine=True, locale=locale))
    submitted = decorate(t.approvals.list(user, submitted=True, limit=20, locale=locale))
    tasks = t.tasks.list(user)
    for task in tasks:
        task["url"] = record_url(task["entity"], task["record_id"])
        task["created"] = when_text(task["created_at"])
        task["to_role"] = role_label(task["assignee_role"]) if task.get("assignee_role") else None
    asked = [x for x in t.tasks.list(user, open_only=False, assigned=False, limit=20)
             if x["created_by"]["id"] == user.id]
    for task in asked:
        task["url"] = record_url(task["entity"], task["record_id"])
        task["created"] = when_text(task["created_at"])
        task["to_role"] = role_label(task["assignee_role"]) if task.get("assignee_role") else None
        task["badge"] = status_badge(task["status"])
    stalled = t.pipelines.stagnant_for_owner(user)
    for s in stalled:
        s["url"] = record_url(s["entity"], s["id"])
        pipe = model().pipelines.get(s["pipeline"])
        stage = pipe.stage(s["stage"]) if pipe else None
        s["stage_label"] = label(stage.label) if stage else s["stage_label"]
    notes = t.notifications.list(user, limit=30, locale=locale)
    for n in notes:
        n["when"] = when_text(n["created_at"])
    return render_template("workflows/inbox.html", waiting=waiting, submitted=submitted, tasks=tasks,
                           asked=asked, stalled=stalled, notes=notes, unread=sum(1 for n in notes if not n["read"]),
                           nav_active="inbox")


@bp.post("/tasks/<int:task_id>/done")
def task_done(task_id):
    try:
        task = tenant().tasks.complete(task_id, me(), get_locale())
        settle_notifications(me(), task_id=task_id)
        flash(_("Marked done: %(title)s.", title=task["title"]), "success")
    except (PermissionDenied, NotFound) as exc:
        flash(str(exc), "error")
    return back(url_for("workflows.inbox"))


@bp.post("/notifications/read")
def notifications_read():
    ids = [int(i) for i in request.form.getlist("id") if i.isdigit()]
    tenant().notifications.mark_read(me(), ids or None)
    return back(url_for("workflows.inbox") + "#notifications")


@bp.get("/notifications/<int:note_id>")
def notification_open(note_id):
    """Open what a notification is about, marking it read."""
    t = tenant()
    t.notifications.mark_read(me(), [note_id])
    table = t.notifications.table
    with t.db.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == note_id, table.c.user_id == me().id)).mappings().first()
    if row is None:
        abort(404)
    target = record_url(row["entity"], row["record_id"])
    if target and row["approval_id"]:
        target += "#approvals"
    return redirect(target or url_for("workflows.inbox"))


# ------------------------------------------------------------------------------ list pages

def stalled_ids(ent, rows) -> set:
    """Ids of the listed records that are stalled in their stage (R27)."""
    pipes = model().pipelines_of(ent.name)
    if not pipes or not rows:
        return set()
    ids = [r["id"] for r in rows]
    out = set()
    for pipe in pipes:
        out |= {rid for rid, info in tenant().pipelines.stagnation(pipe, ids).items() if info.get("stagnant")}
    return out


def has_pipeline(ent) -> bool:
    return bool(model().pipelines_of(ent.name))


# ---------------------------------------------------------------------------------- plumbing

@bp.app_template_filter("field_label")
def field_label(name: str, ent) -> str:
    fld = ent.fields.get(name)
    return (label(fld.label) or name) if fld is not None else name


@bp.app_context_processor
def inject():
    return {"nav_pipelines": readable_pipelines, "inbox_unread": unread_count, "record_workflow": record_workflow,
            "field_lock": field_lock, "stalled_ids": stalled_ids, "has_pipeline": has_pipeline,
            "when_text": when_text}
