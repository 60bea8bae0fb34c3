"""The audit trail: one row per write, in the same transaction, with {field: [old, new]}."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import sqlalchemy as sa


def audit_row(entity: str, record_id: int | None, action: str, changes: dict, user, note: str | None = None,
              *, at: datetime) -> dict:
    """An audit row stamped `at` (the tenant's clock)."""
    return {"at": at, "user_id": getattr(user, "id", None),
            "username": getattr(user, "username", None) or "system", "entity": entity, "record_id": record_id,
            "action": action, "changes": json.dumps(changes, ensure_ascii=False, default=str), "note": note}


def write_audit(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    if rows:
        conn.execute(table.insert(), rows)


def read_history(conn: sa.Connection, table: sa.Table, entity: str, record_id: int) -> list[dict]:
    rows = conn.execute(sa.select(table).where(table.c.entity == entity, table.c.record_id == record_id)
                        .order_by(table.c.id.desc())).mappings()
    out = []
    for r in rows:
        at = r["at"]
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        out.append({"id": r["id"], "at": at, "user_id": r["user_id"], "username": r["username"],
                    "action": r["action"], "changes": json.loads(r["changes"] or "{}"), "note": r["note"]})
    return out


def last_change(conn: sa.Connection, table: sa.Table, entity: str, record_id: int) -> dict | None:
    history = read_history(conn, table, entity, record_id)
    return history[0] if history else None
