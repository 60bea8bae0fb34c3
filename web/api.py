"""JSON API v1 over the records service (the same service, rules and messages as the pages).

Owned by the API work item (web/api.py, tests/web/test_api.py, bench/api_list.py); pages live in
web/entities.py. Routes (url_prefix /api/v1; auth: `Authorization: Bearer <token>` or a signed-in
session, see web/security.py — session clients send the CSRF token in `X-CSRFToken` on writes):

    GET    /                          entities and their fields (a small self-description)
    GET    /search?q=…[&limit=n]      quick search across entities (R10)
    GET    /<entity>                  list: field=value, field__op=value, q, sort, limit, after
    POST   /<entity>                  create → 201 + Location   [?confirm_duplicates=true]
    GET    /<entity>/<id>             one record (ETag: "<version>")
    PATCH  /<entity>/<id>             update; needs the version it was based on (body or If-Match)
                                      [?confirm_duplicates=true]
    DELETE /<entity>/<id>             delete → 204 (If-Match optional)
    GET    /<entity>/<id>/history     the audit timeline, newest first

Status codes: 400 malformed request (unknown query parameter, bad filter/operator/cursor, body not a
JSON object); 401 no/bad/revoked credentials (WWW-Authenticate: Bearer); 403 the user's role may not
do this (the record itself is visible); 404 unknown entity, or a record that does not exist or is
outside the user's row scope (no oracle); 409 stale version (with current_version, changed_by,
changes), a delete refused because other records still reference this one (with "errors"), or a
likely duplicate (with "duplicates"; repeat with ?confirm_duplicates=true to save anyway); 422
validation (`{"errors": {field: [...]}}`); 428 PATCH without a version; 503 the database needs
`formwork migrate` for this config.
`search` is a route of its own, so an entity named `search` is not reachable through this API.
Protocol errors (400/401/428) are English for developers; messages about data (422, 404, 409) are in
the caller's language: Accept-Language (zh/en), else the user's saved locale, else the tenant's.
"""
from __future__ import annotations

import json
from decimal import Decimal

from flask import Blueprint, g, jsonify, request, url_for
from flask_login import current_user

from engine.errors import BadRequest, Conflict, DuplicatesFound, Locked, NotFound, ValidationFailed
from engine.i18n import message
from engine.permissions import PermissionDenied
from engine.records.query import queryable_field

from .context import state, tenant
from .i18n import LOCALES, label
from .schema_guard import schema_problem
from .security import api_error

bp = Blueprint("api", __name__, url_prefix="/api/v1")

LIST_PARAMS = ("q", "sort", "limit", "after")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500                      # the records service's own ceiling
SEARCH_LIMIT, SEARCH_MAX = 20, 100
MULTI_VALUE_OPS = ("in",)            # ?level__in=A&level__in=B is the same as ?level__in=A,B
WRITE_PARAMS = ("confirm_duplicates",)
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class ApiError(Exception):
    """Stop a request with a JSON error: {"error": message, **extra}."""

    def __init__(self, status: int, text: str, **extra):
        super().__init__(text)
        self.status = status
        self.extra = extra


# --------------------------------------------------------------------------------------- helpers

def me():
    return current_user.user


def service():
    return tenant().records


def api_locale() -> str:
    """Accept-Language (zh/en) first, then the user's saved locale, then the tenant's."""
    cached = g.get("fw_api_locale")
    if cached:
        return cached
    tenant_locale = tenant().model.tenant.locale or "zh_CN"
    loc = None
    for value, _quality in request.accept_languages:
        lang = value[:2].lower()
        if lang in LOCALES:
            loc = tenant_locale if tenant_locale[:2].lower() == lang else LOCALES[lang]
            break
    if loc is None:
        loc = getattr(current_user, "locale", None) or tenant_locale
    g.fw_api_locale = loc
    return loc


def _msg(key: str, **params) -> str:
    return message(key, api_locale(), **params)


def entity_or_404(name: str):
    ent = tenant().model.entities.get(name)
    if ent is None:
        raise ApiError(404, f"unknown entity '{name}'")
    return ent


def no_query_params(allowed: tuple[str, ...] = ()) -> None:
    for key in request.args:
        if key not in allowed:
            raise ApiError(400, f"unknown query parameter '{key}'")
        if len(request.args.getlist(key)) > 1:
            raise ApiError(400, f"query parameter '{key}' is given more than once")


