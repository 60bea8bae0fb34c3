"""date and datetime.

* date reads ``2026-03-05``, ``2026/3/5``, ``2026.03.05``, ``2026年3月5日`` (a trailing midnight time such
  as ``2026/3/5 0:00`` from spreadsheets is tolerated), date and datetime objects. JSON/CSV: ISO.
  Display: ``2026-03-05`` (settings.display: long → ``2026年3月5日`` / ``5 March 2026``).
* datetime values are timezone-aware and always UTC in Python and in the database. Naive input
  (forms, CSV, naive datetime objects, a bare date = midnight) is wall-clock time in ``ctx.timezone``.
  JSON/CSV: ISO 8601 in UTC with a ``Z`` suffix (``2026-03-05T06:30:00Z``). Display: ``YYYY-MM-DD HH:MM``
  in ``ctx.timezone``. SQLite gives naive datetimes back; ``from_db`` attaches UTC.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import sqlalchemy as sa

from ..metadata.model import Field
from ._util import check_bounds, config_bounds_issues, halfwidth, is_blank, is_zh
from .base import FieldContext, FieldType, fail

UTC = timezone.utc
DATE_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "empty", "not_empty")

_DATE = r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
_DATE_RE = re.compile(_DATE + r"(?:[ T]+0?0:00(?::00(?:\.0+)?)?)?", re.ASCII)
_DATETIME_RE = re.compile(
    _DATE + r"(?:(?:\s*T\s*|\s+)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def _make_date(value: Any, y: str, m: str, d: str) -> date:
    try:
        return date(int(y), int(m), int(d))
    except ValueError:
        raise fail("not_a_date", value=str(value)) from None


class DateType(FieldType):
    name = "date"
    operators = DATE_OPERATORS
    temporal = True
    groupable = True                      # by day, week, month, quarter or year
    aggregations = ("count", "count_distinct", "min", "max")
    widget = "date"
    json_type = {"type": "string", "format": "date"}
    settings_schema = {
        "display": {"enum": ["short", "long"],
                    "description": "short: 2026-03-05 (default); long: 2026年3月5日 / 5 March 2026."},
    }

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.Date()

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(ctx.timezone)
            return value.date()
        if isinstance(value, date):
            return value
        if is_blank(value):
            return None
        if isinstance(value, str):
            m = _DATE_RE.fullmatch(halfwidth(value.strip()))
            if m:
                return _make_date(value, *m.groups())
        raise fail("not_a_date", value=str(value))

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_bounds(self, field, value, ctx)

    def from_db(self, field: Field, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, str):
            return date.fromisoformat(value[:10])
        return value

    def to_json(self, field: Field, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if value is None:
            return ""
        if field.settings.get("display") == "long":
            if is_zh(ctx.locale):
                return f"{value.year}年{value.month}月{value.day}日"
            return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"
        return value.isoformat()

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        issues = config_bounds_issues(self, field)
        disp = field.settings.get("display")
        if disp is not None and disp not in ("short", "long"):
            issues.append((("display",), "display must be short or long"))
        return issues

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        from ..errors import FieldValueError

        today = ctx.now().astimezone(ctx.timezone).date()
        lo, hi = today - timedelta(days=365), today + timedelta(days=60)
        try:
            lo = self.coerce(field, field.min, ctx) or lo
            hi = self.coerce(field, field.max, ctx) or hi
        except FieldValueError:
            pass
        if hi < lo:
            lo, hi = hi, lo
        return lo + timedelta(days=faker.random_int(0, (hi - lo).days))


def _aware_utc(value: datetime, tz) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


class DateTimeType(FieldType):
    name = "datetime"
    operators = DATE_OPERATORS
    temporal = True
    groupable = True
    aggregations = ("count", "count_distinct", "min", "max")
    widget = "datetime"
    json_type = {"type": "string", "format": "date-time"}

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        return sa.DateTime(timezone=True)

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        if isinstance(value, datetime):
            return _aware_utc(value, ctx.timezone)
        if isinstance(value, date):
            return _aware_utc(datetime.combine(value, time()), ctx.timezone)
        if is_blank(value):
            return None
        if isinstance(value, str):
            parsed = self._parse(value)
            if parsed is not None:
                return _aware_utc(parsed, ctx.timezone)
        raise fail("not_a_datetime", value=str(value))

    @staticmethod
    def _parse(value: str) -> datetime | None:
        s = halfwidth(value.strip())
        m = _DATETIME_RE.fullmatch(s)
        if m is None:
            return None
        y, mo, d, hh, mi, ss, frac, tz = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0),
                          int((frac or "0")[:6].ljust(6, "0")))
        except ValueError:
            raise fail("not_a_datetime", value=value) from None
        if tz:
            if tz in ("Z", "z", "UTC"):
                offset = timedelta(0)
            else:
                digits = tz[1:].replace(":", "")
                hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
                if hours > 23 or minutes > 59:
                    raise fail("not_a_datetime", value=value)
                offset = timedelta(hours=hours, minutes=minutes) * (-1 if tz[0] == "-" else 1)
            dt = dt.replace(tzinfo=timezone(offset))
        return dt

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        check_bounds(self, field, value, ctx)

    def to_db(self, field: Field, value: Any) -> Any:
        # UTC for both backends: SQLite keeps the wall clock and drops the offset, so it must be UTC.
        return None if value is None else _aware_utc(value, UTC)

    def from_db(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = self._parse(value)
        return _aware_utc(value, UTC)

    def to_json(self, field: Field, value: Any) -> Any:
        if value is None:
            return None
        return _aware_utc(value, UTC).isoformat().replace("+00:00", "Z")

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        if value is None:
            return ""
        return _aware_utc(value, UTC).astimezone(ctx.timezone).strftime("%Y-%m-%d %H:%M")

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        return config_bounds_issues(self, field)

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        now = ctx.now().astimezone(UTC).replace(microsecond=0)
        return now - timedelta(seconds=faker.random_int(0, 365 * 24 * 3600))
