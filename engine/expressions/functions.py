"""The built-in functions of the expression language (registered by plugins/expression_functions.py).

A function receives already-evaluated arguments, any of which may be None (an empty field). Mark a
function with ``expression_function(result_type=..., context=...)``:

- ``result_type``: a type name ("integer", "money" …), or a callable taking the list of the argument
  types (each a type name, ``"list:<type>"`` for a list, or None) and returning one; used by
  ``CompiledExpression.result_type``.
- ``context=True``: the function gets an ``EvalContext`` (``.now`` UTC, ``.tz``, ``.today()``) as its
  first argument, before the expression's arguments.

Plugins may register plain callables too (result type unknown, no context).
"""
from __future__ import annotations

import decimal
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

from .errors import ExpressionEvalError, ExpressionLimitError
from .values import (MAX_ROUND_DIGITS, MAX_TEXT_LENGTH, EvalContext, as_date, decimal_to_int, days_diff,
                     elapsed, is_empty, is_number, order, shift_days, shift_months, type_name)

NUMERIC_TYPES = ("integer", "decimal", "percent", "money")  # narrowest to widest


def expression_function(result_type: str | Callable | None = None, context: bool = False):
    """Decorate an expression function with its result type and whether it needs the context."""
    def mark(fn: Callable) -> Callable:
        fn.formwork_result_type = result_type
        fn.formwork_context = context
        return fn
    return mark


# ---- result-type helpers ----------------------------------------------------------------------
def element_type(t: str | None) -> str | None:
    if t and t.startswith("list:"):
        rest = t[5:]
        return rest or None
    return t


def common_type(types: list[str | None]) -> str | None:
    """The one type several values share: the widest numeric type, or the shared type."""
    found = [t for t in types if t is not None and t != "null"]
    if not found or any(t.startswith("list:") for t in found):
        return None
    if all(t in NUMERIC_TYPES for t in found):
        return max(found, key=NUMERIC_TYPES.index)
    return found[0] if all(t == found[0] for t in found) else None


def _aggregate_type(types: list[str | None]) -> str | None:
    if len(types) == 1:
        return element_type(types[0])
    return common_type([element_type(t) for t in types])


def _avg_type(types: list[str | None]) -> str | None:
    t = _aggregate_type(types)
    return "decimal" if t == "integer" else t if t in NUMERIC_TYPES else None


def _first_type(types: list[str | None]) -> str | None:
    return types[0] if types else None


def _round_type(types: list[str | None]) -> str | None:
    t = types[0] if types else None
    if t == "decimal" and len(types) == 1:
        return "integer"
    return t if t in NUMERIC_TYPES else None


def _coalesce_type(types: list[str | None]) -> str | None:
    return common_type(types)


# ---- helpers ----------------------------------------------------------------------------------
def _values(args: tuple, name: str) -> list:
    """The non-empty values of the arguments; a single list argument is the list of values."""
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        items = list(args[0])
    else:
        items = []
        for a in args:
            if isinstance(a, (list, tuple)):
                items.extend(a)
            else:
                items.append(a)
    return [v for v in items if not is_empty(v)]


def _numbers(args: tuple, name: str) -> list:
    values = _values(args, name)
    for v in values:
        if not is_number(v):
            raise ExpressionEvalError(f"{name}() needs numbers, got {type_name(v)}")
    return values


def _need(value: Any, kind: type | tuple, name: str, what: str) -> None:
    if not isinstance(value, kind):
        raise ExpressionEvalError(f"{name}() needs {what}, got {type_name(value)}")


# ---- the functions ----------------------------------------------------------------------------
@expression_function(result_type="datetime", context=True)
def fn_now(ctx: EvalContext) -> datetime:
    """The current moment, tz-aware in UTC."""
    return ctx.now


@expression_function(result_type="date", context=True)
def fn_today(ctx: EvalContext) -> date:
    """Today's date in the tenant timezone."""
    return ctx.today()


@expression_function(result_type="integer")
def fn_len(value: Any) -> int:
    """Length of a text or list (a subtable's rows); 0 when empty."""
    if value is None:
        return 0
    _need(value, (str, list, tuple), "len", "text or a list")
    return len(value)


@expression_function(result_type="integer")
def fn_count(*args: Any) -> int:
    """Number of non-empty values (of one list, or of the arguments)."""
    return len(_values(args, "count"))


@expression_function(result_type=_aggregate_type)
def fn_sum(*args: Any) -> Any:
    """Sum of the non-empty numbers (of one list, or of the arguments); 0 when there are none."""
    total: Any = 0
    for v in _numbers(args, "sum"):
        total = total + v
    return total


