"""SQLAlchemy Core tables built from a tenant model, on a MetaData owned by that tenant."""
from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa

from ..fields.base import FieldType
from ..metadata.model import Entity, Field, TenantModel
from .system import SYSTEM_PREFIX, define_system_tables, id_column, never_reused

NAMING = {"ix": "ix_%(table_name)s_%(column_0_name)s"}


def index_name(table: str, column: str, unique: bool) -> str:
    # Postgres truncates identifiers at 63 bytes; hash long names so they stay unique and stable.
    name = f"{'uq' if unique else 'ix'}_{table}_{column}"
    if len(name) > 60:
        name = name[:49] + "_" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def system_columns(entity: Entity) -> list[sa.Column]:
    """The columns every record has (id, audit stamps, owner, department, version)."""
    if entity.is_child:
        return [id_column(),
                sa.Column("parent_id", sa.BigInteger, nullable=False, index=False),
                sa.Column("position", sa.Integer, nullable=False, server_default="0")]
    return [
        id_column(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.BigInteger),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.BigInteger),
        sa.Column("owner", sa.BigInteger),
        sa.Column("department", sa.String(100)),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    ]


# How ids and decimals are stored (engine/schema/storage.py): a database of a Formwork that stored them
# otherwise no longer matches, so it must run `formwork migrate` (which converts it) before use.
STORAGE = "ids never reused; decimals exact"

def column_settings(field: Field, field_types) -> dict:
    """What shapes the field's column (its type's ``column_settings``): a change to any of it is a
    retype. A type the registry no longer knows (a removed plugin's) is described by name and scale."""
    if field.type in field_types:
        return field_types[field.type].column_settings(field)
    return FieldType.column_settings(_Unknown(field.type), field)


class _Unknown(FieldType):
    def __init__(self, name: str):
        self.name = name


class TenantSchema:
    """The tables of one tenant: system fw_ tables plus one table per entity and subtable."""

    def __init__(self, model: TenantModel, field_types, archived: dict[str, list[sa.Column]] | None = None,
                 hook=None):
        self.model = model
        self.field_types = field_types
        self.metadata = sa.MetaData(naming_convention=NAMING)
        self.system = define_system_tables(self.metadata)
        if hook is not None:  # plugins' own fw_ tables (formwork_schema_tables)
            for tables in hook.formwork_schema_tables(metadata=self.metadata, model=model):
                self.system.update({key: never_reused(t) for key, t in (tables or {}).items()})
        self.tables: dict[str, sa.Table] = {}
        for entity in model.all_entities():
            self.tables[entity.table_name] = self._build(entity, (archived or {}).get(entity.table_name, []))

    def _build(self, entity: Entity, archived: list[sa.Column]) -> sa.Table:
        columns = system_columns(entity)
        indexes = []
        t = entity.table_name
        if entity.is_child:
            indexes.append(sa.Index(index_name(t, "parent_id", False), "parent_id"))
        else:
            indexes.append(sa.Index(index_name(t, "owner", False), "owner"))
        for field in entity.fields.values():
            ftype = self.field_types.for_field(field)
            if not ftype.stored:
                continue
            columns.append(sa.Column(field.column, ftype.column_type(field), nullable=True))
            if field.unique or ftype.unique:
                indexes.append(sa.Index(index_name(t, field.column, True), field.column, unique=True))
            elif field.indexed or ftype.indexed:
                indexes.append(sa.Index(index_name(t, field.column, False), field.column))
        columns.extend(c.copy() if hasattr(c, "copy") else c for c in archived)
        return sa.Table(t, self.metadata, *columns, *indexes, sqlite_autoincrement=True)

    @classmethod
    def of(cls, tenant, archived: dict[str, list[sa.Column]] | None = None) -> "TenantSchema":
        """The tables of `tenant`'s model, with those its plugins define."""
        return cls(tenant.model, tenant.field_types, archived, hook=tenant.pm.hook)

    def table(self, entity: Entity | str) -> sa.Table:
        name = entity if isinstance(entity, str) else entity.table_name
        return self.tables[name]

    def system_tables(self) -> list[sa.Table]:
        """Formwork's own fw_ tables: every table `define_system_tables` put on this MetaData."""
        return [t for name, t in sorted(self.metadata.tables.items()) if name.startswith(SYSTEM_PREFIX)]

    def fingerprint(self) -> str:
        """A hash of what the database must look like for this model (not labels or rules), and for
        this version of Formwork: its fw_ system tables and its storage of ids and decimals count too,
        so a database migrated before a system table (or a column or index of one) existed, or stored
        by an older Formwork, no longer matches and asks for migrate."""
        shape = []
        for entity in self.model.all_entities():
            shape.append([entity.table_name, sorted(
                [f.name, column_settings(f, self.field_types), bool(f.unique), bool(f.indexed)]
                for f in entity.fields.values() if self.field_types.for_field(f).stored)])
        whole = {"entities": shape, "system": system_shape(self.system_tables()), "storage": STORAGE}
        return hashlib.sha256(json.dumps(whole, sort_keys=True, default=str).encode()).hexdigest()


def system_shape(tables: list[sa.Table]) -> list:
    """What `migrate` creates of the fw_ tables: table, column and index names (alembic compares
    no column types, so a type change of a system column needs its own migration step)."""
    return [[t.name, [c.name for c in t.columns],
             sorted([ix.name or "", [c.name for c in ix.columns], bool(ix.unique)] for ix in t.indexes)]
            for t in tables]
