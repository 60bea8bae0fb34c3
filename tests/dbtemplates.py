"""Migrate each distinct tenant config once per test process, then replay its SQL on empty databases.

`migrate()` compares the config with the database through alembic and reflection (0.1–0.3 s a time);
on a database known to be empty the outcome only depends on the config and the dialect, so the
statements of the first migration are recorded and replayed for every later test with that config.
Tests of migration itself call engine.schema.migrate.migrate directly.
"""
from __future__ import annotations

import sqlalchemy as sa

from engine.instance import ensure_instance_id
from engine.schema.migrate import migrate

_SKIPPED = ("select", "pragma", "begin", "commit", "rollback", "savepoint", "release", "show", "with")
# One recording per (dialect, config fingerprint) in this test process; tests never share a database.
_RECORDINGS: dict[tuple[str, str], list[tuple[str, object]]] = {}


def migrate_empty(tenant) -> None:
    """Bring the empty database of `tenant` to its config, replaying a recording when there is one."""
    key = (tenant.db.dialect.name, tenant.model.fingerprint)
    recording = _RECORDINGS.get(key)
    if recording is None:
        _RECORDINGS[key] = _recorded_migration(tenant)
        return
    instance = tenant.schema.system.get("instance")
    with tenant.write() as conn:
        for statement, parameters in recording:
            conn.exec_driver_sql(statement, parameters) if parameters else conn.exec_driver_sql(statement)
        if instance is not None:
            # Every database has its own random tenant id (sessions are bound to it): never a copy.
            conn.execute(instance.delete())
            ensure_instance_id(conn, instance)
    tenant.__dict__.pop("_instance_id", None)


def _recorded_migration(tenant) -> list[tuple[str, object]]:
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().lower().startswith(_SKIPPED):
            statements.append((statement, parameters))

    sa.event.listen(tenant.db, "before_cursor_execute", record)
    try:
        migrate(tenant)
    finally:
        sa.event.remove(tenant.db, "before_cursor_execute", record)
    return _joined(statements, tenant.db.dialect.name)


def _joined(statements: list[tuple[str, object]], dialect: str) -> list[tuple[str, object]]:
    """PostgreSQL runs several parameterless statements in one round trip; SQLite's driver does not."""
    if dialect != "postgresql":
        return statements
    joined: list[tuple[str, object]] = []
    for statement, parameters in statements:
        if not parameters and joined and not joined[-1][1]:
            joined[-1] = (joined[-1][0] + ";\n" + statement, None)
        else:
            joined.append((statement, parameters))
    return joined
