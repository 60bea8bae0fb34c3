"""Apply a plan in one transaction, archive instead of dropping, and purge archives only on request."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import FormworkError, SchemaMismatch
from ..instance import ensure_instance_id
from .plan import Plan, Planner, alembic_ops, applied_fingerprint, convert_column, field_definition, \
    field_from_definition, read_state
from .storage import batch as batch_of, exact_read, rebuild
from .system import SYSTEM_PREFIX
from .tables import TenantSchema

if TYPE_CHECKING:
    from alembic.operations import Operations


class MigrationRefused(FormworkError):
    """A data-dependent change would fail; nothing was changed."""

    def __init__(self, plan: Plan):
        self.plan = plan
        reasons = "\n".join("  " + c.describe() for c in plan.blocking)
        super().__init__(f"migrate refused, nothing changed; {len(plan.blocking)} change(s) would fail:\n{reasons}")


def _operations(conn) -> Operations:
    """alembic's Operations on the connection (alembic is imported when a migration runs)."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    return Operations(MigrationContext.configure(conn))


def migrate(tenant, applied_by: str | None = None) -> Plan:
    """Bring the database to the config; raise MigrationRefused (changing nothing) if data forbids it."""
    planner = Planner(tenant)
    plan = planner.plan()
    if plan.blocking:
        raise MigrationRefused(plan)
    schema = TenantSchema.of(tenant)
    with tenant.write() as conn:
        state = read_state(conn, schema)
        op = _operations(conn)
        archived_now: dict[tuple[str, str], dict] = {}
        rebuilt: dict[str, list[str]] = {}
        for change in plan.changes:
            if change.kind in ("rebuild_table", "exact_decimal"):
                rebuilt.setdefault(change.table, []).extend([change.column] if change.column else [])
        rebuild(op, conn, schema, rebuilt)   # first: the renames and retypes below copy these tables
        for change in plan.changes:
            if change.kind == "rename_column":
                _rename_column(op, conn, schema, change.table, change.data["old"], change.column)
                state.pop((change.table, change.data["old"]), None)
            elif change.kind == "retype_column":
                old_def = change.data["old"]
                kept = _retype_column(tenant, op, conn, schema, change.table, change.column, old_def)
                archived_now[(change.table, kept)] = old_def
        for alembic_op in planner.alembic_diff(conn, schema):
            if _is_applicable(alembic_op, schema):
                op.invoke(alembic_op)
        leftover = [o for o in planner.alembic_diff(conn, schema) if _is_applicable(o, schema)]
        if leftover:
            raise FormworkError(f"migrate could not reach the config's schema: {leftover!r}")
        for change in plan.changes:
            if change.kind == "archive_column":
                archived_now[(change.table, change.column)] = \
                    (state.get((change.table, change.column)) or {}).get("definition") or {"type": "unknown"}
            elif change.kind == "archive_table":
                for (t, c), st in list(state.items()):
                    if t == change.table:
                        archived_now[(t, c)] = st["definition"]
        _write_state(conn, schema, tenant, state, archived_now)
        ensure_instance_id(conn, schema.system["instance"])
        tenant.__dict__["_instance_id"] = None  # read afresh after this transaction
        from ..workflows.pipelines import start_history

        start_history(tenant, conn, schema)
        versions = schema.system["config_versions"]
        conn.execute(versions.insert().values(
            fingerprint=schema.fingerprint(), config_fingerprint=tenant.model.fingerprint,
            applied_at=tenant.now(), applied_by=applied_by, files=json.dumps(tenant.model.files),
            plan=json.dumps([c.describe() for c in plan.changes], ensure_ascii=False)))
    return plan


def _is_applicable(op, schema: TenantSchema) -> bool:
    """alembic ops migrate runs: never drops of data (columns or tables are archived instead)."""
    if isinstance(op, (alembic_ops.DropColumnOp, alembic_ops.DropTableOp)):
        return False
    if isinstance(op, alembic_ops.DropIndexOp):
        return op.table_name in schema.tables
    return isinstance(op, (alembic_ops.CreateTableOp, alembic_ops.AddColumnOp, alembic_ops.CreateIndexOp,
                           alembic_ops.DropIndexOp))


