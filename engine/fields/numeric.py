"""Number-like field types: integer, decimal, money, percent, and boolean.

Decisions:

* integer reads ints, "12", "-3", "1,200" (correctly grouped thousands only), full-width digits, and
  integral floats/Decimals/strings (12.0, "12.00": Excel hands these over). It refuses 1.5, "1.5",
  True/False, "1e3" and "1,2,3" with ``not_an_integer``.
* decimal, money and percent are ``Decimal`` all the way (floats are read through their shortest repr,
  so 0.1 stays Decimal("0.1")). Values are rounded HALF-UP (四舍五入) to the column scale on coerce, so the
  coerced value is exactly what the database stores and reads back. Money is always 2 places.
* Values beyond the column's precision are refused with too_large / too_small.
* API JSON (``to_json``) gives Decimals as strings ("1234.5", money "1234.50") so no client ever
  turns them into binary floats; integers stay JSON numbers.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from ..metadata.model import Field
from ._util import (NUMERIC_OPERATORS, check_bounds, config_bounds_issues, grouped, halfwidth,
                    is_blank, is_zh, parse_decimal, parse_int, plain, quantize)
from .base import FieldContext, FieldType, fail
from .exact import ExactDecimal

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
THOUSANDS_SCHEMA = {"type": "boolean", "description": "Show thousands separators (default true)."}


class _NumberType(FieldType):
    operators = NUMERIC_OPERATORS
    numeric = True
    aggregations = ("count", "count_distinct", "sum", "avg", "min", "max")
    widget = "number"

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_bounds(self, field, value, ctx)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return config_bounds_issues(self, field)


class IntegerType(_NumberType):
    name = "integer"
    json_type = {"type": "integer"}
    settings_schema = {"thousands_separator": THOUSANDS_SCHEMA}

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.BigInteger()

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if type(value) is int:  # the common case first (JSON, xlsx)
            n = value
        elif is_blank(value):
            return None
        else:
            n = parse_int(value)
        if n > INT64_MAX:
            raise fail("too_large", max=INT64_MAX)
        if n < INT64_MIN:
            raise fail("too_small", min=INT64_MIN)
        return n

    def from_db(self, field: Field, value: Any) -> Any:
        return None if value is None else int(value)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if value is None:
            return ""
        return f"{value:,}" if field.settings.get("thousands_separator", True) else str(value)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        lo, hi = _demo_range(self, field, ctx, 1, 1000)
        return faker.random_int(int(lo), int(hi))


class DecimalType(_NumberType):
    """Numeric(18, scale) (BIGINT minor units on SQLite, engine/fields/exact.py); scale from settings.scale (default 4)."""

    name = "decimal"
    json_type = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}   # exact: decimals travel as text
    precision = 18
    default_scale = 4
    settings_schema = {
        "scale": {"type": "integer", "minimum": 0, "maximum": 10,
                  "description": "Decimal places kept (default 4); values are rounded half-up."},
        "thousands_separator": THOUSANDS_SCHEMA,
    }

    def scale(self, field: Field) -> int:
        return int(field.settings.get("scale", self.default_scale))

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return ExactDecimal(self.precision, self.scale(field))

    def _parse(self, value: Any) -> Decimal:
        return parse_decimal(value)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if is_blank(value):
            return None
        scale = self.scale(field)
        d = self._parse(value)
        limit = Decimal(10) ** (self.precision - scale)
        if d >= limit:
            raise fail("too_large", max=plain(limit - Decimal(1).scaleb(-scale)))
        if d <= -limit:
            raise fail("too_small", min=plain(-limit + Decimal(1).scaleb(-scale)))
        d = quantize(d, scale)
        return abs(d) if d == 0 else d  # no "-0.00"

    def from_db(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else parse_decimal(value)
        return quantize(d, self.scale(field))

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else plain(value)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if value is None:
            return ""
        return grouped(value) if field.settings.get("thousands_separator", True) else plain(value)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = []
        scale = field.settings.get("scale", self.default_scale)
        if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= 10:
            issues.append((("scale",), "scale must be a whole number from 0 to 10"))
            return issues
        return issues + super().check_config(field, raw)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        lo, hi = _demo_range(self, field, ctx, 1, 10000)
        n = Decimal(faker.random_int(0, 10 ** 6)) / Decimal(10 ** 6)
        return quantize(Decimal(lo) + (Decimal(hi) - Decimal(lo)) * n, min(self.scale(field), 2))


CURRENCY_SYMBOLS = {"CNY": "¥", "RMB": "¥", "JPY": "¥", "USD": "$", "HKD": "HK$", "EUR": "€",
                    "GBP": "£", "TWD": "NT$", "SGD": "S$", "KRW": "₩"}
_MONEY_RE = re.compile(r"([+-]?)\s*(?:HK\$|NT\$|S\$|[¥$€£₩]|[A-Za-z]{3})?\s*([+-]?[\d,.]+)\s*(?:[A-Za-z]{3})?",
                       re.ASCII)


class MoneyType(DecimalType):
    """Numeric(18, 2). Reads "1,234.50", "¥1,234.5", "￥100", "100元", "CNY 100", "-$3".

    Decision: more than 2 decimals are rounded half-up (12.345 → 12.35), not refused; imported
    spreadsheets carry computed amounts such as 1234.5649999.
    Display: currency symbol by settings.currency or ctx.currency, thousands separators: ¥1,234.50.
    """

    name = "money"
    settings_schema = {
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$",
                     "description": "ISO 4217 code shown with the amount (default: the tenant's)."},
    }

    def scale(self, field: Field) -> int:
        return 2

    def _parse(self, value: Any) -> Decimal:
        if isinstance(value, str):
            s = halfwidth(value.strip()).replace("元", "").strip()
            m = _MONEY_RE.fullmatch(s)
            if m is None:
                raise fail("not_a_number", value=value)
            sign, number = m.groups()
            if sign and number[:1] in "+-":
                raise fail("not_a_number", value=value)
            d = parse_decimal(number)
            return -d if sign == "-" else d
        return parse_decimal(value)

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else f"{value:.2f}"

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if value is None:
            return ""
        code = (field.settings.get("currency") or ctx.currency or "CNY").upper()
        symbol = CURRENCY_SYMBOLS.get(code, code + " ")
        sign = "-" if value < 0 else ""
        return f"{sign}{symbol}{abs(value):,.2f}"

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = []
        cur = field.settings.get("currency")
        if cur is not None and not (isinstance(cur, str) and re.fullmatch(r"[A-Z]{3}", cur)):
            issues.append((("currency",), "currency must be a 3-letter ISO code such as CNY"))
        return issues + _NumberType.check_config(self, field, raw)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        lo, hi = _demo_range(self, field, ctx, 1000, 500000)
        return quantize(Decimal(faker.random_int(int(lo * 100), int(hi * 100))) / 100, 2)


class PercentType(DecimalType):
    """Percentage points in Numeric(9, 4): 15 means 15%. Reads 15, "15", "15%", "12.5 %".

    Decision: a bare 0.15 is 0.15%, never 15% (numbers are always percentage points).
    """

    name = "percent"
    precision = 9
    settings_schema = {}

    def scale(self, field: Field) -> int:
        return 4

    def _parse(self, value: Any) -> Decimal:
        if isinstance(value, str):
            s = halfwidth(value.strip())
            if s.endswith("%"):
                s = s[:-1].rstrip()
            return parse_decimal(s) if s else parse_decimal(value)
        return parse_decimal(value)

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        return "" if value is None else f"{plain(value)}%"

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return _NumberType.check_config(self, field, raw)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        lo, hi = _demo_range(self, field, ctx, 0, 100)
        return Decimal(faker.random_int(int(lo), int(hi)))


# ----------------------------------------------------------------------------------------- boolean

TRUE_WORDS = frozenset({"true", "t", "1", "yes", "y", "on", "是", "对", "真", "√", "✓", "✔"})
FALSE_WORDS = frozenset({"false", "f", "0", "no", "n", "off", "否", "错", "假", "×", "✗", "✘"})


class BooleanType(FieldType):
    """Yes/no. Reads true/false, 1/0, yes/no, y/n, on/off, 是/否 (case-insensitive); shows 是/否 or Yes/No."""

    name = "boolean"
    operators = ("eq", "ne", "empty", "not_empty")
    json_type = {"type": "boolean"}
    groupable = True
    widget = "checkbox"

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Boolean()

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if isinstance(value, bool):
            return value
        if is_blank(value):
            return None
        if isinstance(value, (int, Decimal, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            s = halfwidth(value.strip()).lower()
            if s in TRUE_WORDS:
                return True
            if s in FALSE_WORDS:
                return False
        raise fail("not_a_boolean", value=str(value))

    def from_db(self, field: Field, value: Any) -> Any:
        return None if value is None else bool(value)

    def to_csv(self, field: Field, value: Any) -> str:
        return "" if value is None else ("true" if value else "false")

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if value is None:
            return ""
        if is_zh(ctx.locale):
            return "是" if value else "否"
        return "Yes" if value else "No"

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        return faker.boolean()


def _demo_range(ftype, field: Field, ctx: FieldContext, lo, hi):
    """Demo bounds: the field's min/max when readable, else the defaults."""
    from ..errors import FieldValueError

    got = []
    for raw, default in ((field.min, lo), (field.max, hi)):
        try:
            v = ftype.coerce(field, raw, ctx) if raw is not None else None
        except FieldValueError:
            v = None
        got.append(default if v is None else v)
    lo, hi = got
    if lo > hi:
        lo, hi = hi, lo
    if hi - lo > 10 ** 9:  # keep demo numbers human-sized
        hi = lo + 10 ** 9
    return lo, hi
