"""The audit trail: one row per write, in the same transaction, with {field: [old, new]}.

`AuditLog` is the only writer of ``fw_audit``: every row is canonical JSON (sorted keys, one
serialisation, so a hash chain can be added in one place) and every row it appends is also an event
of the write's transaction (engine/records/events.py).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterable

import sqlalchemy as sa

from .events import RecordEvent, emit, event_from_audit, ACTION_EVENTS

# The key of a merge row's changes that links the records merged into it (never a field name: "_").
MERGED_KEY = "_merged"
# The one serialisation of an audit row's changes; bulk.AUDIT_JSON gives the same text.
canonical_json = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode


def audit_row(entity: str, record_id: int | None, action: str, changes: dict, user, note: str | None = None,
              *, at: datetime) -> dict:
    """An audit row stamped `at` (the tenant's clock)."""
    return {"at": at, "user_id": getattr(user, "id", None),
            "username": getattr(user, "username", None) or "system", "entity": entity, "record_id": record_id,
            "action": action, "changes": canonical_json(changes), "note": note}


class AuditLog:
    """Appends audit rows in the caller's transaction and announces each as an event."""

    def __init__(self, tenant):
        self.tenant = tenant

    @property
    def table(self) -> sa.Table:
        return self.tenant.schema.system["audit"]

    def append(self, conn: sa.Connection, rows: list[dict]) -> None:
        """Rows made by `audit_row`."""
        if rows:
            conn.execute(self.table.insert(), rows)
            emit(conn, *map(event_from_audit, rows))

    def append_created(self, conn: sa.Connection, ids: list[int], texts: Iterable[str], constants: dict,
                       fast=None) -> None:
        """One row per new record of a bulk create: `constants` (at, user_id, username, entity, action,
        note) and per record its id and changes text (canonical JSON). `fast`: the entity's
        bulk.RecordInsert, whose compiled audit INSERT takes driver rows (SQLite)."""
        texts = list(texts)
        if fast is not None:
            fast.audit.run(conn, fast.audit_rows(ids, texts, constants))
        elif ids:
            conn.execute(self.table.insert(), [{**constants, "record_id": rid, "changes": text}
                                               for rid, text in zip(ids, texts)])
        kind = ACTION_EVENTS.get(constants["action"], constants["action"])
        emit(conn, *[RecordEvent(kind, constants["entity"], rid, constants["at"], constants.get("user_id"),
                                 constants.get("username"), constants.get("note"), text)
                     for rid, text in zip(ids, texts)])


def read_history(conn: sa.Connection, table: sa.Table, entity: str, record_id: int) -> list[dict]:
    """A record's audit rows, newest first, with the history of the records merged into it (linked by
    the merge row's `MERGED_KEY`, noted "merged from #id"; their deletion by the merge left out)."""
    out = _history_rows(conn, table, entity, [record_id])
    seen = {record_id}
    linked = _merged_ids(out, seen)
    while linked:
        seen.update(linked)
        more = [item for item in _history_rows(conn, table, entity, linked) if item["action"] != "delete"]
        for item in more:
            item["note"] = f"merged from #{item['record_id']}" + (f": {item['note']}" if item["note"] else "")
        out.extend(more)
        linked = _merged_ids(more, seen)
    out.sort(key=lambda item: item["id"], reverse=True)
    for item in out:
        item["changes"].pop(MERGED_KEY, None)
    return out


def _history_rows(conn, table: sa.Table, entity: str, record_ids: list[int]) -> list[dict]:
    rows = conn.execute(sa.select(table).where(table.c.entity == entity, table.c.record_id.in_(record_ids))
                        .order_by(table.c.id.desc())).mappings()
    out = []
    for r in rows:
        at = r["at"]
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        out.append({"id": r["id"], "at": at, "user_id": r["user_id"], "username": r["username"],
                    "action": r["action"], "changes": json.loads(r["changes"] or "{}"), "note": r["note"],
                    "record_id": r["record_id"]})
    return out


def _merged_ids(items: list[dict], seen: set[int]) -> list[int]:
    found = []
    for item in items:
        if item["action"] == "merge":
            pair = item["changes"].get(MERGED_KEY)
            ids = pair[1] if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], list) else []
            found.extend(i for i in ids if isinstance(i, int) and i not in seen)
    return list(dict.fromkeys(found))
