"""How SQLite stores ids and decimals: detecting tables of an older Formwork and rebuilding them.

An older Formwork left SQLite tables without AUTOINCREMENT (a deleted newest row's id went to the
next row, with the old row's shares, approvals and history) and decimal columns as NUMERIC (binary
floating point). `storage_changes` finds both for `formwork plan`; `rebuild` converts them in migrate's
transaction, copying every row with its id and never letting an id that was ever used come back.
"""
from __future__ import annotations

from contextlib import contextmanager
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from ..fields.exact import ExactDecimal

# What refers to a record of an entity by (entity, record_id): its id must stay unused after a delete.
RECORD_REFERENCES = ("fw_audit", "fw_shares", "fw_approvals", "fw_tasks", "fw_stage_history",
                     "fw_stage_checklist", "fw_notifications")
# fw_ rows that other fw_ rows refer to by id.
ID_REFERENCES = {"fw_approvals": (("fw_approval_steps", "approval_id"), ("fw_approval_decisions", "approval_id"),
                                  ("fw_notifications", "approval_id")),
                 "fw_tasks": (("fw_notifications", "task_id"),)}


def autoincrement(table: sa.Table) -> bool:
    return bool(table.dialect_options["sqlite"]["autoincrement"])


def table_kwargs(table: sa.Table | None) -> dict:
    """What a batch rebuild must give the new table so it keeps AUTOINCREMENT."""
    return {"sqlite_autoincrement": True} if table is not None and autoincrement(table) else {}


def integer_declared(declared: str) -> bool:
    return "INT" in (declared or "").upper()


def declared_types(conn: sa.Connection, table: str) -> dict[str, str]:
    return {r[1]: (r[2] or "").upper() for r in conn.exec_driver_sql(f'PRAGMA table_info("{table}")')}


def exact_read(conn: sa.Connection, table: str, column: str, type_) -> sa.ColumnClause:
    """A column to read stored values with: typed when it holds exact-decimal units (SQLite integers),
    untyped for a column still in an older storage or of another type (from_db reads those)."""
    if isinstance(type_, ExactDecimal) and (conn.dialect.name != "sqlite"
                                            or integer_declared(declared_types(conn, table).get(column, ""))):
        return sa.column(column, type_)
    return sa.column(column)


def storage_changes(conn: sa.Connection, schema, created: set[str]) -> list[tuple]:
    """(kind, table, column, count, detail, blocking) for every SQLite table that would reuse ids and
    every decimal column still stored as floating point; nothing on other databases."""
    if conn.dialect.name != "sqlite":
        return []
    master = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
    out = []
    for name, table in sorted(schema.metadata.tables.items()):
        if name in created or name not in master or not autoincrement(table):
            continue
        if "AUTOINCREMENT" not in (master[name] or "").upper():
            n = conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar() or 0
            out.append(("rebuild_table", name, None, n,
                        f"without AUTOINCREMENT SQLite reused the ids of deleted rows; rebuilt with it, "
                        f"all {n} row(s) kept with their ids", False))
    for name, table in sorted(schema.tables.items()):
        if name in created or name not in master:
            continue
        declared = declared_types(conn, name)
        for col in table.columns:
            if not isinstance(col.type, ExactDecimal) or col.name not in declared \
                    or integer_declared(declared[col.name]):
                continue
            c = sa.table(name, sa.column(col.name)).c[col.name]
            n = conn.execute(sa.select(sa.func.count()).where(c.is_not(None))).scalar() or 0
            bad = conn.execute(sa.select(sa.func.count()).where(
                sa.func.typeof(c).not_in(("integer", "real", "null")))).scalar() or 0
            detail = (f"stored as floating point ({declared[col.name]}) on SQLite; converted to exact integer "
                      f"units of {Decimal(1).scaleb(-col.type.places)} ({n} value(s))")
            if bad:
                detail += f"; {bad} value(s) are not numbers"
            out.append(("exact_decimal", name, col.name, n, detail, bool(bad)))
    return out


