"""Value semantics of the expression language: emptiness, three-valued truth, numbers, dates.

Everything here is a pure function or an immutable constant. See the package docstring for the
contract these implement.
"""
from __future__ import annotations

import calendar
import decimal
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, Mapping

from .errors import ExpressionEvalError, ExpressionLimitError

# ---- cost limits (run time) -------------------------------------------------------------------
MAX_TEXT_LENGTH = 100_000      # longest text an expression may build (+, *, concat)
MAX_LIST_LENGTH = 100_000      # longest list an expression may build (+, *)
MAX_INT_BITS = 4096            # largest integer a * or ** may produce (about 1,233 digits)
MAX_INT_DIGITS = 1_200         # largest integer made from a decimal (floor division, round)
MAX_ROUND_DIGITS = 28          # round(x, n) accepts -28 <= n <= 28
MAX_LOADS = 1_000              # referenced records one evaluation may load

DECIMAL_PRECISION = 28        # significant digits of Decimal arithmetic


def decimal_context() -> decimal.Context:
    """A fresh context for one evaluation: overflow and invalid operations trap."""
    return decimal.Context(
        prec=DECIMAL_PRECISION, rounding=decimal.ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
        traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])


class _Unknown:
    """The "unknown" truth value of a comparison involving an empty value (SQL's NULL logic)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:  # a programming error: unknown must go through truth()
        raise TypeError("UNKNOWN has no Python truth value; use values.truth()")


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class EvalContext:
    """What context functions (now, today, date helpers) receive as their first argument."""

    now: datetime          # tz-aware, UTC
    tz: tzinfo             # the tenant timezone

    def today(self) -> date:
        return self.now.astimezone(self.tz).date()


# ---- emptiness and truth ----------------------------------------------------------------------
def is_null(v: Any) -> bool:
    """None or unknown: what makes a comparison unknown and arithmetic empty."""
    return v is None or v is UNKNOWN


def is_empty(v: Any) -> bool:
    """Not filled: None, unknown, "" or an empty list."""
    if v is None or v is UNKNOWN:
        return True
    if isinstance(v, str):
        return v == ""
    if isinstance(v, (list, tuple)):
        return len(v) == 0
    return False


def truth(v: Any):
    """A value in a boolean context: True, False or UNKNOWN (only an unknown stays unknown)."""
    if v is True or v is False:  # (a comparison's result: the usual case)
        return v
    if v is UNKNOWN:
        return UNKNOWN
    if is_empty(v):
        return False
    return bool(v)


def plain(v: Any) -> Any:
    """The value as callers and functions see it: unknown becomes None."""
    return None if v is UNKNOWN else v


def normalize(v: Any) -> Any:
    """A value read from a record: floats become exact Decimals, tuples lists."""
    if isinstance(v, float):
        return _float_to_decimal(v)
    if isinstance(v, (list, tuple)):
        return [_float_to_decimal(x) if isinstance(x, float) else x for x in v]
    return v


def _float_to_decimal(f: float) -> Decimal | None:
    if f != f or f in (float("inf"), float("-inf")):
        return None
    return Decimal(repr(f))


def type_name(v: Any) -> str:
    """A user-facing name of a value's type, for messages."""
    if v is None or v is UNKNOWN:
        return "empty"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, Decimal):
        return "decimal"
    if isinstance(v, str):
        return "text"
    if isinstance(v, datetime):
        return "datetime"
    if isinstance(v, date):
        return "date"
    if isinstance(v, (list, tuple)):
        return "list"
    if isinstance(v, Mapping):
        return "record"
    return type(v).__name__


def is_number(v: Any) -> bool:
    return isinstance(v, (int, Decimal))  # bool is an int: True counts as 1


def is_integral(v: Any) -> bool:
    if isinstance(v, int):
        return True
    return isinstance(v, Decimal) and v.is_finite() and v == v.to_integral_value()