def confirm_duplicates() -> bool:
    """?confirm_duplicates=true: the caller confirmed the record is not a duplicate (R14)."""
    no_query_params(WRITE_PARAMS)
    raw = request.args.get("confirm_duplicates")
    if raw is None:
        return False
    word = raw.strip().lower()
    if word not in TRUE_WORDS + FALSE_WORDS:
        raise ApiError(400, "confirm_duplicates must be true or false")
    return word in TRUE_WORDS


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number")


def json_body() -> dict:
    """The request body as a JSON object (decimals kept exact), else a 400 naming the problem."""
    if not request.is_json:
        raise ApiError(400, "the body must be a JSON object sent with Content-Type: application/json")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not valid UTF-8") from None
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def only_keys(body: dict, allowed: set[str]) -> dict:
    """`body`, else a 400 naming the keys it has beyond `allowed` (a misspelt key is never ignored)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"unknown key(s) in the body: {', '.join(unknown)}")
    return body


def _positive_int(name: str, raw: str, ceiling: int) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= ceiling:
        raise ApiError(400, f"{name} must be a whole number from 1 to {ceiling}")
    return value


def record_url(entity: str, rid) -> str:
    return url_for("api.record", entity=entity, rid=rid)


def record_response(ent, rec: dict, status: int = 200):
    resp = jsonify(service().to_json(ent, rec))
    resp.status_code = status
    if rec.get("version") is not None:
        resp.headers["ETag"] = f'"{rec["version"]}"'
    return resp


def _if_match() -> tuple[bool, int | None]:
    """(present, version) from If-Match: "3", 3 or W/"3"; the version is None for `*`."""
    header = request.headers.get("If-Match")
    if header is None or not header.strip():
        return False, None
    value = header.strip()
    if value == "*":
        return True, None
    if "," in value:
        raise ApiError(400, "If-Match must name one version, e.g. If-Match: \"3\"")
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip().strip('"')
    if not value.isdigit():
        raise ApiError(400, f"If-Match must be a record version such as \"3\", not {header.strip()}")
    return True, int(value)


def _body_version(body: dict) -> int | None:
    """The `version` of a PATCH body (removed from it); 422 when it is not a whole number."""
    if "version" not in body:
        return None
    raw = body.pop("version")
    if raw is None:
        return None
    bad = ValidationFailed({"version": [_msg("not_an_integer")]})
    if isinstance(raw, bool) or not isinstance(raw, (int, str, Decimal)):
        raise bad
    try:
        version = int(raw)
    except (TypeError, ValueError, ArithmeticError):
        raise bad from None
    if isinstance(raw, Decimal) and raw != version:
        raise bad
    return version


# ---------------------------------------------------------------------------------- plumbing

@bp.before_request
def require_migrated_schema():
    """503 while the database has not been migrated to exactly the served config (checked once
    per tenant object and app; a failing check is repeated so `formwork migrate` is picked up)."""
    st = state()
    current = tenant()
    if st.extra.get("api_schema_ok") is current:
        return None
    problem = schema_problem(current)
    if problem:
        resp = api_error(503, problem)
        resp.headers["Retry-After"] = "60"
        return resp
    st.extra["api_schema_ok"] = current
    return None


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return api_error(exc.status, str(exc), **exc.extra)


@bp.errorhandler(ValidationFailed)
def _validation_failed(exc: ValidationFailed):
    resp = jsonify({"errors": exc.errors})
    resp.status_code = 422
    return resp


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict):
    return api_error(409, str(exc), current_version=exc.current_version, changed_by=exc.changed_by,
                     changes=exc.changes)


@bp.errorhandler(Locked)
def _locked(exc: Locked):
    """423: the record or some of its fields are frozen while an approval is pending (R4)."""
    return api_error(423, str(exc), fields=exc.fields, approval_id=exc.approval_id)


@bp.errorhandler(DuplicatesFound)
def _duplicates(exc: DuplicatesFound):
    return api_error(409, str(exc), duplicates=exc.matches)


@bp.errorhandler(PermissionDenied)
def _forbidden(exc: PermissionDenied):
    return api_error(403, str(exc))


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return api_error(404, str(exc) or _msg("not_found"))


@bp.errorhandler(BadRequest)
def _bad_request(exc: BadRequest):
    return api_error(400, str(exc))


# ------------------------------------------------------------------------------------ routes

def _describe_field(f, types, lang: str, access: str = "write") -> dict:
    ftype = types.for_field(f)
    out = {"name": f.name, "type": f.type, "label": label(f.label, lang) or f.name}
    if f.required:
        out["required"] = True
    if f.unique:
        out["unique"] = True
    if ftype.computed or access == "read" or (f.settings or {}).get("approval"):
        out["read_only"] = True          # computed, read-only for the role, or set by an approval flow only
    if f.to:
        out["to"] = f.to
    if f.options is not None:
        out["options"] = [{"value": o.value, "label": o.label.get(LOCALES.get(lang))} for o in f.options]
    if f.max_length is not None:
        out["max_length"] = f.max_length
    for key in ("min", "max"):
        if getattr(f, key) is not None:
            out[key] = getattr(f, key)
    if f.child is not None:
        out["fields"] = [_describe_field(c, types, lang) for c in f.child.fields.values()]
    return out


@bp.get("/", endpoint="index")
def index():
    """The entities the caller may read, with the fields they may see (OpenAPI comes later)."""
    no_query_params()
    t = tenant()
    perms = service().permissions
    user = me()
    lang = api_locale()[:2].lower()
    entities = []
    for ent in t.model.entities.values():
        if not perms.can(ent, user, "read"):
            continue
        access = perms.field_access(ent, user)
        entities.append({
            "name": ent.name, "label": label(ent.label, lang) or ent.name, "title": ent.title,
            "url": url_for("api.collection", entity=ent.name),
            "actions": [a for a in ("create", "update", "delete") if perms.can(ent, user, a)],
            "system_fields": list(ent.system_fields),
            "fields": [_describe_field(f, t.field_types, lang, access.get(f.name, "write"))
                       for f in ent.fields.values() if access.get(f.name, "write") != "hidden"],
        })
    return jsonify({"tenant": t.name, "version": "v1", "search": url_for("api.search"),
                    "entities": entities})


@bp.get("/search", endpoint="search")
def search():
    """Quick search by title, text fields and phone numbers across every entity (R10)."""
    no_query_params(("q", "limit"))
    text = (request.args.get("q") or "").strip()
    if not text:
        raise ApiError(400, "query parameter 'q' is required: the text to search for")
    limit = SEARCH_LIMIT if "limit" not in request.args else \
        _positive_int("limit", request.args["limit"], SEARCH_MAX)
    hits = service().quick_search(text[:200], me(), limit=limit)
    entities = tenant().model.entities
    lang = api_locale()[:2].lower()
    items = []
    for hit in hits[:limit]:
        ent = entities.get(hit["entity"])
        items.append({"entity": hit["entity"], "id": hit["id"], "title": hit["title"],
                      "entity_label": label(ent.label, lang) if ent else hit["entity"],
                      "url": record_url(hit["entity"], hit["id"])})
    return jsonify({"items": items})


def list_filters(ent, args) -> dict:
    """`field=value` / `field__op=value` parameters → the records service's filters."""
    filters: dict = {}
    # A field hidden from the caller (or a formula over one) is refused exactly like one that does
    # not exist: another message would confirm it is there.
    visible = service().permissions.visible_fields(ent, me())
    for key in args:
        values = args.getlist(key)
        if key in LIST_PARAMS:
            if len(values) > 1:
                raise ApiError(400, f"query parameter '{key}' is given more than once")
            continue
        name, _, op = key.partition("__")
        if key == "stagnant" and tenant().model.pipelines_of(ent.name):
            filters[key] = values[-1]          # stalled in their stage (R27), for entities with a pipeline
            continue
        if not name or queryable_field(ent, name) is None or (name in ent.fields and name not in visible):
            raise ApiError(400, f"unknown query parameter '{key}'")
        if len(values) > 1:
            if op not in MULTI_VALUE_OPS:
                raise ApiError(400, f"query parameter '{key}' is given more than once "
                                    f"(use {name}__in=a,b for several values)")
            filters[key] = values
        else:
            filters[key] = values[0]
    return filters


