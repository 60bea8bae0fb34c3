"""reference (a record of `field.to`), user and department.

reference and user hold BigInteger ids. An int, a digit string ("12") or "#12" is taken as an id
directly (whether it exists is the records service's check); any other text goes to
``ctx.resolve_reference(field, text)`` / ``ctx.resolve_user(text)``, which return the id or raise
FieldValueError themselves. Without a resolver such text is refused (no_such_record / no_such_user).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import sqlalchemy as sa

from ..ids import MAX_ID  # a larger "id" names no record (and would overflow the driver)
from ..metadata.model import Field
from ._util import halfwidth, is_blank
from .base import FieldContext, FieldType, fail

_ID_RE = re.compile(r"#?\s*(\d{1,19})", re.ASCII)
ID_OPERATORS = ("eq", "ne", "in", "empty", "not_empty")


def _read_id(value: Any, key: str, resolve) -> int:
    if isinstance(value, bool):
        raise fail(key, value=str(value))
    if isinstance(value, int):
        if not 0 < value <= MAX_ID:
            raise fail(key, value=str(value))
        return value
    if isinstance(value, Mapping) and "id" in value:
        return _read_id(value["id"], key, None)
    if isinstance(value, str):
        s = halfwidth(value.strip())
        m = _ID_RE.fullmatch(s)
        if m and 0 < int(m.group(1)) <= MAX_ID:
            return int(m.group(1))
        if resolve is not None:
            got = resolve(s)
            if got is None:
                raise fail(key, value=s)
            return _read_id(got, key, None)
    raise fail(key, value=str(value))


class ReferenceType(FieldType):
    name = "reference"
    operators = ID_OPERATORS
    links_to = "record"
    indexed = True
    groupable = True
    widget = "reference"
    json_type = {"type": "integer", "minimum": 1}

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.BigInteger()

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        resolve = None
        if ctx.resolve_reference is not None:
            def resolve(text, _f=field, _r=ctx.resolve_reference):
                return _r(_f, text)
        return _read_id(value, "no_such_record", resolve)

    def from_db(self, field: Field, value: Any) -> Any:
        return None if value is None else int(value)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        return "" if value is None else f"#{value}"

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        if not field.to:
            return [(("to",), "a reference field needs `to:` (the target entity)")]
        return []


class UserType(FieldType):
    name = "user"
    operators = ID_OPERATORS
    links_to = "user"
    indexed = True
    groupable = True
    widget = "user"
    json_type = {"type": "integer", "minimum": 1}

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.BigInteger()

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        return _read_id(value, "no_such_user", ctx.resolve_user)

    def from_db(self, field: Field, value: Any) -> Any:
        return None if value is None else int(value)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        return "" if value is None else f"#{value}"


class DepartmentType(FieldType):
    """A department name (String(100)); it must be one of ``ctx.departments``.

    Decision: with no departments in the context every non-empty value is refused, so callers must
    pass the organisation's departments (R1) in FieldContext.departments.
    """

    name = "department"
    operators = ("eq", "ne", "in", "startswith", "empty", "not_empty")
    links_to = "department"
    groupable = True
    widget = "department"

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(100)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if not isinstance(value, str):
            raise fail("no_such_department", value=str(value))
        s = value.strip()
        if s not in ctx.departments:
            raise fail("no_such_department", value=s)
        return s

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        if value not in ctx.departments:
            raise fail("no_such_department", value=str(value))

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        return faker.random_element(list(ctx.departments)) if ctx.departments else None
