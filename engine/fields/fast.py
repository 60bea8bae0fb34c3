"""Compiled coercers: `coercer(ftype, field, ctx)` is `lambda raw: ftype.clean(field, raw, ctx)`, faster.

An import coerces and validates the same few fields for every one of thousands of rows. The
general path (`FieldType.coerce`, then `validate` for a non-empty value) re-reads the field's
settings, re-coerces its min/max bounds and walks several helper calls per value. A coercer is built
once per field and import (the context is fixed for the whole batch): settings, bounds and option
tables are read once, and the common inputs of the built-in types (plain text, an option's value,
ASCII digits, an ISO date, a Chinese mobile number) take a short path that gives exactly what the
general path gives. Anything else — and every type without an entry here, including subclasses of
the built-in types — goes through the type's own coerce and validate.

Equality with the general path for many inputs is tested in tests/test_field_types.py.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable

from ..metadata.model import Field
from ._util import check_pattern, coerced_bounds, plain, within_bounds
from .base import FieldContext, FieldType, fail
from .choice import SelectType, _fold
from .numeric import INT64_MAX, INT64_MIN, DecimalType, IntegerType, MoneyType, PercentType
from .phone import (_CN_MOBILE_E164_RE, ANY, LANDLINE, MOBILE, PhoneType, _cn_mobile_pattern, fast_cn_landline,
                    fast_cn_mobile)
from .temporal import DateType, _make_date
from .text import TextareaType, TextType

Coercer = Callable[[Any], Any]

_ASCII_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
# Few enough digits that Decimal(text) is exact and every step below stays within 28 digits.
_ASCII_DECIMAL_RE = re.compile(r"[+-]?\d{1,15}(?:\.\d{1,10})?", re.ASCII)
_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def coercer(ftype: FieldType, field: Field, ctx: FieldContext) -> Coercer:
    """A function raw → value doing what ``ftype.coerce`` then (for non-None) ``ftype.validate`` do,
    raising the same FieldValueError for the same input."""
    make = _FAST.get(type(ftype))
    return make(ftype, field, ctx) if make is not None else general(ftype, field, ctx)


def general(ftype: FieldType, field: Field, ctx: FieldContext) -> Coercer:
    coerce, validate = ftype.coerce, ftype.validate
    if type(ftype).validate is FieldType.validate:  # validates nothing
        return lambda raw: coerce(field, raw, ctx)

    def run(raw):
        value = coerce(field, raw, ctx)
        if value is not None:
            validate(field, value, ctx)
        return value

    return run


def bounds_check(ftype: FieldType, field: Field, ctx: FieldContext) -> Callable[[Any], None] | None:
    """`_util.check_bounds(ftype, field, value, ctx)` with the bounds coerced once (None: no bounds)."""
    got = coerced_bounds(ftype, field, ctx)
    if not got:
        return None

    low = next((bound for which, bound in got if which == "min"), None)
    high = next((bound for which, bound in got if which == "max"), None)

    def check(value):
        if (low is not None and value < low) or (high is not None and value > high):
            within_bounds(ftype, field, value, ctx, got)  # raises the error naming the bound

    return check


# --------------------------------------------------------------------------------------- text

def _text(ftype: TextType, field: Field, ctx: FieldContext) -> Coercer:
    coerce = ftype.coerce
    limit = ftype.max_length(field)  # what TextType.validate checks
    pattern, locale = field.pattern, ctx.locale

    def run(raw):
        # A printable string has no line breaks, tabs or control characters, and no white space
        # but ' ': cleaning it is strip() (clean_line / clean_multiline change nothing else).
        if type(raw) is str and raw.isprintable():
            value = raw.strip()
            if not value:
                return None
        else:
            value = coerce(field, raw, ctx)
            if value is None:
                return None
        if limit is not None and len(value) > limit:
            raise fail("too_long", max_length=limit)
        if pattern:
            check_pattern(field, value, locale)
        return value

    return run


# ------------------------------------------------------------------------------------- select

def _select(ftype: SelectType, field: Field, ctx: FieldContext) -> Coercer:
    slow = general(ftype, field, ctx)
    options = field.options or []
    if not all(isinstance(o.value, str) for o in options):
        return slow
    exact = {o.value for o in options}
    by_value: dict[str, str] = {}
    by_label: dict[str, str] = {}
    for o in options:
        by_value.setdefault(_fold(o.value), o.value)
    for o in options:
        for _lang, text in o.label.texts:
            if text:
                by_label.setdefault(_fold(text), o.value)

    def run(raw):
        if type(raw) is not str:
            return slow(raw)
        s = raw.strip()
        if not s:
            return None
        if s in exact:  # match_option returns the option's value; validate then always passes
            return s
        folded = _fold(s)
        hit = by_value.get(folded)
        if hit is None:
            hit = by_label.get(folded)
        if hit is None:
            raise fail("not_an_option", value=s)
        return hit

    return run


# ------------------------------------------------------------------------------------ numbers

def _integer(ftype: IntegerType, field: Field, ctx: FieldContext) -> Coercer:
    coerce = ftype.coerce
    check = bounds_check(ftype, field, ctx)

    def run(raw):
        if type(raw) is str and _ASCII_INT_RE.fullmatch(raw):
            n = int(raw)
            if n > INT64_MAX:
                raise fail("too_large", max=INT64_MAX)
            if n < INT64_MIN:
                raise fail("too_small", min=INT64_MIN)
        else:
            n = coerce(field, raw, ctx)
            if n is None:
                return None
        if check is not None:
            check(n)
        return n

    return run


def _decimal(ftype: DecimalType, field: Field, ctx: FieldContext) -> Coercer:
    coerce = ftype.coerce
    check = bounds_check(ftype, field, ctx)
    scale = ftype.scale(field)
    limit = Decimal(10) ** (ftype.precision - scale)
    below, quantum = -limit, Decimal(1).scaleb(-scale)

    def run(raw):
        if type(raw) is str and _ASCII_DECIMAL_RE.fullmatch(raw):
            # what _parse reads from plain digits (money: no symbol; percent: no '%'), then coerce's range and rounding
            d = Decimal(raw)
            if d >= limit:
                raise fail("too_large", max=plain(limit - quantum))
            if d <= below:
                raise fail("too_small", min=plain(below + quantum))
            d = d.quantize(quantum, rounding=ROUND_HALF_UP)  # _util.quantize(d, scale)
            if d == 0:
                d = abs(d)  # no "-0.00"
        else:
            d = coerce(field, raw, ctx)
            if d is None:
                return None
        if check is not None:
            check(d)
        return d

    return run


# --------------------------------------------------------------------------------------- date

def _date(ftype: DateType, field: Field, ctx: FieldContext) -> Coercer:
    coerce = ftype.coerce
    check = bounds_check(ftype, field, ctx)

    def run(raw):
        if type(raw) is str and _ISO_DATE_RE.fullmatch(raw):
            try:  # what _make_date(raw, raw[:4], raw[5:7], raw[8:10]) gives, in C
                value = date.fromisoformat(raw)
            except ValueError:
                value = _make_date(raw, raw[:4], raw[5:7], raw[8:10])  # raises not_a_date
        else:
            value = coerce(field, raw, ctx)
            if value is None:
                return None
        if check is not None:
            check(value)
        return value

    return run


# -------------------------------------------------------------------------------------- phone

def _phone(ftype: PhoneType, field: Field, ctx: FieldContext) -> Coercer:
    slow = general(ftype, field, ctx)
    kind = field.settings.get("kind") or ANY
    if field.pattern or kind not in (ANY, MOBILE, LANDLINE):
        return slow
    region = field.settings.get("region") or ctx.phone_region or ""
    mobile_ok, landline_ok = kind in (ANY, MOBILE), kind in (ANY, LANDLINE)
    mobile = _cn_mobile_pattern()

    def run(raw):
        # PhoneType.coerce's own order: a plain Chinese mobile, then a plain Chinese landline; the kind
        # check passes for the kinds that accept it and validate has nothing more to check (no pattern)
        if type(raw) is str:
            if _CN_MOBILE_E164_RE.fullmatch(raw) and mobile.fullmatch(raw, 3):  # stored form already
                return raw if mobile_ok else slow(raw)
            if raw.isascii():
                got = fast_cn_mobile(raw, region)
                if got is not None:
                    return got if mobile_ok else slow(raw)
                got = fast_cn_landline(raw, region)
                if got is not None and landline_ok:
                    return got
        return slow(raw)

    return run


_FAST: dict[type, Callable[[Any, Field, FieldContext], Coercer]] = {
    TextType: _text,
    TextareaType: _text,
    SelectType: _select,
    IntegerType: _integer,
    DecimalType: _decimal,
    MoneyType: _decimal,
    PercentType: _decimal,
    DateType: _date,
    PhoneType: _phone,
}