def _drop_indexes_on(op: Operations, conn, table: str, column: str) -> None:
    for ix in sa.inspect(conn).get_indexes(table):
        if column in ix["column_names"]:
            op.drop_index(ix["name"], table_name=table)


def _rename_column(op: Operations, conn, schema: TenantSchema, table: str, old: str, new: str) -> None:
    _drop_indexes_on(op, conn, table, old)
    with batch_of(op, conn, schema, table) as batch:
        batch.alter_column(old, new_column_name=new)


def _retype_column(tenant, op: Operations, conn, schema: TenantSchema, table: str, column: str, old_def: dict) -> str:
    """Keep the old column under an archived name and fill a new one with converted values."""
    entity = next(e for e in tenant.model.all_entities() if e.table_name == table)
    new_field = entity.fields[column]
    existing = {c["name"] for c in sa.inspect(conn).get_columns(table)}
    base = f"{column}__was_{old_def['type']}"[:55]
    kept, n = base, 1
    while kept in existing:
        n += 1
        kept = f"{base}_{n}"
    _drop_indexes_on(op, conn, table, column)
    with batch_of(op, conn, schema, table) as batch:
        batch.alter_column(column, new_column_name=kept)
    new_type = tenant.field_types.for_field(new_field).column_type(new_field)
    op.add_column(table, sa.Column(column, new_type, nullable=True))
    old_field = field_from_definition(kept, old_def)
    failures, converted = convert_column(tenant.field_types, tenant.field_context(), conn, table, old_field,
                                         new_field, collect=True)
    if failures:  # the plan said it converts; data changed since — refuse rather than lose values
        raise FormworkError(f"{table}.{column}: {len(failures)} value(s) no longer convert; run `formwork plan`")
    t = sa.table(table, sa.column("id"), sa.column(column))
    if converted:
        conn.execute(t.update().where(t.c.id == sa.bindparam("rid")).values({column: sa.bindparam("val")}),
                     [{"rid": rid, "val": val} for rid, val in converted])
    return kept


def _write_state(conn, schema: TenantSchema, tenant, old_state: dict, archived_now: dict) -> None:
    t = schema.system["schema_state"]
    now = tenant.now()
    rows = {}
    for (table, col), st in old_state.items():
        if st["status"] == "archived":
            rows[(table, col)] = (st["field_type"], "archived", st["definition"])
    for (table, col), definition in archived_now.items():
        rows[(table, col)] = (definition.get("type", "unknown"), "archived", definition)
    for entity in tenant.model.all_entities():
        for f in entity.fields.values():
            if tenant.field_types.for_field(f).stored:
                rows[(entity.table_name, f.column)] = (f.type, "active", field_definition(f, tenant.field_types))
    conn.execute(t.delete())
    conn.execute(t.insert(), [
        {"table_name": table, "column_name": col, "field_type": ftype, "status": status,
         "settings": json.dumps(definition, ensure_ascii=False, default=str), "changed_at": now}
        for (table, col), (ftype, status, definition) in sorted(rows.items())])


def check_schema(tenant) -> None:
    """Raise SchemaMismatch unless the database was migrated to exactly this config's schema and
    has every fw_ system table (with its columns) this version of Formwork defines."""
    schema = TenantSchema.of(tenant)
    with tenant.db.connect() as conn:
        applied = applied_fingerprint(conn, schema)
        missing = missing_system_parts(conn, schema) if applied is not None else []
    if applied is None:
        raise SchemaMismatch("the database has not been migrated for this config: run `formwork plan` "
                             "then `formwork migrate`")
    if missing:
        raise SchemaMismatch(f"Formwork's system tables are missing or out of date ({', '.join(missing)}): "
                             "run `formwork plan` then `formwork migrate`")
    if applied != schema.fingerprint():
        raise SchemaMismatch("the database schema does not match the config: run `formwork plan` "
                             "then `formwork migrate`")


