"""Departure (R44) as one operation: the account stops at once and every record it owns is handed over.

Used by `formwork user disable … [--transfer-to OTHER]` and the admin users page. The successor is
checked before anything changes, so a refused departure (no such user, no manager to take over)
leaves the account and its records as they were.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from .records.ownership import OwnershipError, _active_user, hand_over, successor_for


@dataclass
class Departure:
    username: str
    successor: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def owned_counts(tenant, user) -> dict[str, int]:
    """{entity: number of records `user` owns} for entities where they own any."""
    out = {}
    with tenant.db.connect() as conn:
        for entity in tenant.model.entities.values():
            t = tenant.records.schema.table(entity)
            n = conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.owner == user.id)).scalar_one()
            if n:
                out[entity.name] = n
    return out


def depart(tenant, username: str, transfer_to: str | None = None, by=None) -> Departure:
    """Disable `username` (sessions and tokens end) and hand every record it owns to `transfer_to`,
    else to the manager of its department (or the nearest one above)."""
    leaver = tenant.users.require(username)
    owned = owned_counts(tenant, leaver)
    target = None
    if transfer_to:
        target = _active_user(tenant, transfer_to)
        if target.id == leaver.id:
            raise OwnershipError("a user cannot hand records over to themselves")
    elif owned:
        target = successor_for(tenant, leaver)
        if target is None:
            dept = leaver.department or "(none)"
            raise OwnershipError(f"{username} owns {sum(owned.values())} record(s) and department {dept} has "
                                 "no active manager to take them over: name who does with --transfer-to")
    tenant.users.disable(username)
    result = Departure(username, target.username if target else None)
    if owned:
        result.counts = hand_over(tenant, username, to=target.username, by=by)
    return result