# ---- dates ------------------------------------------------------------------------------------
def aware(dt: datetime) -> datetime:
    """A datetime with a timezone; naive values are taken as UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def as_date(v: date, tz: tzinfo) -> date:
    """The calendar date of a date or datetime in the tenant timezone."""
    if isinstance(v, datetime):
        return aware(v).astimezone(tz).date()
    return v


def as_datetime(v: date, tz: tzinfo) -> datetime:
    """A tz-aware datetime; a date becomes the start of that day in the tenant timezone."""
    if isinstance(v, datetime):
        return aware(v)
    return datetime.combine(v, time(0, 0), tzinfo=tz)


def is_temporal(v: Any) -> bool:
    return isinstance(v, date)  # datetime is a date subclass


def shift_days(d: date, n: Any) -> date:
    """d + n days (n a whole number)."""
    if not is_integral(n):
        raise ExpressionEvalError(f"can only add whole days to a {type_name(d)}, not {n}")
    days = int(n)
    try:
        return d + timedelta(days=days)
    except OverflowError:
        raise ExpressionEvalError(f"the date is out of range after adding {days} days") from None


def shift_months(d: date, n: Any) -> date:
    """d + n calendar months, the day clamped to the month's last day."""
    if not is_integral(n):
        raise ExpressionEvalError(f"can only add whole months, not {n}")
    months = d.month - 1 + int(n)
    year = d.year + months // 12
    if not 1 <= year <= 9999:
        raise ExpressionEvalError("the date is out of range after adding months")
    month = months % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return d.replace(year=year, month=month, day=day)


def days_diff(a: date, b: date, tz: tzinfo) -> int:
    """Whole calendar days from a to b (b − a) in the tenant timezone."""
    return (as_date(b, tz) - as_date(a, tz)).days


def elapsed(a: date, b: date, tz: tzinfo, unit: timedelta) -> int:
    """Whole `unit`s from a to b, truncated toward zero."""
    delta = as_datetime(b, tz) - as_datetime(a, tz)
    whole = abs(delta) // unit
    return whole if delta >= timedelta(0) else -whole


# ---- comparisons ------------------------------------------------------------------------------
def _align(a: Any, b: Any, tz: tzinfo) -> tuple[Any, Any]:
    """Make a date and a datetime comparable (the datetime's date in the tenant timezone)."""
    a_dt, b_dt = isinstance(a, datetime), isinstance(b, datetime)
    if a_dt and b_dt:
        return aware(a), aware(b)
    if a_dt and isinstance(b, date):
        return as_date(a, tz), b
    if b_dt and isinstance(a, date):
        return a, as_date(b, tz)
    return a, b


def equals(a: Any, b: Any, tz: tzinfo):
    if is_null(a) or is_null(b):
        return UNKNOWN
    a, b = _align(a, b, tz)
    return a == b


def order(op: str, a: Any, b: Any, tz: tzinfo):
    """a < b, a <= b, a > b or a >= b (op is one of "<", "<=", ">", ">=")."""
    if is_null(a) or is_null(b):
        return UNKNOWN
    a, b = _align(a, b, tz)
    if not _orderable(a, b):
        raise ExpressionEvalError(f"cannot compare {type_name(a)} with {type_name(b)} using {op}")
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _orderable(a: Any, b: Any) -> bool:
    if is_number(a) and is_number(b):
        return True
    if isinstance(a, str) and isinstance(b, str):
        return True
    if isinstance(a, date) and isinstance(b, date):
        return isinstance(a, datetime) == isinstance(b, datetime)
    return False


def contains(container: Any, item: Any, tz: tzinfo):
    """`item in container`: list membership or substring; unknown when either side is empty."""
    if is_null(item) or is_null(container):
        return UNKNOWN
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExpressionEvalError(f"'in' on text needs text on the left, not {type_name(item)}")
        return item in container
    if isinstance(container, (list, tuple)):
        return any(equals(item, x, tz) is True for x in container)
    raise ExpressionEvalError(f"'in' needs a list or text on the right, not {type_name(container)}")


# ---- arithmetic -------------------------------------------------------------------------------
def decimal_to_int(d: Decimal) -> int:
    if d.adjusted() > MAX_INT_DIGITS:
        raise ExpressionLimitError("the number is too large")
    return int(d)


