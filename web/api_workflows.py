"""JSON API v1 for pipelines, approvals, help requests and notifications (R4 R5 R6 R26 R27 R28).

Routes on the API blueprint of web/api.py (same authentication, error handlers and languages):

    GET  /approvals[?mine=1][&submitted=1][&status=…][&entity=…][&record_id=…][&limit=n]
    GET  /approvals/<id>
    POST /approvals/<id>/approve | /reject | /withdraw | /resubmit     body {"comment": "…"} (optional;
                                  a reject needs a comment)
    GET  /pipelines                               the pipelines the caller may read
    GET  /pipelines/<name>[?stagnant=1][&owner=<id>][&q=…][&per_column=n]   the board as JSON
    POST /pipelines/<name>/move                   body {"id": …, "stage": "…", "version": n (optional)}
    GET  /<entity>/<id>/stage-history
    GET  /<entity>/<id>/checklist                 (POST {"kind", "item", "done"} ticks an item)
    GET  /<entity>/<id>/approvals
    POST /<entity>/<id>/help                      body {"to": "user:<username>" | "role:<role>", "note": "…"}
    GET  /tasks[?all=1]
    POST /tasks/<id>/done
    GET  /notifications[?unread=1]
    POST /notifications/read                      body {"ids": [...]} (optional: all)

Errors: 400 malformed request, 403 not your step / self-approval / not allowed, 404 unknown or not
visible, 409 already decided (a double click) or stale version, 422 `{"errors": {field: [...]}}`
(every unmet stage criterion under the stage field, each empty required field under its own key
too), 423 locked by a pending approval or by a won/lost stage.
A plain PATCH of the record is enforced the same way: the engine checks every write.
"""
from __future__ import annotations

from decimal import Decimal

from flask import jsonify, request

from .api import (ApiError, _positive_int, api_locale, bp, entity_or_404, json_body, me, no_query_params, only_keys,
                  service)
from .context import tenant
from .i18n import label
from .workflows import hide_fields, settle_notifications

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _flag(name: str) -> bool:
    raw = request.args.get(name)
    if raw is None:
        return False
    word = raw.strip().lower()
    if word not in TRUE + FALSE:
        raise ApiError(400, f"{name} must be 1/true or 0/false")
    return word in TRUE


def _optional_body() -> dict:
    """A JSON object body, or {} when none was sent."""
    if not request.get_data(cache=True).strip():
        return {}
    return json_body()


def _comment(body: dict) -> str:
    comment = body.get("comment", "")
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise ApiError(400, '"comment" must be a string')
    return comment


def _lang() -> str:
    return api_locale()[:2].lower()


def _money(value) -> str:
    return format(Decimal(str(value or 0)), "f")


def _figure(value) -> str | None:
    """A board sum, or null when the reader may not see the amount it adds up."""
    return None if value is None else _money(value)


# ----------------------------------------------------------------------------------- approvals

@bp.get("/approvals", endpoint="approvals")
def approvals_list():
    no_query_params(("mine", "submitted", "status", "entity", "record_id", "limit"))
    record_id = request.args.get("record_id")
    if record_id is not None and not record_id.isdigit():
        raise ApiError(400, "record_id must be a whole number")
    entity = request.args.get("entity") or None
    if entity is not None:
        entity_or_404(entity)
    limit = 100 if "limit" not in request.args else _positive_int("limit", request.args["limit"], 500)
    items = tenant().approvals.list(me(), mine=_flag("mine"), submitted=_flag("submitted"),
                                    status=request.args.get("status") or None, entity=entity,
                                    record_id=int(record_id) if record_id else None, limit=limit,
                                    locale=api_locale())
    return jsonify({"items": hide_fields(items, me())})


@bp.get("/approvals/<int:aid>", endpoint="approval")
def approval_get(aid):
    no_query_params()
    return jsonify(hide_fields([tenant().approvals.get(aid, me(), api_locale())], me())[0])