@bp.get("/<entity>", endpoint="collection")
def list_records(entity):
    ent = entity_or_404(entity)
    args = request.args
    filters = list_filters(ent, args)
    limit = DEFAULT_LIMIT if "limit" not in args else _positive_int("limit", args["limit"], MAX_LIMIT)
    svc = service()
    page = svc.list(ent.name, me(), filters=filters, search=args.get("q") or None,
                    sort=args.get("sort") or None, limit=limit, after=args.get("after") or None,
                    locale=api_locale())
    return jsonify({"items": [svc.to_json(ent, r) for r in page.items], "next": page.next})


@bp.post("/<entity>", endpoint="create")
def create_record(entity):
    ent = entity_or_404(entity)
    confirmed = confirm_duplicates()
    body = json_body()
    rec = service().create(ent.name, body, me(), locale=api_locale(), confirm_duplicates=confirmed)
    resp = record_response(ent, rec, 201)
    resp.headers["Location"] = record_url(ent.name, rec["id"])
    return resp


@bp.get("/<entity>/<int:rid>", endpoint="record")
def get_record(entity, rid):
    ent = entity_or_404(entity)
    no_query_params()
    return record_response(ent, service().get(ent.name, rid, me(), locale=api_locale()))


@bp.patch("/<entity>/<int:rid>", endpoint="update")
def update_record(entity, rid):
    ent = entity_or_404(entity)
    confirmed = confirm_duplicates()
    body = json_body()
    header_given, header_version = _if_match()
    body_version = _body_version(body)
    if body_version is not None and header_version is not None and body_version != header_version:
        raise ApiError(400, f"the body's version ({body_version}) and If-Match ({header_version}) disagree")
    version = body_version if body_version is not None else header_version
    if version is None and not header_given:
        raise ApiError(428, "PATCH needs the version the change is based on: send \"version\" in the "
                            "body or an If-Match: \"<version>\" header (If-Match: * skips the check)")
    rec = service().update(ent.name, rid, body, me(), version=version, locale=api_locale(),
                           confirm_duplicates=confirmed)
    return record_response(ent, rec)


