"""Formwork's own fw_ tables are part of the schema check: a database migrated by an older Formwork
(before fw_dedup_* or any later system table existed) is refused until `formwork migrate` adds them
(R14 needs the duplicate index; R50: a new version changes the schema, the data stays)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.cli import build_cli
from engine.errors import DuplicatesFound, SchemaMismatch
from engine.schema import tables as tables_module
from engine.schema.migrate import check_schema, migrate
from engine.schema.plan import Planner
from engine.schema.tables import TenantSchema, column_settings
from engine.tenant import Tenant

DATA = Path(__file__).parent / "data"
CONFIG = DATA / "dedup.yaml"
DEDUP_TABLES = ("fw_dedup_keys", "fw_dedup_state", "fw_dedup_values")


@pytest.fixture
def tenant(db_url):
    t = Tenant.load(CONFIG, db_url=db_url)
    migrate(t)
    yield t
    t.dispose()


def cli(*args):
    return CliRunner().invoke(build_cli(), [str(a) for a in args])


def tables_in(t) -> set[str]:
    with t.db.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def legacy_fingerprint(t) -> str:
    """The fingerprint as Formwork recorded it before system tables counted (entity tables only)."""
    shape = []
    for entity in t.model.all_entities():
        shape.append([entity.table_name, sorted(
            [f.name, column_settings(f, t.field_types), bool(f.unique), bool(f.indexed)]
            for f in entity.fields.values() if t.field_types.for_field(f).stored)])
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def record_fingerprint(t, value: str) -> None:
    with t.write() as conn:
        conn.execute(sa.text("UPDATE fw_config_versions SET fingerprint = :fp"), {"fp": value})


def test_r14_database_migrated_before_the_dedup_tables_is_refused_until_migrate_creates_them(tenant, db_url):
    t = tenant
    # what a database migrated by Formwork before duplicate detection looks like
    with t.write() as conn:
        for name in DEDUP_TABLES:
            conn.execute(sa.text(f"DROP TABLE {name}"))
    record_fingerprint(t, legacy_fingerprint(t))

    with pytest.raises(SchemaMismatch, match=r"fw_dedup_keys.*run `formwork plan` then `formwork migrate`"):
        check_schema(t)
    r = cli("import", CONFIG, "customer", CONFIG, "--db", db_url)   # every CLI verb refuses, no traceback
    assert r.exit_code == 1 and "fw_dedup_keys" in r.output and "Traceback" not in r.output

    r = cli("plan", CONFIG, "--db", db_url)
    assert r.exit_code == 0, r.output
    assert "create table formwork system tables: fw_dedup_keys, fw_dedup_state, fw_dedup_values" in r.output
    r = cli("migrate", CONFIG, "--db", db_url)          # additive: no --yes needed
    assert r.exit_code == 0, r.output
    assert set(DEDUP_TABLES) <= tables_in(t)
    check_schema(t)
    assert Planner(t).plan().empty

    first = t.records.create("customer", {"name": "北京星河科技有限公司"})
    with pytest.raises(DuplicatesFound) as exc:
        t.records.create("customer", {"name": "星河科技(北京)有限公司"})
    assert exc.value.matches[0]["id"] == first["id"]


def test_r50_a_system_table_or_column_a_newer_formwork_defines_is_picked_up_automatically(
        tenant, db_url, monkeypatch):
    t = tenant
    t.records.create("customer", {"name": "北京星河科技有限公司"})   # fw_audit has rows
    original = tables_module.define_system_tables

    def newer_formwork(metadata):
        """As if engine/schema/system.py gained a table, a column and an index."""
        out = original(metadata)
        sa.Table("fw_test_tasks", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("title", sa.String(200), nullable=False),
                 sa.Index("ix_fw_test_tasks_title", "title"))
        metadata.tables["fw_exports"].append_column(sa.Column("reason", sa.Text))
        sa.Index("ix_fw_audit_at", metadata.tables["fw_audit"].c.at)
        return out

    monkeypatch.setattr(tables_module, "define_system_tables", newer_formwork)
    assert "fw_test_tasks" in [x.name for x in TenantSchema(t.model, t.field_types).system_tables()]
    with pytest.raises(SchemaMismatch, match=r"fw_test_tasks, fw_exports\.reason"):
        check_schema(t)

    plan = Planner(t).plan()
    described = {(c.kind, c.table, c.column) for c in plan.changes}
    assert ("create_table", "formwork system tables", None) in described
    assert ("add_column", "fw_exports", "reason") in described
    assert ("add_index", "fw_audit", "at") in described
    assert not plan.blocking and all(c.category == "additive" for c in plan.changes)
    assert "fw_test_tasks" in plan.render()

    r = cli("migrate", CONFIG, "--db", db_url)
    assert r.exit_code == 0, r.output
    check_schema(t)
    assert Planner(t).plan().empty
    with t.db.connect() as conn:
        insp = sa.inspect(conn)
        assert "reason" in {c["name"] for c in insp.get_columns("fw_exports")}
        assert "ix_fw_audit_at" in {ix["name"] for ix in insp.get_indexes("fw_audit")}
        assert "ix_fw_test_tasks_title" in {ix["name"] for ix in insp.get_indexes("fw_test_tasks")}


def test_r50_new_not_null_system_column_without_default_on_rows_blocks_migrate(tenant, db_url, monkeypatch):
    t = tenant
    t.records.create("customer", {"name": "北京星河科技有限公司"})
    original = tables_module.define_system_tables

    def newer_formwork(metadata):
        out = original(metadata)
        metadata.tables["fw_audit"].append_column(sa.Column("source", sa.String(20), nullable=False))
        return out

    monkeypatch.setattr(tables_module, "define_system_tables", newer_formwork)
    plan = Planner(t).plan()
    [blocking] = plan.blocking
    assert (blocking.table, blocking.column) == ("fw_audit", "source") and blocking.count >= 1
    r = cli("migrate", CONFIG, "--db", db_url)
    assert r.exit_code == 1 and "refused" in r.output


def test_r50_database_recorded_by_an_older_formwork_with_every_table_only_records_the_version(tenant, db_url):
    t = tenant
    record_fingerprint(t, legacy_fingerprint(t))
    with pytest.raises(SchemaMismatch, match="run `formwork plan`"):
        check_schema(t)
    plan = Planner(t).plan()
    assert [c.kind for c in plan.changes] == ["record_version"] and not plan.blocking
    r = cli("migrate", CONFIG, "--db", db_url)
    assert r.exit_code == 0, r.output
    check_schema(t)
    assert Planner(t).plan().empty
