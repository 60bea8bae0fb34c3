"""Small pure helpers shared by the built-in field types (number parsing, text cleanup, bounds)."""
from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import FieldValueError
from ..i18n import language
from ..metadata.model import Field
from .base import FieldContext, fail
from .regex import fullmatches, pattern_problem

NUMERIC_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "empty", "not_empty")
TEXT_OPERATORS = ("eq", "ne", "in", "contains", "startswith", "empty", "not_empty")

# Digits with optional sign, optional correctly grouped thousands separators and optional fraction.
# "1,234.50" and "1234.5" are read; "1,2,3", "1.2.3", "1e5" and "1,5" (a decimal comma) are not.
_NUMBER_RE = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+", re.ASCII)
_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
# C0 control characters (PostgreSQL refuses NUL in text; the rest are noise from pasted data).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LINEBREAK_RE = re.compile(r"\r\n|[\r\n\t\u2028\u2029]")


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def halfwidth(s: str) -> str:
    """Full-width digits, letters and punctuation (１２３，＠) to ASCII; a Unicode minus to '-'."""
    if s.isascii():
        return s
    return unicodedata.normalize("NFKC", s).replace("\u2212", "-")


def parse_decimal(value: Any, key: str = "not_a_number") -> Decimal:
    """A finite Decimal from int, float (via its shortest repr, never binary noise), Decimal or text."""
    if isinstance(value, bool):
        raise fail(key, value=str(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise fail(key, value=str(value))
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise fail(key, value=str(value))
        return Decimal(repr(value))
    if isinstance(value, str):
        s = halfwidth(value.strip())
        if _NUMBER_RE.fullmatch(s):
            try:
                return Decimal(s.replace(",", ""))
            except InvalidOperation:  # pragma: no cover - the regex already guarantees a number
                pass
        raise fail(key, value=value)
    raise fail(key, value=str(value))


def parse_int(value: Any, key: str = "not_an_integer") -> int:
    if isinstance(value, bool):
        raise fail(key, value=str(value))
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        s = value.strip()
        if _INT_RE.fullmatch(s):
            return int(s)
    d = parse_decimal(value, key)
    if d != d.to_integral_value():
        raise fail(key, value=str(value))
    return int(d)


def quantize(d: Decimal, scale: int) -> Decimal:
    """Round half-up (四舍五入) to `scale` decimal places."""
    return d.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


def plain(d: Decimal) -> str:
    """A Decimal without exponent and without trailing zeros: 1.5000 → "1.5", 1E+2 → "100"."""
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def grouped(d: Decimal) -> str:
    """Like plain() with thousands separators: 1234567.5 → "1,234,567.5"."""
    if d == 0:
        return "0"
    return format(d.normalize(), ",f")


def clean_line(value: Any) -> str:
    """A single line of text: numbers become text, line breaks and tabs become spaces, trimmed."""
    s = to_str(value)
    if "\n" in s or "\r" in s or "\t" in s or "\u2028" in s or "\u2029" in s:
        s = _LINEBREAK_RE.sub(" ", s)
    return _CONTROL_RE.sub("", s).strip()


def clean_multiline(value: Any) -> str:
    s = to_str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_RE.sub("", s).strip()


def to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return plain(value)
    if isinstance(value, float):
        return plain(Decimal(repr(value))) if math.isfinite(value) else repr(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise fail("not_text")


def check_pattern(field: Field, text: str, locale: str) -> None:
    """field.pattern must match the whole value; the error is the field's pattern_message if set."""
    if field.pattern and not fullmatches(field.pattern, text):
        if field.pattern_message is not None:
            # The rendered text acts as the message key (engine.i18n.message falls back to the key).
            raise FieldValueError(field.pattern_message.get(locale), {})
        raise fail("pattern")


def check_length(text: str, limit: int | None) -> None:
    if limit is not None and len(text) > limit:
        raise fail("too_long", max_length=limit)


def config_pattern_issues(field: Field) -> list[tuple[tuple, str]]:
    problem = pattern_problem(field.pattern) if field.pattern else None
    return [(("pattern",), problem)] if problem else []


def config_bounds_issues(ftype, field: Field) -> list[tuple[tuple, str]]:
    """min/max must be readable as the type's values, and min ≤ max."""

    ctx = FieldContext()
    issues: list[tuple[tuple, str]] = []
    got = {}
    for which in ("min", "max"):
        raw = getattr(field, which)
        if raw is None:
            continue
        try:
            got[which] = ftype.coerce(field, raw, ctx)
        except FieldValueError:
            issues.append(((which,), f"{which} {raw!r} is not a valid {ftype.name} value"))
    if got.get("min") is not None and got.get("max") is not None:
        try:
            if got["min"] > got["max"]:
                issues.append((("min",), "min is greater than max"))
        except TypeError:
            pass
    return issues


def coerced_bounds(ftype, field: Field, ctx) -> list[tuple[str, Any]]:
    """[("min"|"max", bound)] read as the type's values; unreadable bounds are reported by
    check_config and left out here."""
    got = []
    for which in ("min", "max"):
        raw = getattr(field, which)
        if raw is None:
            continue
        try:
            bound = ftype.coerce(field, raw, ctx)
        except FieldValueError:
            continue
        if bound is not None:
            got.append((which, bound))
    return got


def within_bounds(ftype, field: Field, value: Any, ctx, bounds: list[tuple[str, Any]]) -> None:
    for which, bound in bounds:
        if which == "min" and value < bound:
            raise fail("too_small", min=ftype.to_text(field, bound, ctx))
        if which == "max" and value > bound:
            raise fail("too_large", max=ftype.to_text(field, bound, ctx))


def check_bounds(ftype, field: Field, value: Any, ctx) -> None:
    """Enforce field.min / field.max (given in config as the type's values)."""
    within_bounds(ftype, field, value, ctx, coerced_bounds(ftype, field, ctx))


def is_zh(locale: str | None) -> bool:
    return language(locale) == "zh"


def truncate(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit]