@expression_function(result_type=_avg_type)
def fn_avg(*args: Any) -> Any:
    """Average of the non-empty numbers as a Decimal; empty when there are none."""
    values = _numbers(args, "avg")
    if not values:
        return None
    return Decimal(sum(values)) / Decimal(len(values))


def _extreme(ctx: EvalContext, args: tuple, name: str, op: str) -> Any:
    best = None
    for v in _values(args, name):
        try:
            if best is None or order(op, v, best, ctx.tz) is True:
                best = v
        except ExpressionEvalError:
            raise ExpressionEvalError(f"{name}() cannot compare {type_name(v)} with {type_name(best)}") \
                from None
    return best


@expression_function(result_type=_aggregate_type, context=True)
def fn_min(ctx: EvalContext, *args: Any) -> Any:
    """Smallest non-empty value (numbers, texts or dates); empty when there are none."""
    return _extreme(ctx, args, "min", "<")


@expression_function(result_type=_aggregate_type, context=True)
def fn_max(ctx: EvalContext, *args: Any) -> Any:
    """Largest non-empty value (numbers, texts or dates); empty when there are none."""
    return _extreme(ctx, args, "max", ">")


@expression_function(result_type=_round_type)
def fn_round(value: Any, n: Any = 0) -> Any:
    """Round half away from zero to n decimals: an integer when n <= 0, else a Decimal."""
    if value is None:
        return None
    if n is None:
        n = 0
    if not is_number(value):
        raise ExpressionEvalError(f"round() needs a number, got {type_name(value)}")
    if not isinstance(n, int) or isinstance(n, bool) or abs(n) > MAX_ROUND_DIGITS:
        raise ExpressionEvalError(f"round() needs a whole number of digits from -{MAX_ROUND_DIGITS} "
                                  f"to {MAX_ROUND_DIGITS}, got {n!r}")
    d = Decimal(value)
    if n > 0:
        if isinstance(value, int):
            return value
        return d.quantize(Decimal(1).scaleb(-n), rounding=decimal.ROUND_HALF_UP)
    whole = d.scaleb(n).quantize(Decimal(1), rounding=decimal.ROUND_HALF_UP).scaleb(-n)
    return decimal_to_int(whole)


@expression_function(result_type=_first_type)
def fn_abs(value: Any) -> Any:
    """Absolute value of a number."""
    if value is None:
        return None
    if not is_number(value):
        raise ExpressionEvalError(f"abs() needs a number, got {type_name(value)}")
    return abs(value)


@expression_function(result_type=_coalesce_type)
def fn_coalesce(*args: Any) -> Any:
    """The first argument that is filled (not None, "" or an empty list)."""
    for a in args:
        if not is_empty(a):
            return a
    return None


def _date_part(ctx: EvalContext, value: Any, name: str) -> date | None:
    if value is None:
        return None
    _need(value, date, name, "a date or datetime")
    return as_date(value, ctx.tz)


@expression_function(result_type="integer", context=True)
def fn_year(ctx: EvalContext, value: Any) -> int | None:
    """Year of a date (a datetime's date in the tenant timezone)."""
    d = _date_part(ctx, value, "year")
    return None if d is None else d.year


@expression_function(result_type="integer", context=True)
def fn_month(ctx: EvalContext, value: Any) -> int | None:
    """Month 1–12 of a date (a datetime's date in the tenant timezone)."""
    d = _date_part(ctx, value, "month")
    return None if d is None else d.month


@expression_function(result_type="integer", context=True)
def fn_day(ctx: EvalContext, value: Any) -> int | None:
    """Day of the month of a date (a datetime's date in the tenant timezone)."""
    d = _date_part(ctx, value, "day")
    return None if d is None else d.day


@expression_function(result_type="integer", context=True)
def fn_weekday(ctx: EvalContext, value: Any) -> int | None:
    """ISO weekday: 1 Monday … 7 Sunday (in the tenant timezone)."""
    d = _date_part(ctx, value, "weekday")
    return None if d is None else d.isoweekday()


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    _need(value, str, name, "text")
    return value


@expression_function(result_type="text")
def fn_lower(value: Any) -> str | None:
    s = _text(value, "lower")
    return None if s is None else s.lower()


@expression_function(result_type="text")
def fn_upper(value: Any) -> str | None:
    s = _text(value, "upper")
    return None if s is None else s.upper()


@expression_function(result_type="text")
def fn_trim(value: Any) -> str | None:
    s = _text(value, "trim")
    return None if s is None else s.strip()


@expression_function(result_type="boolean")
def fn_contains(container: Any, item: Any) -> bool | None:
    """Substring of a text, or member of a list; empty when either is empty."""
    if container is None or item is None:
        return None
    if isinstance(container, str):
        _need(item, str, "contains", "text to look for in text")
        return item in container
    if isinstance(container, (list, tuple)):
        return item in container
    raise ExpressionEvalError(f"contains() needs text or a list, got {type_name(container)}")