def _bad(op: str, a: Any, b: Any = None, unary: bool = False) -> ExpressionEvalError:
    if unary:
        return ExpressionEvalError(f"cannot apply {op} to {type_name(a)}")
    return ExpressionEvalError(f"cannot use {op} with {type_name(a)} and {type_name(b)}")


def add(a: Any, b: Any, tz: tzinfo) -> Any:
    if is_null(a) or is_null(b):
        return None
    if is_number(a) and is_number(b):
        return a + b
    if isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) > MAX_TEXT_LENGTH:
            raise ExpressionLimitError(f"text longer than {MAX_TEXT_LENGTH} characters")
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        if len(a) + len(b) > MAX_LIST_LENGTH:
            raise ExpressionLimitError(f"list longer than {MAX_LIST_LENGTH} items")
        return a + b
    if is_temporal(a) and is_number(b):
        return shift_days(a, b)
    if is_number(a) and is_temporal(b):
        return shift_days(b, a)
    raise _bad("+", a, b)


def sub(a: Any, b: Any, tz: tzinfo) -> Any:
    if is_null(a) or is_null(b):
        return None
    if is_number(a) and is_number(b):
        return a - b
    if is_temporal(a) and is_number(b):
        return shift_days(a, -b)
    if is_temporal(a) and is_temporal(b):
        return days_diff(b, a, tz)
    raise _bad("-", a, b)


def mul(a: Any, b: Any, tz: tzinfo) -> Any:
    if type(a) is int and type(b) is int:  # what the number branch below does for two integers
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise ExpressionLimitError("the number is too large")
        return a * b
    if is_null(a) or is_null(b):
        return None
    if is_number(a) and is_number(b):
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise ExpressionLimitError("the number is too large")
        return a * b
    if isinstance(a, int) and isinstance(b, (str, list)):
        a, b = b, a
    if isinstance(a, (str, list)) and isinstance(b, int) and not isinstance(b, bool):
        limit = MAX_TEXT_LENGTH if isinstance(a, str) else MAX_LIST_LENGTH
        if len(a) * max(b, 0) > limit:
            raise ExpressionLimitError(f"result longer than {limit}")
        return a * b
    raise _bad("*", a, b)


def _numbers(op: str, a: Any, b: Any) -> tuple[Decimal, Decimal]:
    if not (is_number(a) and is_number(b)):
        raise _bad(op, a, b)
    return Decimal(a), Decimal(b)


def div(a: Any, b: Any, tz: tzinfo) -> Any:
    """a / b as an exact-as-possible Decimal; empty when b is 0."""
    if is_null(a) or is_null(b):
        return None
    x, y = _numbers("/", a, b)
    if y == 0:
        return None
    return x / y


def floordiv(a: Any, b: Any, tz: tzinfo) -> Any:
    """a // b rounded toward minus infinity, always an integer; empty when b is 0."""
    if is_null(a) or is_null(b):
        return None
    x, y = _numbers("//", a, b)
    if y == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    return decimal_to_int((x / y).to_integral_value(rounding=decimal.ROUND_FLOOR))


def mod(a: Any, b: Any, tz: tzinfo) -> Any:
    """a % b with the sign of b (as Python ints); empty when b is 0."""
    if is_null(a) or is_null(b):
        return None
    x, y = _numbers("%", a, b)
    if y == 0:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return a % b
    q = (x / y).to_integral_value(rounding=decimal.ROUND_FLOOR)
    return x - y * q


def power(a: Any, b: Any, tz: tzinfo) -> Any:
    if is_null(a) or is_null(b):
        return None
    x, y = _numbers("**", a, b)
    if x == 0 and y < 0:
        return None
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        if abs(a) > 1 and (abs(a).bit_length() - 1) * b > MAX_INT_BITS:
            raise ExpressionLimitError(f"{a} ** {b} is too large")
        return a ** b
    try:
        return x ** y
    except decimal.InvalidOperation:
        return None  # e.g. a negative number to a fractional power


def neg(a: Any) -> Any:
    if is_null(a):
        return None
    if not is_number(a):
        raise _bad("unary -", a, unary=True)
    return -a


def pos(a: Any) -> Any:
    if is_null(a):
        return None
    if not is_number(a):
        raise _bad("unary +", a, unary=True)
    return +a
