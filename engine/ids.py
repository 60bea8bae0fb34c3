"""Record ids as the database keeps them: positive BIGINTs; any other "id" names no record."""
from __future__ import annotations

from typing import Any

MAX_ID = 2 ** 63 - 1   # larger numbers overflow the drivers (SQLite) or the column (PostgreSQL)


def as_id(value: Any) -> int | None:
    """`value` as a record id (an int or a string of ASCII digits in range), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        # str.isdigit() also accepts "²" and other digits int() refuses.
        if not (value.isascii() and value.isdigit()) or len(value) > 19:
            return None
        value = int(value)
    if isinstance(value, int) and 0 < value <= MAX_ID:
        return value
    return None
