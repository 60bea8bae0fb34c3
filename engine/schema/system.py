"""Formwork's own tables (prefix fw_): users, tokens, audit, sequences, applied schema state."""
from __future__ import annotations

import sqlalchemy as sa

# Entity names may not start with this prefix, so system tables never collide with generated ones.
SYSTEM_PREFIX = "fw_"


def id_column() -> sa.Column:
    # BigInteger on PostgreSQL, but INTEGER on SQLite so it stays an alias of the rowid.
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                     autoincrement=True)


def never_reused(table: sa.Table) -> sa.Table:
    """SQLite AUTOINCREMENT for a table with an id: without it SQLite hands a deleted row's id (the
    highest) to the next row, and whatever refers to that id (shares, approvals, audit) goes with it.
    PostgreSQL's sequences never give an id twice."""
    if "id" in table.c and table.c.id.primary_key:
        table.dialect_options["sqlite"]["autoincrement"] = True
    return table


def define_system_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Add the fw_ tables to `metadata` and return them by short name."""
    tables = _define_system_tables(metadata)
    for t in metadata.tables.values():
        if t.name.startswith(SYSTEM_PREFIX):
            never_reused(t)
    return tables


def _define_system_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    users = sa.Table(
        "fw_users", metadata,
        id_column(),
        sa.Column("username", sa.String(150), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("email", sa.String(254)),
        sa.Column("roles", sa.Text, nullable=False, server_default="[]"),        # JSON list of role names
        sa.Column("department", sa.String(100)),
        sa.Column("manages", sa.Text, nullable=False, server_default="[]"),      # JSON list of departments
        sa.Column("password_hash", sa.String(300)),
        sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("locale", sa.String(20)),
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),  # bump → sessions end
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
    )
    tokens = sa.Table(
        "fw_tokens", metadata,
        id_column(),
        sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    # One row per throttle key, counted with a single upsert so concurrent logins cannot race
    # past the limit (a count of rows read before the password check could).
    login_throttle = sa.Table(
        "fw_login_throttle", metadata,
        sa.Column("key", sa.String(300), primary_key=True),           # "user:<name>" or "ip:<addr>"
        sa.Column("attempts", sa.Integer, nullable=False),            # attempts in the current window
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    )
    # Facts about this database itself, e.g. the random tenant id that sessions are bound to.
    instance = sa.Table(
        "fw_instance", metadata,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    audit = sa.Table(
        "fw_audit", metadata,
        id_column(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("username", sa.String(150)),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger),
        sa.Column("action", sa.String(30), nullable=False),   # create | update | delete | import …
        sa.Column("changes", sa.Text, nullable=False, server_default="{}"),  # JSON {field: [old, new]}
        sa.Column("note", sa.Text),
        sa.Index("ix_fw_audit_record", "entity", "record_id"),
    )
    sequences = sa.Table(
        "fw_sequences", metadata,
        sa.Column("name", sa.String(200), primary_key=True),   # "<entity>.<field>:<period>"
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    schema_state = sa.Table(
        "fw_schema_state", metadata,
        sa.Column("table_name", sa.String(200), primary_key=True),
        sa.Column("column_name", sa.String(200), primary_key=True),
        sa.Column("field_type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),  # active | archived
        sa.Column("settings", sa.Text, nullable=False, server_default="{}"),  # JSON: column-shaping keys
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    config_versions = sa.Table(
        "fw_config_versions", metadata,
        id_column(),
        sa.Column("fingerprint", sa.String(64), nullable=False),          # schema shape
        sa.Column("config_fingerprint", sa.String(64), nullable=False),   # the whole merged config
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(150)),
        sa.Column("files", sa.Text, nullable=False, server_default="[]"),
        sa.Column("plan", sa.Text, nullable=False, server_default="[]"),  # JSON list of applied changes
    )
    shares = sa.Table(
        "fw_shares", metadata,
        id_column(),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger),            # share with one user …
        sa.Column("department", sa.String(100)),        # … or with a whole department
        sa.Column("access", sa.String(10), nullable=False),  # read | write
        sa.Column("created_by", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_fw_shares_record", "entity", "record_id"),
        sa.Index("ix_fw_shares_user", "entity", "user_id"),
    )
    exports = sa.Table(
        "fw_exports", metadata,
        id_column(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("username", sa.String(150)),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("filters", sa.Text, nullable=False, server_default="{}"),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(20), nullable=False, server_default="cli"),  # cli | web | api
    )
    outbox = sa.Table(
        # Events a durable consumer must not lose (formwork_events_durable), written in the change's
        # transaction; consumers keep their own delivery state by id.
        "fw_outbox", metadata,
        id_column(),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(200), nullable=False),       # <entity>.<type>
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger),
        sa.Column("payload", sa.Text, nullable=False),            # the event as canonical JSON
        sa.Index("ix_fw_outbox_event", "event", "id"),
    )
    define_dedup_tables(metadata)
    workflow = define_workflow_tables(metadata)
    return {**workflow, "outbox": outbox, "users": users, "shares": shares, "exports": exports, "tokens": tokens, "login_throttle": login_throttle, "instance": instance, "audit": audit,
            "sequences": sequences, "schema_state": schema_state, "config_versions": config_versions}


def define_dedup_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Duplicate detection (engine/dedup): the blocking keys kept with every write, the normalised
    value each fuzzy rule scores, and which rule definition the index was built for."""
    keys = sa.Table(
        "fw_dedup_keys", metadata,
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("rule", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("size", sa.Integer, nullable=False, server_default="0"),  # length of the normalised value
        sa.Column("record_id", sa.BigInteger, nullable=False),
        sa.Index("ix_fw_dedup_keys_lookup", "entity", "rule", "key", "size", "record_id"),
        sa.Index("ix_fw_dedup_keys_record", "entity", "record_id"),
    )
    values = sa.Table(
        "fw_dedup_values", metadata,
        sa.Column("entity", sa.String(100), primary_key=True),
        sa.Column("rule", sa.String(100), primary_key=True),
        sa.Column("record_id", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    state = sa.Table(
        "fw_dedup_state", metadata,
        sa.Column("entity", sa.String(100), primary_key=True),
        sa.Column("rule", sa.String(100), primary_key=True),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.BigInteger, nullable=False, server_default="0"),
    )
    return {"keys": keys, "values": values, "state": state}


def define_workflow_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Pipelines and approvals (engine/workflows): stage history, checklists, approval instances with
    their steps and decisions, help requests (tasks) and in-app notifications."""
    stage_history = sa.Table(
        "fw_stage_history", metadata,
        id_column(),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger, nullable=False),
        sa.Column("pipeline", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entered_by", sa.BigInteger),
        sa.Column("left_at", sa.DateTime(timezone=True)),         # NULL: the record is in this stage now
        sa.Column("left_by", sa.BigInteger),
        sa.Index("ix_fw_stage_history_record", "entity", "record_id"),
        sa.Index("ix_fw_stage_history_open", "pipeline", "left_at", "stage", "entered_at"),
    )
    checklist = sa.Table(
        "fw_stage_checklist", metadata,
        id_column(),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger, nullable=False),
        sa.Column("pipeline", sa.String(100), nullable=False),
        sa.Column("stage", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),          # action | deliverable
        sa.Column("item", sa.Integer, nullable=False),             # its position in the stage's list
        sa.Column("done_by", sa.BigInteger),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("entity", "record_id", "pipeline", "stage", "kind", "item",
                            name="uq_fw_stage_checklist_item"),
    )
    approvals = sa.Table(
        "fw_approvals", metadata,
        id_column(),
        sa.Column("flow", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),        # pending | approved | rejected | withdrawn
        sa.Column("step", sa.Integer),                             # the active step's position while pending
        sa.Column("submitted_by", sa.BigInteger),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("snapshot", sa.Text, nullable=False, server_default="{}"),  # JSON: locked values submitted
        sa.Column("title", sa.String(300), nullable=False, server_default=""),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Index("ix_fw_approvals_record", "entity", "record_id", "flow"),
        sa.Index("ix_fw_approvals_status", "status"),
    )
    approval_steps = sa.Table(
        "fw_approval_steps", metadata,
        id_column(),
        sa.Column("approval_id", sa.BigInteger, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),     # as configured: manager, role:finance …
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("approvers", sa.Text, nullable=False, server_default="[]"),  # JSON user ids, resolved
        sa.Column("status", sa.String(20), nullable=False),        # waiting | active | approved | rejected | skipped | cancelled
        sa.Column("note", sa.Text),                                # why skipped or escalated
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("approval_id", "position", name="uq_fw_approval_steps_position"),
    )
    approval_decisions = sa.Table(
        "fw_approval_decisions", metadata,
        id_column(),
        sa.Column("approval_id", sa.BigInteger, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),      # approve | reject | withdraw | resubmit
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        # one decision per approver and step: a double-clicked approve cannot count twice
        sa.UniqueConstraint("approval_id", "position", "user_id", "decision", name="uq_fw_approval_decision"),
    )
    tasks = sa.Table(
        "fw_tasks", metadata,
        id_column(),
        sa.Column("kind", sa.String(30), nullable=False, server_default="help"),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("assignee_id", sa.BigInteger),                   # a user …
        sa.Column("assignee_role", sa.String(100)),                # … or anyone with this role
        sa.Column("entity", sa.String(100)),
        sa.Column("record_id", sa.BigInteger),
        sa.Column("status", sa.String(20), nullable=False, server_default="open"),  # open | done
        sa.Column("created_by", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_by", sa.BigInteger),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Index("ix_fw_tasks_assignee", "assignee_id", "status"),
    )
    notifications = sa.Table(
        "fw_notifications", metadata,
        id_column(),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),          # approval_waiting, approval_approved …
        sa.Column("params", sa.Text, nullable=False, server_default="{}"),  # JSON: rendered in the reader's language
        sa.Column("entity", sa.String(100)),
        sa.Column("record_id", sa.BigInteger),
        sa.Column("approval_id", sa.BigInteger),
        sa.Column("task_id", sa.BigInteger),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        sa.Index("ix_fw_notifications_user", "user_id", "read_at"),
    )
    return {"stage_history": stage_history, "stage_checklist": checklist, "approvals": approvals,
            "approval_steps": approval_steps, "approval_decisions": approval_decisions, "tasks": tasks,
            "notifications": notifications}