@expression_function(result_type="boolean")
def fn_startswith(value: Any, prefix: Any) -> bool | None:
    if value is None or prefix is None:
        return None
    _need(value, str, "startswith", "text")
    _need(prefix, str, "startswith", "text")
    return value.startswith(prefix)


@expression_function(result_type="boolean")
def fn_endswith(value: Any, suffix: Any) -> bool | None:
    if value is None or suffix is None:
        return None
    _need(value, str, "endswith", "text")
    _need(suffix, str, "endswith", "text")
    return value.endswith(suffix)


@expression_function(result_type="text")
def fn_concat(*args: Any) -> str:
    """The filled arguments as text, joined without separator (empty ones are skipped)."""
    parts: list[str] = []
    size = 0
    for a in args:
        if is_empty(a):
            continue
        if isinstance(a, (datetime, date)):
            s = a.isoformat()
        elif isinstance(a, bool):
            s = "true" if a else "false"
        elif isinstance(a, (str, int, Decimal)):
            s = str(a)
        else:
            raise ExpressionEvalError(f"concat() cannot join a {type_name(a)}")
        size += len(s)
        if size > MAX_TEXT_LENGTH:
            raise ExpressionLimitError(f"text longer than {MAX_TEXT_LENGTH} characters")
        parts.append(s)
    return "".join(parts)


@expression_function(result_type="boolean")
def fn_is_empty(value: Any) -> bool:
    """True when the value is None, "" or an empty list."""
    return is_empty(value)


@expression_function(result_type="boolean")
def fn_is_filled(value: Any) -> bool:
    """True when the value is not None, "" or an empty list."""
    return not is_empty(value)


def _two_dates(a: Any, b: Any, name: str) -> bool:
    if a is None or b is None:
        return False
    _need(a, date, name, "dates or datetimes")
    _need(b, date, name, "dates or datetimes")
    return True


@expression_function(result_type="integer", context=True)
def fn_days_between(ctx: EvalContext, a: Any, b: Any) -> int | None:
    """Whole calendar days from a to b (b − a); datetimes count by their date in the tenant tz."""
    if not _two_dates(a, b, "days_between"):
        return None
    return days_diff(a, b, ctx.tz)


@expression_function(result_type="integer", context=True)
def fn_hours_between(ctx: EvalContext, a: Any, b: Any) -> int | None:
    """Whole hours from a to b, truncated toward zero (a date is its start of day in the tenant tz)."""
    if not _two_dates(a, b, "hours_between"):
        return None
    return elapsed(a, b, ctx.tz, timedelta(hours=1))


@expression_function(result_type="integer", context=True)
def fn_minutes_between(ctx: EvalContext, a: Any, b: Any) -> int | None:
    """Whole minutes from a to b, truncated toward zero (a date is its start of day in the tenant tz)."""
    if not _two_dates(a, b, "minutes_between"):
        return None
    return elapsed(a, b, ctx.tz, timedelta(minutes=1))


@expression_function(result_type=_first_type)
def fn_add_days(value: Any, n: Any) -> date | None:
    """A date or datetime moved by n whole days (negative: back)."""
    if value is None or n is None:
        return None
    _need(value, date, "add_days", "a date or datetime")
    return shift_days(value, n)


@expression_function(result_type=_first_type)
def fn_add_months(value: Any, n: Any) -> date | None:
    """A date or datetime moved by n calendar months; the day is clamped to the month's end."""
    if value is None or n is None:
        return None
    _need(value, date, "add_months", "a date or datetime")
    return shift_months(value, n)


def builtin_functions() -> dict[str, Callable]:
    """A new dict of the built-in functions by name."""
    return {
        "now": fn_now,
        "today": fn_today,
        "len": fn_len,
        "count": fn_count,
        "sum": fn_sum,
        "min": fn_min,
        "max": fn_max,
        "avg": fn_avg,
        "round": fn_round,
        "abs": fn_abs,
        "coalesce": fn_coalesce,
        "year": fn_year,
        "month": fn_month,
        "day": fn_day,
        "weekday": fn_weekday,
        "lower": fn_lower,
        "upper": fn_upper,
        "trim": fn_trim,
        "contains": fn_contains,
        "startswith": fn_startswith,
        "endswith": fn_endswith,
        "concat": fn_concat,
        "is_empty": fn_is_empty,
        "is_filled": fn_is_filled,
        "days_between": fn_days_between,
        "hours_between": fn_hours_between,
        "minutes_between": fn_minutes_between,
        "add_days": fn_add_days,
        "add_months": fn_add_months,
    }
