"""Computed field types: formula and autonumber (users never write them; computed=True)."""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from ..metadata.model import Field
from ._util import NUMERIC_OPERATORS, TEXT_OPERATORS, check_length, clean_line, is_blank, quantize
from .base import FieldContext, FieldType
from .numeric import BooleanType, DecimalType, IntegerType, MoneyType, PercentType
from .temporal import DateTimeType, DateType
from .text import TextType

# The scalar types a formula may return; instances are stateless.
FORMULA_RETURNS = MappingProxyType({
    "integer": IntegerType(), "decimal": DecimalType(), "money": MoneyType(),
    "percent": PercentType(), "text": TextType(), "boolean": BooleanType(), "date": DateType(),
    "datetime": DateTimeType(),
})
DEFAULT_FORMULA_RETURNS = "decimal"


class FormulaType(FieldType):
    """A value computed from an expression (`field.expr`) and stored in a column of the `returns` type.

    The records service evaluates the expression; coerce turns the result into the returned type's
    Python value (an integer formula rounds half-up; money rounds to 2 places). Everything else
    (column, JSON, display, operators) is the returned type's; see ``operators_for``.
    """

    name = "formula"
    computed = True
    operators = NUMERIC_OPERATORS
    settings_schema = {
        **DecimalType.settings_schema,
        **MoneyType.settings_schema,
        **DateType.settings_schema,
    }

    @staticmethod
    def returns(field: Field) -> str:
        return field.returns or DEFAULT_FORMULA_RETURNS

    def delegate(self, field: Field) -> FieldType:
        return FORMULA_RETURNS[self.returns(field)]

    def json_schema(self, field: Field) -> dict:
        return {**self.delegate(field).json_schema(field), "readOnly": True}

    def aggregations_for(self, field: Field) -> tuple[str, ...]:
        return self.delegate(field).aggregations_for(field)

    def groupable_for(self, field: Field) -> bool:
        return self.delegate(field).groupable_for(field)

    def numeric_for(self, field: Field) -> bool:
        return self.delegate(field).numeric_for(field)

    def temporal_for(self, field: Field) -> bool:
        return self.delegate(field).temporal_for(field)

    def column_settings(self, field: Field) -> dict:
        out = {**FieldType.column_settings(self, field), "returns": field.returns}
        if field.max_length:
            out["max_length"] = field.max_length
        return out

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return self.delegate(field).column_type(field)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if self.returns(field) == "integer" and isinstance(value, (float, Decimal)):
            try:
                value = int(quantize(Decimal(repr(value)) if isinstance(value, float) else value, 0))
            except (ArithmeticError, ValueError):
                pass  # NaN/infinity: the integer type refuses it
        return self.delegate(field).coerce(field, value, ctx)

    def to_db(self, field: Field, value: Any) -> Any:
        return self.delegate(field).to_db(field, value)

    def from_db(self, field: Field, value: Any) -> Any:
        return self.delegate(field).from_db(field, value)

    def to_json(self, field: Field, value: Any) -> Any:
        return self.delegate(field).to_json(field, value)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        return self.delegate(field).to_text(field, value, ctx)

    def to_csv(self, field: Field, value: Any) -> str:
        return self.delegate(field).to_csv(field, value)

    def operators_for(self, field: Field) -> tuple[str, ...]:
        return self.delegate(field).operators

    def sortable_for(self, field: Field) -> bool:
        return self.delegate(field).sortable

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = []
        if self.returns(field) not in FORMULA_RETURNS:
            issues.append((("returns",), f"returns must be one of {', '.join(FORMULA_RETURNS)}"))
        elif self.returns(field) == "decimal":
            issues.extend(FORMULA_RETURNS["decimal"].check_config(field, raw))
        if field.expr is None and not raw.get("expr"):
            issues.append((("expr",), "a formula field needs `expr:`"))
        return issues


# ------------------------------------------------------------------------------------- autonumber

_TOKEN_RE = re.compile(r"\{([^{}]*)\}")
_SEQ_RE = re.compile(r"seq(?::(\d{1,2}))?", re.ASCII)
DATE_TOKENS = ("YYYY", "YY", "MM", "DD")
DEFAULT_AUTONUMBER_FORMAT = "{seq:6}"


