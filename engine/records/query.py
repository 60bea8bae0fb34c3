"""Typed list queries: filters with an allow-list of operators per field type, sorts, keyset cursors."""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa

from ..errors import BadRequest, FieldValueError
from ..i18n import message
from ..ids import as_id
from ..metadata.model import Entity, Field, Label

# System columns seen through the same typed machinery as user fields.
SYSTEM_FIELD_TYPES = {"id": "integer", "created_at": "datetime", "created_by": "user",
                      "updated_at": "datetime", "updated_by": "user", "owner": "user",
                      "department": "department", "version": "integer"}
SYSTEM_LABELS = {"id": {"zh": "编号", "en": "ID"}, "created_at": {"zh": "创建时间", "en": "Created"},
                 "created_by": {"zh": "创建人", "en": "Created by"},
                 "updated_at": {"zh": "更新时间", "en": "Updated"},
                 "updated_by": {"zh": "更新人", "en": "Updated by"}, "owner": {"zh": "负责人", "en": "Owner"},
                 "department": {"zh": "部门", "en": "Department"}, "version": {"zh": "版本", "en": "Version"}}
LIST_OPERATORS = {"in"}
RANGE_OPERATORS = {"between"}
NULL_OPERATORS = {"empty", "not_empty"}


def system_field(name: str) -> Field:
    """A Field describing a system column, so filters and display treat it like any other."""
    return Field(name=name, type=SYSTEM_FIELD_TYPES[name], label=Label.of(SYSTEM_LABELS[name]))


@dataclass
class Filter:
    field: Field
    op: str
    value: Any


def queryable_field(entity: Entity, name: str) -> Field | None:
    if name in entity.fields:
        return entity.fields[name]
    if name in SYSTEM_FIELD_TYPES and not entity.is_child:
        return system_field(name)
    return None


def parse_filters(entity: Entity, params: Mapping[str, Any], types, ctx) -> list[Filter]:
    """`field` / `field__op` keys with string values → typed filters; BadRequest names what is wrong."""
    out = []
    for key, raw in params.items():
        name, _, op = key.partition("__")
        op = op or "eq"
        field = queryable_field(entity, name)
        if field is None:
            raise BadRequest(f"unknown filter field '{name}' on {entity.name}")
        ftype = types.for_field(field)
        if not ftype.stored:
            raise BadRequest(f"field '{name}' cannot be filtered")
        allowed = ftype.operators_for(field)  # a formula's are those of what it returns
        if op not in allowed:
            raise BadRequest(f"operator '{op}' is not allowed on {field.type} field '{name}' "
                             f"(allowed: {', '.join(allowed)})")
        out.append(Filter(field, op, _filter_value(field, ftype, op, raw, ctx)))
    return out


def _filter_value(field: Field, ftype, op: str, raw: Any, ctx):
    if op in NULL_OPERATORS:
        return None

    def one(v):
        if op in ("contains", "startswith"):
            return str(v)
        try:
            value = ftype.coerce(field, v, ctx)
        except FieldValueError as exc:
            raise BadRequest(f"filter {field.name}__{op}: {message(exc.key, 'en', **exc.params)}") from None
        if value is None:
            raise BadRequest(f"filter {field.name}__{op} needs a value")
        return value

    if op in LIST_OPERATORS:
        items = raw if isinstance(raw, (list, tuple)) else [s for s in str(raw).split(",") if s.strip()]
        return [one(v) for v in items]
    if op in RANGE_OPERATORS:
        items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
        if len(items) != 2:
            raise BadRequest(f"filter {field.name}__between takes two values: low,high")
        return [one(v) if str(v).strip() else None for v in items]
    if field.type == "multiselect" and op in ("eq", "ne"):
        return str(raw)
    return one(raw)


def filter_clause(table: sa.Table, f: Filter, types) -> Any:
    col = table.c[f.field.name]
    ftype = types.for_field(f.field)
    op, v = f.op, f.value
    if op == "empty":
        return sa.or_(col.is_(None), col == "") if _is_textual(col) else col.is_(None)
    if op == "not_empty":
        return sa.and_(col.is_not(None), col != "") if _is_textual(col) else col.is_not(None)
    if f.field.type == "multiselect":
        # Stored as a JSON list: match the quoted value inside it.
        values = v if isinstance(v, list) else [v]
        clause = sa.or_(*[col.contains(json.dumps(str(x), ensure_ascii=False), autoescape=True) for x in values])
        return sa.not_(clause) if op == "ne" else clause
    if op == "contains":
        return col.icontains(v, autoescape=True)
    if op == "startswith":
        return col.istartswith(v, autoescape=True)
    if op == "in":
        return col.in_([ftype.to_db(f.field, x) for x in v])
    if op == "between":
        lo, hi = (None if x is None else ftype.to_db(f.field, x) for x in v)
        parts = ([col >= lo] if lo is not None else []) + ([col <= hi] if hi is not None else [])
        return sa.and_(*parts) if parts else sa.true()
    db = ftype.to_db(f.field, v)
    if op == "eq":
        return col == db
    if op == "ne":
        return sa.or_(col != db, col.is_(None))
    # Only the operator asked for is built: SQLAlchemy refuses `<` against True/False (booleans).
    return {"lt": col.__lt__, "lte": col.__le__, "gt": col.__gt__, "gte": col.__ge__}[op](db)