@bp.post("/approvals/<int:aid>/<action>", endpoint="approval_action")
def approval_action(aid, action):
    if action not in ("approve", "reject", "withdraw", "resubmit"):
        raise ApiError(404, f"unknown approval action '{action}': approve, reject, withdraw or resubmit")
    no_query_params()
    body = only_keys(_optional_body(), {"comment"})
    result = getattr(tenant().approvals, action)(aid, me(), _comment(body), api_locale())
    settle_notifications(me(), approval_id=aid)
    return jsonify(hide_fields([result], me())[0])


@bp.get("/<entity>/<int:rid>/approvals", endpoint="record_approvals")
def record_approvals(entity, rid):
    ent = entity_or_404(entity)
    no_query_params()
    return jsonify({"items": hide_fields(tenant().approvals.for_record(ent.name, rid, me(), api_locale()), me())})


# ----------------------------------------------------------------------------------- pipelines

def _pipeline(name: str):
    pipe = tenant().model.pipelines.get(name)
    if pipe is None:
        raise ApiError(404, f"unknown pipeline '{name}'")
    return pipe


def _describe(pipe) -> dict:
    lang = _lang()
    return {"name": pipe.name, "label": label(pipe.label, lang) or pipe.name, "entity": pipe.entity,
            "field": pipe.field, "amount": pipe.amount, "forward_only": pipe.forward_only,
            "stagnation_days": "average" if pipe.stagnation_average else pipe.stagnation_days,
            "stages": [{"name": s.name, "label": label(s.label, lang), "probability": _money(s.probability),
                        "outcome": s.outcome, "requires": list(s.requires),
                        "checks": [c.message.get(api_locale()) for c in s.checks],
                        "actions": [a.get(api_locale()) for a in s.actions],
                        "deliverables": [d.get(api_locale()) for d in s.deliverables]} for s in pipe.stages]}


@bp.get("/pipelines", endpoint="pipelines")
def pipelines_list():
    no_query_params()
    perms = service().permissions
    model = tenant().model
    return jsonify({"items": [_describe(p) for p in model.pipelines.values()
                              if perms.can(model.entities[p.entity], me(), "read")]})


@bp.get("/pipelines/<name>", endpoint="pipeline_board")
def pipeline_board(name):
    """The board: per stage its count, amount, weighted amount and the first cards (R26 R27)."""
    pipe = _pipeline(name)
    no_query_params(("stagnant", "owner", "q", "per_column"))
    filters = {}
    if "stagnant" in request.args:
        filters["stagnant"] = "1" if _flag("stagnant") else "0"
    owner = request.args.get("owner")
    if owner:
        if not owner.isdigit():
            raise ApiError(400, "owner must be a user id")
        filters["owner"] = owner
    per_column = 50 if "per_column" not in request.args else \
        _positive_int("per_column", request.args["per_column"], 500)
    svc = service()
    board = tenant().pipelines.board(name, me(), filters=filters, search=(request.args.get("q") or None),
                                     per_column=per_column, locale=api_locale())
    lang = _lang()
    columns = []
    for col in board.columns:
        columns.append({
            "stage": col.stage.name, "label": label(col.stage.label, lang),
            "probability": _money(col.stage.probability), "outcome": col.stage.outcome,
            "count": col.count, "amount": _figure(col.amount), "weighted": _figure(col.weighted),
            "cards": [{"id": c.record["id"], "title": c.title, "owner": c.display.get("owner"),
                       "days_in_stage": c.days_in_stage, "stagnant": c.stagnant,
                       "record": svc.to_json(pipe.entity, c.record)} for c in col.cards]})
    return jsonify({**_describe(pipe), "columns": columns, "total_amount": _figure(board.total_amount),
                    "total_weighted": _figure(board.total_weighted)})


@bp.post("/pipelines/<name>/move", endpoint="pipeline_move")
def pipeline_move(name):
    """Move a record to a stage; 422 lists every unmet criterion under the stage field (and each empty
    required field under its own key)."""
    pipe = _pipeline(name)
    no_query_params()
    body = only_keys(json_body(), {"id", "stage", "version"})
    rid, stage = body.get("id"), body.get("stage")
    if isinstance(rid, bool) or not isinstance(rid, (int, str)) or not str(rid).isdigit():
        raise ApiError(400, '"id" must be the record id')
    if not isinstance(stage, str) or not stage:
        raise ApiError(400, '"stage" must be the name of a stage')
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not str(version).isdigit()):
        raise ApiError(400, '"version" must be a whole number')
    rec = tenant().pipelines.move(name, int(rid), stage, me(), version=int(version) if version is not None else None,
                                  locale=api_locale())
    resp = jsonify(service().to_json(pipe.entity, rec))
    resp.headers["ETag"] = f'"{rec["version"]}"'
    return resp