def autonumber_format_issues(fmt: Any) -> list[str]:
    """What is wrong with an autonumber format (empty list: fine)."""
    if not isinstance(fmt, str) or not fmt:
        return ["format must be a non-empty string such as BJ-{YYYY}-{seq:4}"]
    problems = []
    seqs = 0
    for m in _TOKEN_RE.finditer(fmt):
        token = m.group(1)
        if token in DATE_TOKENS:
            continue
        sm = _SEQ_RE.fullmatch(token)
        if sm:
            seqs += 1
            if sm.group(1) is not None and not 1 <= int(sm.group(1)) <= 20:
                problems.append("{seq:N} needs N from 1 to 20")
            continue
        problems.append(f"unknown token {{{token}}} (use {{YYYY}} {{YY}} {{MM}} {{DD}} {{seq:N}})")
    rest = _TOKEN_RE.sub("", fmt)
    if "{" in rest or "}" in rest:
        problems.append("unbalanced { or } in format")
    if seqs == 0:
        problems.append("format needs a {seq} or {seq:N} token")
    elif seqs > 1:
        problems.append("format may contain only one {seq} token")
    return problems


def render_autonumber(fmt: str, seq: int, when: date | datetime) -> str:
    """BJ-{YYYY}-{seq:4} with seq=7 on 2026-03-05 → "BJ-2026-0007" (wider numbers are not cut).

    `when` is the creation date in the tenant's timezone (the caller converts).
    """
    def token(m: re.Match) -> str:
        t = m.group(1)
        if t == "YYYY":
            return f"{when.year:04d}"
        if t == "YY":
            return f"{when.year % 100:02d}"
        if t == "MM":
            return f"{when.month:02d}"
        if t == "DD":
            return f"{when.day:02d}"
        sm = _SEQ_RE.fullmatch(t)
        if sm:
            return str(seq).zfill(int(sm.group(1) or 0))
        raise ValueError(f"unknown autonumber token {{{t}}}")

    return _TOKEN_RE.sub(token, fmt)


def autonumber_period(fmt: str, when: date | datetime) -> str:
    """The counter's period key: daily "2026-03-05" if {DD}, monthly "2026-03" if {MM}, yearly
    "2026" if {YYYY}/{YY}, else "" (one counter forever). The finest token present wins."""
    tokens = set(_TOKEN_RE.findall(fmt))
    if "DD" in tokens:
        return f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
    if "MM" in tokens:
        return f"{when.year:04d}-{when.month:02d}"
    if "YYYY" in tokens or "YY" in tokens:
        return f"{when.year:04d}"
    return ""


class AutonumberType(FieldType):
    """A number given on create from `field.format` and a per-period counter (fw_sequences).

    The records service does: ``period = autonumber_period(fmt, today)``, takes the next counter of
    ``"<entity>.<field>:<period>"`` and stores ``render_autonumber(fmt, seq, today)``
    (``format_of(field)`` gives the format, DEFAULT_AUTONUMBER_FORMAT when none is set).
    coerce only tidies text, so imports may carry existing numbers over.
    """

    name = "autonumber"
    computed = True
    operators = TEXT_OPERATORS
    unique = True
    search = "text"

    @staticmethod
    def format_of(field: Field) -> str:
        return field.format or DEFAULT_AUTONUMBER_FORMAT

    def render(self, field: Field, seq: int, when: date | datetime) -> str:
        return render_autonumber(self.format_of(field), seq, when)

    def period(self, field: Field, when: date | datetime) -> str:
        return autonumber_period(self.format_of(field), when)

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.String(100)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        return clean_line(value) or None

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_length(value, 100)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        if field.format is None and raw.get("format") is None:
            return []  # DEFAULT_AUTONUMBER_FORMAT
        fmt = field.format if field.format is not None else raw.get("format")
        issues = [(("format",), p) for p in autonumber_format_issues(fmt)]
        if not issues and len(render_autonumber(fmt, 10 ** 9, date(2026, 12, 31))) > 100:
            issues.append((("format",), "format renders longer than 100 characters"))
        return issues
