"""The one source of the current time; a tenant's clock wraps it so tests and rehearsals can freeze it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone


def system_now() -> datetime:
    """The machine's time, UTC and aware. Engine code asks `tenant.now()`, which defaults to this."""
    return datetime.now(timezone.utc)


class FrozenClock:
    """A clock that says `at` until moved: `tenant.clock = FrozenClock(at)`; `advance(hours=2)`."""

    def __init__(self, at: datetime):
        self.at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta) -> datetime:
        self.at += timedelta(**delta)
        return self.at
