"""The event stream: every committed change of a record, collected per write transaction.

The audit log turns each row it appends into an event (`AuditLog.append`), so a change that is
audited is announced, once. A transaction's events go to ``formwork_records_changed`` inside it and
to ``formwork_records_committed`` after commit (never after a rollback); the events a durable
consumer asked for (``formwork_events_durable``) are also written to the ``fw_outbox`` table in the
same transaction, to be read after a crash.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

# Audit actions and the event each announces; an action not listed is announced under its own name.
ACTION_EVENTS = {
    "create": "created", "update": "updated", "delete": "deleted", "transfer": "transferred",
    "share": "shared", "unshare": "unshared", "merge": "merged", "approval": "approval_changed",
}
EVENTS_KEY = "formwork_events"   # Connection.info key of the transaction's EventBatch


@dataclass(slots=True)
class RecordEvent:
    """One change: `type` (created, updated, deleted, transferred, shared, merged, stage_changed,
    approval_changed …) of record `record_id` of `entity`, at `at` by `user_id`. `changes` is the
    audit's ``{field: [old, new]}``; `data` holds what else an event type carries (stage names …)."""

    type: str
    entity: str
    record_id: int | None
    at: datetime
    user_id: int | None = None
    username: str | None = None
    note: str | None = None
    changes_json: str | None = None   # the audit row's text: parsed on first use (imports make many)
    data: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``<entity>.<type>``, the name consumers subscribe to (``customer.*``)."""
        return f"{self.entity}.{self.type}"

    @property
    def changes(self) -> dict:
        return json.loads(self.changes_json) if self.changes_json else {}

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "entity": self.entity, "record_id": self.record_id,
                "at": self.at.isoformat() if self.at else None, "user_id": self.user_id,
                "username": self.username, "note": self.note, "changes": self.changes, "data": self.data}


class EventBatch:
    """The events of one write transaction, in the order they happened."""

    __slots__ = ("events",)

    def __init__(self):
        self.events: list[RecordEvent] = []


def emit(conn, *events: RecordEvent) -> None:
    """Add events to the transaction of `conn` (for changes the audit log does not announce, such as
    a stage move); outside a Tenant.write() transaction there is no stream and nothing is kept."""
    batch = conn.info.get(EVENTS_KEY)
    if batch is not None:
        batch.events.extend(events)


def event_from_audit(row: dict) -> RecordEvent:
    changes = row.get("changes")
    return RecordEvent(type=ACTION_EVENTS.get(row["action"], row["action"]), entity=row["entity"],
                       record_id=row.get("record_id"), at=row["at"], user_id=row.get("user_id"),
                       username=row.get("username"), note=row.get("note"),
                       changes_json=changes if isinstance(changes, str) else None)


class EventStream:
    """Per tenant: hands a transaction's events to the plugins and keeps the outbox."""

    def __init__(self, tenant):
        self.tenant = tenant
        self._durable: tuple[str, ...] | None = None

    @property
    def durable_patterns(self) -> tuple[str, ...]:
        """Event names (``<entity>.<type>``, shell patterns) some plugin must not lose."""
        if self._durable is None:
            found: list[str] = []
            for patterns in self.tenant.pm.hook.formwork_events_durable(tenant=self.tenant):
                found.extend(patterns or [])
            self._durable = tuple(dict.fromkeys(found))
        return self._durable

    def before_commit(self, conn, events: list[RecordEvent]) -> None:
        """Inside the transaction: plugins see the events, the outbox gets the durable ones."""
        self.tenant.pm.hook.formwork_records_changed(tenant=self.tenant, events=events, connection=conn)
        patterns = self.durable_patterns
        if patterns:
            rows = [{"at": e.at, "event": e.name, "entity": e.entity, "record_id": e.record_id,
                     "payload": json.dumps(e.as_dict(), ensure_ascii=False, sort_keys=True, default=str)}
                    for e in events if any(fnmatchcase(e.name, p) for p in patterns)]
            if rows:
                conn.execute(self.tenant.schema.system["outbox"].insert(), rows)

    def after_commit(self, events: list[RecordEvent]) -> None:
        """After commit: a plugin's failure is logged, never turned into a failed write."""
        import logging

        try:
            self.tenant.pm.hook.formwork_records_committed(tenant=self.tenant, events=tuple(events))
        except Exception:  # noqa: BLE001 - the change is committed; say so in the log and go on
            logging.getLogger("formwork.events").exception("a formwork_records_committed hook failed")
