"""subtable: rows of a child entity (``field.child``), stored in their own table, not a column.

coerce only checks the shape: a list of objects (or a JSON string of one); per-row field coercion,
row ids and positions are the records service's job. ``[]`` means "no rows" and stays ``[]``;
``None``/"" means "not given". field.min / field.max bound the number of rows.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from ..metadata.model import Field
from ._util import is_blank, is_zh
from .base import FieldContext, FieldType, fail


class SubtableType(FieldType):
    name = "subtable"
    stored = False
    operators = ()
    sortable = False
    aggregations = ()
    widget = "subtable"
    json_type = {"type": "array", "items": {"type": "object"}}

    def json_schema(self, field: Field) -> dict:
        return dict(self.json_type)

    def column_type(self, field: Field):
        return None  # no column on the parent's table; the child table is built from field.child

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise fail("not_a_list") from None
        if not isinstance(value, (list, tuple)):
            raise fail("not_a_list")
        rows = []
        for row in value:
            if not isinstance(row, Mapping):
                raise fail("not_a_list")
            rows.append(dict(row))
        return rows

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        if isinstance(field.min, int) and len(value) < field.min:
            raise fail("too_few_rows", min=field.min)
        if isinstance(field.max, int) and len(value) > field.max:
            raise fail("too_many_rows", max=field.max)

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else [dict(r) for r in value]

    def to_csv(self, field: Field, value: Any) -> str:
        return "" if value is None else json.dumps(value, ensure_ascii=False, default=str)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if value is None:
            return ""
        return f"{len(value)} 行" if is_zh(ctx.locale) else f"{len(value)} rows"

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = []
        if field.child is None and not raw.get("fields"):
            issues.append((("fields",), "a subtable field needs `fields:` for its rows"))
        for which in ("min", "max"):
            v = getattr(field, which)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                issues.append(((which,), f"{which} of a subtable is a number of rows"))
        return issues