def missing_system_parts(conn, schema: TenantSchema) -> list[str]:
    """The fw_ tables, and columns of existing ones, that the database lacks ("fw_x", "fw_y.col")."""
    insp = sa.inspect(conn)
    existing = set(insp.get_table_names())
    wanted = schema.system_tables()
    missing = [t.name for t in wanted if t.name not in existing]
    present = [t for t in wanted if t.name in existing]
    if present:
        reflected = {name: {c["name"] for c in cols} for (_schema, name), cols in
                     insp.get_multi_columns(filter_names=[t.name for t in present]).items()}
        for t in present:
            missing.extend(f"{t.name}.{c.name}" for c in t.columns if c.name not in reflected.get(t.name, ()))
    return missing


def purge_archived(tenant, backup_dir: str | Path) -> tuple[Path, list[str]]:
    """Write every archived column and table to a JSON backup file, then drop them."""
    schema = TenantSchema.of(tenant)
    backup_dir = Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = tenant.now().strftime("%Y%m%dT%H%M%SZ")
    path = backup_dir / f"{tenant.name}-archived-{stamp}.json"
    dropped: list[str] = []
    with tenant.write() as conn:
        state = read_state(conn, schema)
        archived = [(t, c) for (t, c), st in state.items() if st["status"] == "archived"]
        insp = sa.inspect(conn)
        tables_gone = {t for t, _ in archived if t not in schema.tables and insp.has_table(t)}
        backup: dict = {"tenant": tenant.name, "written_at": stamp, "columns": {}, "tables": {}}
        for table in sorted(tables_gone):
            reflected = sa.Table(table, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(reflected)).mappings().all()
            backup["tables"][table] = [dict(r) for r in rows]
        for table, col in archived:
            if table in tables_gone or not insp.has_table(table):
                continue
            if col not in {c["name"] for c in insp.get_columns(table)}:
                continue
            kept_type = _archived_type(tenant, col, state[(table, col)]["definition"])
            t = sa.table(table, sa.column("id"), exact_read(conn, table, col, kept_type))
            backup["columns"].setdefault(table, {})[col] = {
                str(rid): v for rid, v in conn.execute(sa.select(t.c.id, t.c[col]).where(t.c[col].is_not(None)))}
        path.write_text(json.dumps(backup, ensure_ascii=False, default=str, indent=1), encoding="utf-8")
        op = _operations(conn)
        for table in sorted(tables_gone):
            op.drop_table(table)
            dropped.append(table)
        by_table: dict[str, list[str]] = {}
        for table, col in archived:
            if table not in tables_gone and insp.has_table(table) and \
                    col in {c["name"] for c in insp.get_columns(table)}:
                by_table.setdefault(table, []).append(col)
        for table, cols in by_table.items():
            for col in cols:
                _drop_indexes_on(op, conn, table, col)
            with batch_of(op, conn, schema, table) as batch:
                for col in cols:
                    batch.drop_column(col)
            dropped.extend(f"{table}.{c}" for c in cols)
        st = schema.system["schema_state"]
        for table, col in archived:
            conn.execute(st.delete().where(st.c.table_name == table, st.c.column_name == col))
    return path, dropped


def _archived_type(tenant, column: str, definition: dict):
    """The column type an archived column was written with, so its backup holds values, not storage
    units (a decimal on SQLite is stored as integer units); None when it cannot be rebuilt."""
    try:
        field = field_from_definition(column, definition)
        return tenant.field_types.for_field(field).column_type(field)
    except Exception:  # noqa: BLE001 - an unknown or removed field type: back up the stored value
        return None


__all__ = ["migrate", "check_schema", "missing_system_parts", "purge_archived", "MigrationRefused", "SYSTEM_PREFIX"]
