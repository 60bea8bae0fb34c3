"""What refers to a deleted record by its id goes with it, in the delete's own transaction."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa


def forget_record(conn: sa.Connection, system: dict[str, sa.Table], entity: str, rid: int, now: datetime) -> None:
    """Drop the record's shares (approvers' read grants are shares too), unlink the tasks about it
    and close any approval still pending on it (the approvals plugin refuses such a delete; without
    the plugin nothing else would). Ids are never reused, so this is about not leaving access to a
    record id lying around, and about pages that would link to a record that is gone."""
    shares, tasks, approvals, steps = (system[k] for k in ("shares", "tasks", "approvals", "approval_steps"))
    conn.execute(shares.delete().where(shares.c.entity == entity, shares.c.record_id == rid))
    conn.execute(tasks.update().where(tasks.c.entity == entity, tasks.c.record_id == rid)
                 .values(entity=None, record_id=None))
    pending = sa.select(approvals.c.id).where(approvals.c.entity == entity, approvals.c.record_id == rid,
                                              approvals.c.status == "pending")
    conn.execute(steps.update().where(steps.c.approval_id.in_(pending), steps.c.status.in_(("waiting", "active")))
                 .values(status="cancelled", decided_at=now, note="record deleted"))
    conn.execute(approvals.update().where(approvals.c.id.in_(pending))
                 .values(status="withdrawn", step=None, decided_at=now))