def _is_textual(col) -> bool:
    return isinstance(col.type, (sa.String, sa.Text))


@dataclass
class Sort:
    field: Field
    descending: bool


def parse_sort(entity: Entity, sort: str | None, types) -> Sort:
    if not sort:
        return Sort(system_field("id") if not entity.is_child else Field("id", "integer", Label.of("id")), True)
    desc = sort.startswith("-")
    name = sort.lstrip("-+")
    field = queryable_field(entity, name)
    if field is None:
        raise BadRequest(f"cannot sort by unknown field '{name}' on {entity.name}")
    ftype = types.for_field(field)
    if not ftype.stored or not ftype.sortable:
        raise BadRequest(f"cannot sort by {field.type} field '{name}'")
    return Sort(field, desc)


def order_by(table: sa.Table, sort: Sort) -> list:
    col = table.c[sort.field.name]
    if sort.field.name == "id":
        return [col.desc() if sort.descending else col.asc()]
    # Empty values always last, whatever the direction, so a cursor can describe a position.
    return [col.is_(None).asc(), col.desc() if sort.descending else col.asc(),
            table.c.id.desc() if sort.descending else table.c.id.asc()]


def encode_cursor(sort: Sort, row: Mapping, types) -> str:
    name = sort.field.name
    raw = row[name]
    value = None if raw is None else types.for_field(sort.field).to_json(
        sort.field, types.for_field(sort.field).from_db(sort.field, raw))
    payload = json.dumps([name, sort.descending, value, row["id"]], default=str, ensure_ascii=False)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def cursor_clause(table: sa.Table, sort: Sort, cursor: str, types, ctx) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, desc, value, last_id = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, TypeError, RecursionError):
        raise BadRequest("invalid cursor") from None
    if not isinstance(name, str) or as_id(last_id) is None:
        raise BadRequest("invalid cursor")
    if name != sort.field.name or bool(desc) != sort.descending:
        raise BadRequest("the cursor belongs to another sort order")
    id_col = table.c.id
    after_id = id_col < last_id if sort.descending else id_col > last_id
    if name == "id":
        return after_id
    col = table.c[name]
    if value is None:
        return sa.and_(col.is_(None), after_id)
    ftype = types.for_field(sort.field)
    try:
        v = ftype.to_db(sort.field, ftype.coerce(sort.field, value, ctx))
    except FieldValueError:
        raise BadRequest("invalid cursor") from None
    beyond = col < v if sort.descending else col > v
    return sa.or_(col.is_(None), beyond, sa.and_(col == v, after_id))


def search_clause(entity: Entity, table: sa.Table, text: str, visible: set[str] | None,
                  types) -> Any | None:
    """Full-text-ish search: the title and text-like fields contain the words; phones their digits.

    Only `visible` fields are searched, so a search is never an oracle for a hidden value.
    """
    words = [w for w in re.split(r"\s+", text.strip()) if w]
    if not words:
        return None
    fields = [f for f in entity.fields.values() if (visible is None or f.name in visible) and f.name in table.c]
    how = {f.name: types.for_field(f).search for f in fields}   # each type says how it is searched
    text_cols = [table.c[f.name] for f in fields if how.get(f.name) == "text"]
    phone_cols = [table.c[f.name] for f in fields if how.get(f.name) == "phone"]
    per_word = []
    for w in words:
        ors = [c.icontains(w, autoescape=True) for c in text_cols]
        digits = re.sub(r"\D", "", w)
        if len(digits) >= 4:
            ors += [c.contains(digits.lstrip("0"), autoescape=True) for c in phone_cols]
        if as_id(w) is not None:
            ors.append(table.c.id == as_id(w))
        per_word.append(sa.or_(*ors) if ors else sa.false())
    return sa.and_(*per_word)