def sqlite_counter(conn: sa.Connection, table: str) -> int:
    """The highest id SQLite's AUTOINCREMENT has given out in `table` (0 before the first)."""
    if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first() is None:
        return 0
    row = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).first()
    return int(row[0]) if row and row[0] is not None else 0


def highest_id_used(conn: sa.Connection, schema, table: str) -> int:
    """The highest id `table` has ever had as far as the database can tell: its rows, its counter, and
    what refers to its rows (a deleted record's audit trail, shares, approvals …)."""
    existing = set(sa.inspect(conn).get_table_names())
    t = sa.table(table, sa.column("id"))
    best = max(conn.execute(sa.select(sa.func.max(t.c.id))).scalar() or 0, sqlite_counter(conn, table))
    entity = next((e.name for e in schema.model.all_entities() if e.table_name == table and not e.is_child), None)
    refs = [(r, "record_id", entity) for r in RECORD_REFERENCES] if entity else []
    refs += [(r, c, None) for r, c in ID_REFERENCES.get(table, ())]
    for ref, column, name in refs:
        if ref not in existing:
            continue
        rt = sa.table(ref, sa.column(column), sa.column("entity"))
        stmt = sa.select(sa.func.max(rt.c[column]))
        if name is not None:
            stmt = stmt.where(rt.c.entity == name)
        best = max(best, conn.execute(stmt).scalar() or 0)
    return int(best)


def set_counter(conn: sa.Connection, table: str, value: int) -> None:
    """Make SQLite's AUTOINCREMENT continue after `value` (never lowering it)."""
    if value <= sqlite_counter(conn, table):
        return
    if conn.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (value, table)).rowcount == 0:
        conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, value))


@contextmanager
def batch(op, conn: sa.Connection, schema, table: str, **kw):
    """alembic's batch_alter_table for a table of `schema`: on SQLite the copy it makes keeps
    AUTOINCREMENT and the table's id counter (a copy would otherwise start after its highest row)."""
    target = schema.metadata.tables.get(table)
    keep = highest_id_used(conn, schema, table) if conn.dialect.name == "sqlite" and "id" in \
        {c["name"] for c in sa.inspect(conn).get_columns(table)} else None
    with op.batch_alter_table(table, table_kwargs=table_kwargs(target), **kw) as b:
        yield b
    if keep is not None and target is not None and autoincrement(target):
        set_counter(conn, table, keep)


def _to_units(conn: sa.Connection, table: str, column: str, places: int) -> None:
    """Rewrite a floating-point decimal column's values as integer units in place (rounded half-up
    from their shortest repr, which is the value that was stored)."""
    t = sa.table(table, sa.column("id"), sa.column(column))
    quantum = Decimal(1).scaleb(-places)
    updates = []
    for rid, raw in conn.execute(sa.select(t.c.id, t.c[column]).where(t.c[column].is_not(None))):
        d = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
        updates.append({"rid": rid, "val": int(d.quantize(quantum, rounding=ROUND_HALF_UP).scaleb(places))})
    if updates:
        conn.execute(t.update().where(t.c.id == sa.bindparam("rid")).values({column: sa.bindparam("val")}), updates)


def rebuild(op, conn: sa.Connection, schema, tables: dict[str, list[str]]) -> None:
    """Rebuild each SQLite table with AUTOINCREMENT and its listed decimal columns as integer units."""
    for table, columns in sorted(tables.items()):
        target = schema.metadata.tables[table]
        for column in columns:
            _to_units(conn, table, column, target.c[column].type.places)
        with batch(op, conn, schema, table, recreate="always") as b:
            for column in columns:
                b.alter_column(column, type_=sa.BigInteger(), existing_nullable=True)


__all__ = ["storage_changes", "rebuild", "batch", "exact_read", "highest_id_used", "sqlite_counter"]
