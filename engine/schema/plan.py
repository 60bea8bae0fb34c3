"""The data-aware plan: what `migrate` would do to the database, as data, with live counts."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field as dc_field

import importlib

import sqlalchemy as sa

from ..errors import FieldValueError
from ..fields.regex import fullmatches
from ..metadata.model import Field, Label, Option
from .storage import exact_read, storage_changes
from .system import SYSTEM_PREFIX
from .tables import TenantSchema, column_settings

ADDITIVE, ARCHIVING, RENAMING, DATA = "additive", "archiving", "renaming", "data-dependent"


class LazyModule:
    """A module imported on first attribute access: alembic (~0.1 s to import) is only needed by
    plan and migrate, not by every command that checks the schema (import, export, serve …)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        module = importlib.import_module(self._name)
        self.__dict__.update(module.__dict__)
        return getattr(module, attr)


alembic_ops = LazyModule("alembic.operations.ops")
SAMPLE_IDS = 5


@dataclass
class Change:
    """One change migrate would make; `blocking` changes make migrate refuse."""

    kind: str          # create_table add_column rename_column retype_column archive_column archive_table
    # restore_column add_index drop_index check (a data check attached to an unchanged column)
    # rebuild_table exact_decimal (SQLite storage of an older Formwork: engine/schema/storage.py)
    # record_version (nothing to change but the recorded schema version)
    category: str      # additive | archiving | renaming | data-dependent
    table: str
    column: str | None = None
    detail: str = ""
    blocking: bool = False
    count: int | None = None
    sample_ids: list = dc_field(default_factory=list)
    data: dict = dc_field(default_factory=dict)

    def describe(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        text = f"[{self.category}] {self.kind.replace('_', ' ')} {where}"
        if self.detail:
            text += f": {self.detail}"
        if self.sample_ids:
            text += f" (e.g. ids {', '.join(str(i) for i in self.sample_ids)})"
        if self.blocking:
            text += "  ← blocks migrate"
        return text


@dataclass
class Plan:
    """Every change between the live database and the config, with what they mean for stored data."""

    changes: list[Change]
    schema_fingerprint: str
    config_fingerprint: str
    applied_fingerprint: str | None = None

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def blocking(self) -> list[Change]:
        return [c for c in self.changes if c.blocking]

    def to_dict(self) -> dict:
        return {"changes": [asdict(c) for c in self.changes], "schema_fingerprint": self.schema_fingerprint,
                "blocking": len(self.blocking)}

    def render(self) -> str:
        if self.empty:
            return "no changes"
        lines = [c.describe() for c in self.changes]
        counts = Counter(c.category for c in self.changes)
        summary = ", ".join(f"{n} {cat}" for cat, n in sorted(counts.items()))
        lines.append(f"{len(self.changes)} change(s): {summary}"
                     + (f"; {len(self.blocking)} would fail — migrate will refuse" if self.blocking else ""))
        return "\n".join(lines)


# --- reading what is applied -------------------------------------------------------------------

def read_state(conn: sa.Connection, schema: TenantSchema) -> dict[tuple[str, str], dict]:
    """fw_schema_state as {(table, column): {"field_type", "status", "definition"}} (empty if new)."""
    if not sa.inspect(conn).has_table("fw_schema_state"):
        return {}
    t = schema.system["schema_state"]
    out = {}
    for row in conn.execute(sa.select(t)).mappings():
        out[(row["table_name"], row["column_name"])] = {
            "field_type": row["field_type"], "status": row["status"],
            "definition": json.loads(row["settings"] or "{}")}
    return out


def applied_fingerprint(conn: sa.Connection, schema: TenantSchema) -> str | None:
    """The schema fingerprint recorded by the last migrate, or None for an unmigrated database."""
    if not sa.inspect(conn).has_table("fw_config_versions"):
        return None
    t = schema.system["config_versions"]
    row = conn.execute(sa.select(t.c.fingerprint).order_by(t.c.id.desc()).limit(1)).first()
    return row[0] if row else None


def field_definition(field: Field, field_types) -> dict:
    """What the plan compares between the applied and the new config for one column."""
    return {**column_settings(field, field_types), "required": field.required, "unique": field.unique,
            "pattern": field.pattern, "min": _jsonable(field.min), "max": _jsonable(field.max),
            "options": field.option_values() if field.options is not None else None, "to": field.to,
            "format": field.format, "label": field.label.get()}


def field_from_definition(name: str, definition: dict) -> Field:
    """A Field rebuilt from a stored definition, enough to read and convert its stored values."""
    options = definition.get("options")
    settings = {"scale": definition["scale"]} if "scale" in definition else {}
    return Field(name=name, type=definition["type"], label=Label.of(definition.get("label") or name),
                 max_length=definition.get("max_length"), returns=definition.get("returns"),
                 options=[Option(v, Label.of(v)) for v in options] if options is not None else None,
                 to=definition.get("to"), format=definition.get("format"), settings=settings)


def _jsonable(v):
    return None if v is None else (v if isinstance(v, (int, float, str, bool)) else str(v))


# --- computing the plan ------------------------------------------------------------------------

class Planner:
    """Compares the live database (via alembic) and the applied state with the tenant's config."""

    def __init__(self, tenant):
        self.tenant = tenant
        self.model = tenant.model
        self.types = tenant.field_types
        self.ctx = tenant.field_context()

    def plan(self) -> Plan:
        schema = TenantSchema.of(self.tenant)
        with self.tenant.db.connect() as conn:
            state = read_state(conn, schema)
            changes = self._changes(conn, schema, state)
            applied = applied_fingerprint(conn, schema)
        if not changes and applied is not None and applied != schema.fingerprint():
            # The tables already match (e.g. recorded by a Formwork that did not count its system
            # tables in the fingerprint): migrate only records the current version.
            changes.append(Change("record_version", ADDITIVE, "fw_config_versions",
                                  detail="the tables already match; the recorded schema version is older "
                                         "and migrate records the current one"))
        return Plan(changes, schema.fingerprint(), self.model.fingerprint, applied)

    def alembic_diff(self, conn: sa.Connection, schema: TenantSchema) -> list:
        """alembic's operations to turn the database into the schema, flattened per table."""
        from alembic.autogenerate import produce_migrations
        from alembic.migration import MigrationContext

        mc = MigrationContext.configure(conn, opts={"compare_type": False})
        script = produce_migrations(mc, schema.metadata)
        flat = []
        for op in script.upgrade_ops.ops:
            if isinstance(op, alembic_ops.ModifyTableOps):
                flat.extend(op.ops)
            else:
                flat.append(op)
        return flat

    def _changes(self, conn, schema: TenantSchema, state) -> list[Change]:
        diff = self.alembic_diff(conn, schema)
        entities = {e.table_name: e for e in self.model.all_entities()}
        changes: list[Change] = []
        added = {(op.table_name, op.column.name): op for op in diff if isinstance(op, alembic_ops.AddColumnOp)}
        removed = {(op.table_name, op.column_name) for op in diff if isinstance(op, alembic_ops.DropColumnOp)}
        rename_sources: set[tuple[str, str]] = set()

        system_new = [op.table_name for op in diff
                      if isinstance(op, alembic_ops.CreateTableOp) and op.table_name.startswith(SYSTEM_PREFIX)]
        if system_new:
            changes.append(Change("create_table", ADDITIVE, "formwork system tables",
                                  detail=", ".join(sorted(system_new))))
        changes.extend(self._system_table_changes(conn, schema, diff, set(system_new)))
        created = {op.table_name for op in diff if isinstance(op, alembic_ops.CreateTableOp)}
        changes.extend(Change(kind, DATA, table, column, detail=detail, count=n, blocking=blocking)
                       for kind, table, column, n, detail, blocking in storage_changes(conn, schema, created))
        for op in diff:
            if isinstance(op, alembic_ops.CreateTableOp) and op.table_name in entities:
                ent = entities[op.table_name]
                cols = [f.name for f in ent.fields.values() if self.types.for_field(f).stored]
                changes.append(Change("create_table", ADDITIVE, op.table_name,
                                      detail=f"new entity with {len(cols)} field(s): {', '.join(cols)}"))

        for table, ent in entities.items():
            for f in ent.fields.values():
                if not self.types.for_field(f).stored:
                    continue
                key = (table, f.column)
                if key in added:
                    old = (table, f.renamed_from) if f.renamed_from else None
                    if old and old in removed and state.get(old, {}).get("status") != "archived":
                        rename_sources.add(old)
                        changes.append(Change("rename_column", RENAMING, table, f.column,
                                              detail=f"renamed from {f.renamed_from}; values kept",
                                              data={"old": f.renamed_from}))
                        changes.extend(self._constraint_checks(conn, schema, ent, f, state.get(old), f.renamed_from))
                    else:
                        changes.append(Change("add_column", ADDITIVE, table, f.column,
                                              detail=f"new {f.type} field"))
                        if f.required and self._row_count(conn, schema, table):
                            n = self._row_count(conn, schema, table)
                            changes.append(Change("check", DATA, table, f.column, count=n,
                                                  detail=f"required, but {n} existing record(s) will have it empty "
                                                         "(they must fill it on their next edit)"))
                    continue
                if table not in {op.table_name for op in diff if isinstance(op, alembic_ops.CreateTableOp)}:
                    st = state.get(key)
                    if st and st["status"] == "archived":
                        changes.append(Change("restore_column", ADDITIVE, table, f.column,
                                              detail="archived column comes back with its data"))
                    changes.extend(self._column_changes(conn, schema, ent, f, st))

        for table, column in sorted(removed):
            if (table, column) in rename_sources:
                continue
            st = state.get((table, column))
            if table not in entities or (st and st["status"] == "archived") or st is None and table.startswith(SYSTEM_PREFIX):
                continue
            n = self._non_empty(conn, table, column)
            changes.append(Change("archive_column", ARCHIVING, table, column, count=n,
                                  detail=f"field removed from the config; column kept and hidden, "
                                         f"{n} stored value(s) intact"))

        archived_tables = {t for (t, _c), st in state.items() if st["status"] != "archived"} - set(entities)
        insp = sa.inspect(conn)
        for table in sorted(archived_tables):
            if insp.has_table(table):
                n = conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar()
                changes.append(Change("archive_table", ARCHIVING, table, count=n,
                                      detail=f"entity removed from the config; table kept, {n} record(s) intact"))

        changes.extend(self._index_changes(conn, diff, entities, rename_sources, state))
        return changes

    def _system_table_changes(self, conn, schema, diff, created: set[str]) -> list[Change]:
        """New columns and indexes of existing fw_ tables (a newer Formwork defines them)."""
        out = []
        for op in diff:
            if isinstance(op, alembic_ops.AddColumnOp) and op.table_name.startswith(SYSTEM_PREFIX):
                col = op.column
                rows = self._row_count(conn, schema, op.table_name)
                blocking = rows > 0 and not col.nullable and col.server_default is None
                out.append(Change("add_column", ADDITIVE, op.table_name, col.name, blocking=blocking,
                                  count=rows if blocking else None,
                                  detail="new column of a Formwork system table" + (
                                      f"; it has no default and {rows} row(s) exist" if blocking else "")))
            elif isinstance(op, alembic_ops.CreateIndexOp) and op.table_name.startswith(SYSTEM_PREFIX) \
                    and op.table_name not in created:
                cols = [getattr(c, "name", str(c)) for c in op.columns]
                out.append(Change("add_index", ADDITIVE, op.table_name, ", ".join(cols),
                                  detail=f"{'unique ' if op.unique else ''}index {op.index_name} "
                                         "of a Formwork system table"))
        return out

    # -- per-column checks ---------------------------------------------------------------------

    def _column_changes(self, conn, schema, ent, f: Field, st: dict | None) -> list[Change]:
        if st is None:
            return []
        old_def = st["definition"]
        new_def = field_definition(f, self.types)
        out: list[Change] = []
        if column_settings(field_from_definition(f.name, old_def), self.types) != column_settings(f, self.types):
            out.append(self._retype(conn, schema, ent, f, old_def))
            return out
        return self._constraint_checks(conn, schema, ent, f, st, f.column, old_def, new_def)

    def _constraint_checks(self, conn, schema, ent, f: Field, st, column: str, old_def=None,
                           new_def=None) -> list[Change]:
        old_def = old_def or (st or {}).get("definition") or {}
        new_def = new_def or field_definition(f, self.types)
        table = ent.table_name
        out = []
        if new_def["required"] and not old_def.get("required"):
            t = sa.table(table, sa.column("id"), sa.column(column))
            ids = self._ids_where(conn, t, t.c[column].is_(None))
            if ids[0]:
                out.append(Change("check", DATA, table, f.column, count=ids[0], sample_ids=ids[1],
                                  detail=f"now required; {ids[0]} record(s) have it empty "
                                         "(they must fill it on their next edit)"))
        if new_def["unique"] and not old_def.get("unique"):
            n, sample = self._duplicates(conn, table, column)
            out.append(Change("check", DATA, table, f.column, count=n, sample_ids=sample, blocking=n > 0,
                              detail=(f"now unique; {n} record(s) share a value with another" if n
                                      else "now unique; existing values are all distinct")))
        if f.pattern and f.pattern != old_def.get("pattern"):
            bad = [rid for rid, v in self._values(conn, table, column)
                   if isinstance(v, str) and not fullmatches(f.pattern, v)]
            if bad:
                out.append(Change("check", DATA, table, f.column, count=len(bad), sample_ids=bad[:SAMPLE_IDS],
                                  detail=f"new pattern; {len(bad)} stored value(s) do not match "
                                         "(kept; flagged on their next edit)"))
        if f.options is not None and old_def.get("options") is not None:
            gone = set(old_def["options"]) - set(f.option_values())
            if gone:
                ftype = self.types.for_field(f)
                holders = []
                for rid, v in self._values(conn, table, column):
                    vals = ftype.from_db(f, v)
                    vals = vals if isinstance(vals, list) else [vals]
                    if gone.intersection(vals):
                        holders.append(rid)
                out.append(Change("check", DATA, table, f.column, count=len(holders),
                                  sample_ids=holders[:SAMPLE_IDS],
                                  detail=f"option(s) removed: {', '.join(sorted(gone))}; "
                                         f"{len(holders)} record(s) still hold them (kept as stored)"))
        for bound, cmp in (("min", lambda v, b: v < b), ("max", lambda v, b: v > b)):
            b = getattr(f, bound)
            if b is not None and str(b) != str(old_def.get(bound)) and f.type in ("integer", "decimal", "money", "percent"):
                ftype = self.types.for_field(f)
                bad = [rid for rid, v in self._values(conn, table, column)
                       if cmp(ftype.from_db(f, v), ftype.coerce(f, b, self.ctx))]
                if bad:
                    out.append(Change("check", DATA, table, f.column, count=len(bad), sample_ids=bad[:SAMPLE_IDS],
                                      detail=f"new {bound} {b}; {len(bad)} stored value(s) are outside it"))
        return out

    def _retype(self, conn, schema, ent, f: Field, old_def: dict) -> Change:
        old_field = field_from_definition(f.name, old_def)
        failures, total = convert_column(self.types, self.ctx, conn, ent.table_name, old_field, f)
        bad = [rid for rid, _ in failures]
        desc = f"{old_def['type']} → {f.type}" if old_def["type"] != f.type else \
            f"{f.type} column settings change ({_settings_diff(old_def, column_settings(f, self.types))})"
        if bad:
            reasons = "; ".join(f"id {rid}: {msg}" for rid, msg in failures[:SAMPLE_IDS])
            detail = f"{desc}; {len(bad)} of {total} value(s) will not convert ({reasons})"
        else:
            detail = f"{desc}; all {total} stored value(s) convert; the old column is kept archived"
        return Change("retype_column", DATA, ent.table_name, f.column, detail=detail, blocking=bool(bad),
                      count=len(bad), sample_ids=bad[:SAMPLE_IDS], data={"old": old_def})

    def _index_changes(self, conn, diff, entities, rename_sources, state) -> list[Change]:
        out = []
        for op in diff:
            if isinstance(op, alembic_ops.CreateIndexOp) and op.table_name in entities:
                cols = [getattr(c, "name", str(c)) for c in op.columns]
                if any((op.table_name, c) in rename_sources for c in cols):
                    continue
                if op.unique:
                    # Only report the index here; the unique data check is part of the column change.
                    pass
                out.append(Change("add_index", ADDITIVE, op.table_name, ", ".join(cols),
                                  detail=f"{'unique ' if op.unique else ''}index {op.index_name}"))
            elif isinstance(op, alembic_ops.DropIndexOp) and op.table_name in entities:
                out.append(Change("drop_index", ADDITIVE, op.table_name, detail=f"index {op.index_name}"))
        return out

    # -- queries -------------------------------------------------------------------------------

    def _row_count(self, conn, schema, table) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar() or 0

    def _non_empty(self, conn, table, column) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(sa.table(table, sa.column(column)))
                            .where(sa.column(column).is_not(None))).scalar() or 0

    def _ids_where(self, conn, t, cond) -> tuple[int, list]:
        n = conn.execute(sa.select(sa.func.count()).select_from(t).where(cond)).scalar() or 0
        ids = [r[0] for r in conn.execute(sa.select(t.c.id).where(cond).order_by(t.c.id).limit(SAMPLE_IDS))]
        return n, ids

    def _duplicates(self, conn, table, column) -> tuple[int, list]:
        t = sa.table(table, sa.column("id"), sa.column(column))
        inner = sa.table(table, sa.column(column)).alias("dup")
        dup_values = (sa.select(inner.c[column]).where(inner.c[column].is_not(None)).group_by(inner.c[column])
                      .having(sa.func.count() > 1))
        return self._ids_where(conn, t, t.c[column].in_(dup_values))

    def _values(self, conn, table, column):
        entity = next((e for e in self.model.all_entities() if e.table_name == table), None)
        f = entity.fields.get(column) if entity is not None else None
        type_ = self.types.for_field(f).column_type(f) if f is not None and self.types.for_field(f).stored else None
        t = sa.table(table, sa.column("id"), exact_read(conn, table, column, type_))
        yield from conn.execute(sa.select(t.c.id, t.c[column]).where(t.c[column].is_not(None)).order_by(t.c.id))