@bp.get("/<entity>/<int:rid>/stage-history", endpoint="stage_history")
def stage_history(entity, rid):
    ent = entity_or_404(entity)
    no_query_params()
    if not tenant().model.pipelines_of(ent.name):
        raise ApiError(404, f"{ent.name} has no pipeline")
    items = tenant().pipelines.history(ent.name, rid, me(), api_locale())
    info = {}
    for pipe in tenant().model.pipelines_of(ent.name):
        info[pipe.name] = tenant().pipelines.stagnation(pipe, [rid]).get(rid)
    return jsonify({"items": items, "current": info})


@bp.route("/<entity>/<int:rid>/checklist", methods=["GET", "POST"], endpoint="checklist")
def checklist(entity, rid):
    ent = entity_or_404(entity)
    no_query_params()
    pipes = tenant().model.pipelines_of(ent.name)
    if not pipes:
        raise ApiError(404, f"{ent.name} has no pipeline")
    pipe = pipes[0]
    if request.method == "GET":
        return jsonify({"items": tenant().pipelines.checklist(pipe.name, rid, me(), api_locale())})
    body = json_body()
    kind, item, done = body.get("kind"), body.get("item"), body.get("done", True)
    if kind not in ("action", "deliverable") or isinstance(item, bool) or not isinstance(item, int) \
            or not isinstance(done, bool):
        raise ApiError(400, 'give "kind" (action or deliverable), "item" (its index) and "done" (true/false)')
    return jsonify({"items": tenant().pipelines.tick(pipe.name, rid, kind, item, done, me(), api_locale())})


# ------------------------------------------------------------------------- help, tasks, notes

@bp.post("/<entity>/<int:rid>/help", endpoint="ask_for_help")
def ask_for_help(entity, rid):
    ent = entity_or_404(entity)
    no_query_params()
    body = only_keys(json_body(), {"to", "note"})
    to, note = body.get("to", ""), body.get("note", "")
    if not isinstance(to, str) or not isinstance(note, str):
        raise ApiError(400, '"to" and "note" must be strings')
    task = tenant().tasks.ask_for_help(ent.name, rid, me(), to, note, api_locale())
    resp = jsonify(task)
    resp.status_code = 201
    return resp


@bp.get("/tasks", endpoint="tasks")
def tasks_list():
    no_query_params(("all",))
    return jsonify({"items": tenant().tasks.list(me(), open_only=not _flag("all"))})


@bp.post("/tasks/<int:tid>/done", endpoint="task_done")
def task_done(tid):
    no_query_params()
    task = tenant().tasks.complete(tid, me(), api_locale())
    settle_notifications(me(), task_id=tid)
    return jsonify(task)


@bp.get("/notifications", endpoint="notifications")
def notifications_list():
    no_query_params(("unread", "limit"))
    limit = 50 if "limit" not in request.args else _positive_int("limit", request.args["limit"], 500)
    notes = tenant().notifications
    return jsonify({"items": notes.list(me(), unread_only=_flag("unread"), limit=limit, locale=api_locale()),
                    "unread": notes.unread_count(me())})


@bp.post("/notifications/read", endpoint="notifications_read")
def notifications_read():
    no_query_params()
    body = _optional_body()
    ids = body.get("ids")
    if ids is not None and (not isinstance(ids, list) or
                            not all(isinstance(i, int) and not isinstance(i, bool) for i in ids)):
        raise ApiError(400, '"ids" must be a list of notification ids')
    notes = tenant().notifications
    marked = notes.mark_read(me(), ids)
    return jsonify({"marked": marked, "unread": notes.unread_count(me())})
