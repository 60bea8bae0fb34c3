"""select and multiselect: values from field.options (inline or a dictionary), never free text (R12).

Input may be an option's value or any of its labels in any language (case-insensitive, full-width
forms folded); the stored value is always the option's value. Display is the label in ctx.locale.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import sqlalchemy as sa

from ..metadata.model import Field
from ._util import is_blank, is_zh
from .base import FieldContext, FieldType, fail

_SPLIT_RE = re.compile(r"\s*[,，、;；\n]\s*")
_SEPARATOR_CHARS = frozenset(",，、;；\n")


def _fold(s: str) -> str:
    return unicodedata.normalize("NFKC", s).strip().casefold()


def match_option(field: Field, raw: Any) -> str:
    """The option value `raw` names (a value, else a label in any language); else not_an_option."""
    s = raw if isinstance(raw, str) else str(raw)
    s = s.strip()
    options = field.options or []
    for o in options:  # exact value: the fast path (JSON, CSV export, forms)
        if o.value == s:
            return o.value
    folded = _fold(s)
    for o in options:
        if _fold(o.value) == folded:
            return o.value
    for o in options:
        for _lang, text in o.label.texts:
            if text and _fold(text) == folded:
                return o.value
    raise fail("not_an_option", value=s)


def _options_issues(field: Field, raw: dict) -> list[tuple[tuple, str]]:
    if not field.options:
        if raw.get("options"):  # a dictionary name the builder has not resolved yet
            return []
        return [(("options",), f"a {field.type} field needs options (a list or a dictionary name)")]
    issues = []
    seen: set[str] = set()
    for i, o in enumerate(field.options):
        if o.value in seen:
            issues.append((("options", i), f"duplicate option value {o.value!r}"))
        seen.add(o.value)
        if len(o.value) > 100:
            issues.append((("options", i), "option values are at most 100 characters"))
        if field.type == "multiselect" and (_SEPARATOR_CHARS & set(o.value)):
            issues.append((("options", i), "multiselect option values may not contain , ; 、 or line breaks"))
    return issues


class SelectType(FieldType):
    name = "select"
    operators = ("eq", "ne", "in", "empty", "not_empty")
    groupable = True
    widget = "select"

    def json_schema(self, field: Field) -> dict:
        values = field.option_values() if field.options is not None else []
        return {"anyOf": [{"type": "string", "enum": list(values)}, {"type": "null"}]}

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(100)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if isinstance(value, (list, dict, bool)):
            raise fail("not_an_option", value=str(value))
        return match_option(field, value)

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        if value not in field.option_values():
            raise fail("not_an_option", value=str(value))

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        return "" if value is None else field.option_label(value, ctx.locale)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return _options_issues(field, raw)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        values = field.option_values()
        return faker.random_element(values) if values else None


class MultiSelectType(FieldType):
    """A list of option values, stored as a JSON array in a Text column, in option order.

    Reads a list, a JSON array string, or values/labels separated by , ， 、 ; ； or line breaks.
    The `contains` operator means "has this option"; on the JSON text it is ``LIKE '%"value"%'``.
    """

    name = "multiselect"
    operators = ("contains", "empty", "not_empty")
    sortable = False
    widget = "multiselect"
    aggregations = ("count",)

    def json_schema(self, field: Field) -> dict:
        values = field.option_values() if field.options is not None else []
        return {"type": "array", "items": {"type": "string", "enum": list(values)}, "uniqueItems": True}

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Text()

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        if isinstance(value, str):
            s = value.strip()
            if s.startswith("["):
                try:
                    items = json.loads(s)
                except ValueError:
                    raise fail("not_a_list") from None
                if not isinstance(items, list):
                    raise fail("not_a_list")
            else:
                items = [p for p in _SPLIT_RE.split(s) if p]
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = list(value)
        else:
            raise fail("not_a_list")
        chosen: set[str] = set()
        for item in items:
            if item is None or (isinstance(item, str) and not item.strip()):
                continue
            if isinstance(item, (list, dict, bool)):
                raise fail("not_an_option", value=str(item))
            chosen.add(match_option(field, item))
        if not chosen:
            return None
        return [v for v in field.option_values() if v in chosen]

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        allowed = set(field.option_values())
        for v in value:
            if v not in allowed:
                raise fail("not_an_option", value=str(v))

    def to_db(self, field: Field, value: Any) -> Any:
        return None if not value else json.dumps(list(value), ensure_ascii=False)

    def from_db(self, field: Field, value: Any) -> Any:
        if value is None or value == "":
            return None
        items = json.loads(value) if isinstance(value, str) else list(value)
        return items or None

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else list(value)

    def to_csv(self, field: Field, value: Any) -> str:
        if not value:
            return ""
        if any(_SEPARATOR_CHARS & set(v) for v in value):
            return json.dumps(list(value), ensure_ascii=False)
        return ",".join(value)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if not value:
            return ""
        sep = "、" if is_zh(ctx.locale) else ", "
        return sep.join(field.option_label(v, ctx.locale) for v in value)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return _options_issues(field, raw)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        values = field.option_values()
        if not values:
            return None
        k = faker.random_int(1, min(3, len(values)))
        picked = set(faker.random_elements(values, length=k, unique=True))
        return [v for v in values if v in picked]


class StageType(SelectType):
    """A pipeline's stage: a select whose options are the pipeline's stages (set by the pipeline).

    In expressions `stage.probability`, `stage.label`, `stage.outcome` and `stage.position` read the
    current stage's definition (engine/workflows).
    """

    name = "stage"
    storage_name = "select"      # a select that becomes a pipeline's stage keeps its column

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return []  # its options come from the pipeline; engine/workflows/config.py checks it has one