def convert_column(types, ctx, conn, table: str, old_field: Field, new_field: Field, collect: bool = False):
    """Try converting every stored value of a column; returns (failures [(id, message)], total).

    With `collect`, returns (failures, converted [(id, new db value)]) instead.
    """
    old_t, new_t = types.for_field(old_field), types.for_field(new_field)
    failures, converted, total = [], [], 0
    col = old_field.column if not new_field.renamed_from else old_field.column
    t = sa.table(table, sa.column("id"), exact_read(conn, table, col, old_t.column_type(old_field)))
    for rid, raw in conn.execute(sa.select(t.c.id, t.c[col]).where(t.c[col].is_not(None)).order_by(t.c.id)):
        total += 1
        try:
            value = new_t.coerce(new_field, old_t.to_json(old_field, old_t.from_db(old_field, raw)), ctx)
            if value is not None:
                new_t.validate(new_field, value, ctx)
            converted.append((rid, new_t.to_db(new_field, value)))
        except FieldValueError as exc:
            from ..i18n import message
            failures.append((rid, message(exc.key, "en", **exc.params) + f" ({raw!r})"))
    if collect:
        return failures, converted
    return failures, total


def _settings_diff(old: dict, new: dict) -> str:
    keys = sorted(set(old) | set(new))
    return ", ".join(f"{k}: {old.get(k)} → {new.get(k)}" for k in keys
                     if k in new and old.get(k) != new.get(k))