@bp.delete("/<entity>/<int:rid>", endpoint="delete")
def delete_record(entity, rid):
    ent = entity_or_404(entity)
    no_query_params()
    _given, version = _if_match()
    try:
        service().delete(ent.name, rid, me(), version=version, locale=api_locale())
    except ValidationFailed as exc:  # still referenced by other records: a conflict with their state
        first = next((m for msgs in exc.errors.values() for m in msgs), str(exc))
        return api_error(409, first, errors=exc.errors)
    return "", 204


@bp.post("/<entity>/merge", endpoint="merge")
def merge_records(entity):
    """Merge duplicates (R20): {"survivor": id, "merged": [ids], "choices": {field: record id}}."""
    from engine.dedup.merge import merge

    ent = entity_or_404(entity)
    no_query_params()
    body = only_keys(json_body(), {"survivor", "merged", "choices"})
    if "survivor" not in body or not isinstance(body.get("merged"), list):
        raise ApiError(400, 'give "survivor" (a record id) and "merged" (a list of record ids)')
    choices = body.get("choices") or {}
    if not isinstance(choices, dict):
        raise ApiError(400, '"choices" must map field names to record ids')
    result = merge(tenant(), ent, body["survivor"], body["merged"], choices, me(), locale=api_locale())
    return jsonify({"survivor": service().to_json(ent, result["survivor"]), "merged": result["merged"],
                    "moved": result["moved"]})


@bp.get("/<entity>/<int:rid>/history", endpoint="history")
def record_history(entity, rid):
    ent = entity_or_404(entity)
    no_query_params()
    items = service().history(ent.name, rid, me())
    for it in items:
        at = it.get("at")
        it["at"] = at.isoformat() if at is not None else None
    return jsonify({"items": items})


@bp.route("/<entity>/<rid>", methods=["GET", "PATCH", "DELETE"], endpoint="bad_id")
@bp.route("/<entity>/<rid>/history", methods=["GET"], endpoint="bad_id_history")
def bad_record_id(entity, rid):
    """A record id that is not a whole number names no record (after the entity is checked)."""
    entity_or_404(entity)
    raise ApiError(404, _msg("not_found"))
