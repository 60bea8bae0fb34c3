"""Plan and migrate on SQLite and PostgreSQL: additive, archiving, renaming and data-dependent changes (R50)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from engine.cli import build_cli
from engine.errors import SchemaMismatch
from engine.schema.migrate import MigrationRefused, check_schema, migrate, purge_archived
from engine.schema.plan import Planner
from engine.tenant import Tenant

DATA = Path(__file__).parent / "data"


@pytest.fixture
def configs(tmp_path):
    for name in ("crm_v1.yaml", "crm_v2.yaml"):
        shutil.copy(DATA / name, tmp_path / name)
    return tmp_path


def load(configs, name, db_url):
    return Tenant.load(configs / name, db_url=db_url)


def seed_customers(tenant, rows):
    ids = []
    for r in rows:
        ids.append(tenant.records.create("customer", {"industry": "制造业", **r})["id"])
    return ids


def columns(tenant, table):
    with tenant.db.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns(table)}


def raw_rows(tenant, table, *cols):
    t = sa.table(table, *(sa.column(c) for c in ("id", *cols)))
    with tenant.db.connect() as conn:
        return {r[0]: tuple(r[1:]) for r in conn.execute(sa.select(t).order_by(t.c.id))}


def test_first_plan_creates_everything_then_no_changes(configs, db_url):
    t = load(configs, "crm_v1.yaml", db_url)
    plan = Planner(t).plan()
    kinds = {(c.kind, c.table) for c in plan.changes}
    assert ("create_table", "customer") in kinds and ("create_table", "quote__lines") in kinds
    assert not plan.blocking
    migrate(t)
    assert Planner(t).plan().empty
    check_schema(t)


def test_r50_plan_then_migrate_add_remove_rename_retype_keeps_every_value(configs, db_url):
    v1 = load(configs, "crm_v1.yaml", db_url)
    migrate(v1)
    ids = seed_customers(v1, [
        {"name": "北京星河科技有限公司", "abbreviation": "星河", "employees": "120", "notes": "老客户"},
        {"name": "上海云帆贸易有限公司", "abbreviation": "云帆", "employees": "35", "notes": None},
        {"name": "深圳海岸电子有限公司", "employees": None, "notes": "需要回访"},
    ])
    v2 = load(configs, "crm_v2.yaml", db_url)
    with pytest.raises(SchemaMismatch):
        check_schema(v2)
    plan = Planner(v2).plan()
    by_kind = {(c.kind, c.column): c for c in plan.changes if c.table == "customer"}
    assert by_kind[("rename_column", "short_name")].data["old"] == "abbreviation"
    archived = by_kind[("archive_column", "notes")]
    assert archived.count == 2 and archived.category == "archiving"
    retype = by_kind[("retype_column", "employees")]
    assert not retype.blocking and "all 2 stored value(s) convert" in retype.detail
    assert by_kind[("add_column", "website")].category == "additive"
    assert not plan.blocking

    migrate(v2)
    assert Planner(v2).plan().empty
    check_schema(v2)
    recs = {r["id"]: r for r in v2.records.list("customer").items}
    assert recs[ids[0]]["short_name"] == "星河" and recs[ids[1]]["short_name"] == "云帆"
    assert recs[ids[0]]["employees"] == 120 and recs[ids[1]]["employees"] == 35
    assert "notes" not in recs[ids[0]]
    cols = columns(v2, "customer")
    assert "notes" in cols and "employees__was_text" in cols  # archived, data intact
    assert raw_rows(v2, "customer", "notes")[ids[0]] == ("老客户",)
    assert raw_rows(v2, "customer", "employees__was_text")[ids[1]] == ("35",)


def test_r50_retype_that_cannot_convert_refuses_with_record_ids(configs, db_url):
    v1 = load(configs, "crm_v1.yaml", db_url)
    migrate(v1)
    ids = seed_customers(v1, [{"name": "甲公司", "employees": "about 50"}, {"name": "乙公司", "employees": "12"},
                              {"name": "丙公司", "employees": "很多"}])
    v2 = load(configs, "crm_v2.yaml", db_url)
    plan = Planner(v2).plan()
    [retype] = [c for c in plan.changes if c.kind == "retype_column"]
    assert retype.blocking and retype.count == 2 and retype.sample_ids == [ids[0], ids[2]]
    with pytest.raises(MigrationRefused) as exc:
        migrate(v2)
    assert str(ids[0]) in str(exc.value)
    # nothing changed: still the v1 schema and data
    assert "short_name" not in columns(v1, "customer")
    check_schema(v1)
    assert raw_rows(v1, "customer", "employees")[ids[0]] == ("about 50",)


def test_new_unique_on_duplicated_values_blocks_and_new_required_warns(configs, db_url):
    v1 = load(configs, "crm_v1.yaml", db_url)
    migrate(v1)
    ids = seed_customers(v1, [{"name": "甲", "abbreviation": "同名"}, {"name": "乙", "abbreviation": "同名"},
                              {"name": "丙"}])
    text = (configs / "crm_v1.yaml").read_text(encoding="utf-8")
    (configs / "crm_v3.yaml").write_text(
        text.replace("abbreviation: {type: text}", "abbreviation: {type: text, unique: true}")
            .replace("founded:  {type: date}", "founded:  {type: date, required: true}"), encoding="utf-8")
    v3 = load(configs, "crm_v3.yaml", db_url)
    plan = Planner(v3).plan()
    checks = {c.column: c for c in plan.changes if c.kind == "check"}
    assert checks["abbreviation"].blocking and checks["abbreviation"].sample_ids == ids[:2]
    assert not checks["founded"].blocking and checks["founded"].count == 3
    with pytest.raises(MigrationRefused):
        migrate(v3)


def test_removed_option_is_counted_and_values_kept(configs, db_url):
    v1 = load(configs, "crm_v1.yaml", db_url)
    migrate(v1)
    ids = seed_customers(v1, [{"name": "甲", "industry": "教育业"}, {"name": "乙"}])
    text = (configs / "crm_v1.yaml").read_text(encoding="utf-8")
    (configs / "crm_v4.yaml").write_text(text.replace("industry: [制造业, 金融业, 教育业]", "industry: [制造业, 金融业]"),
                                         encoding="utf-8")
    v4 = load(configs, "crm_v4.yaml", db_url)
    [check] = [c for c in Planner(v4).plan().changes if c.kind == "check"]
    assert check.count == 1 and check.sample_ids == [ids[0]] and "教育业" in check.detail
    migrate(v4)
    assert v4.records.get("customer", ids[0])["industry"] == "教育业"


def test_purge_archived_writes_backup_before_dropping(configs, db_url):
    v1 = load(configs, "crm_v1.yaml", db_url)
    migrate(v1)
    [cid] = seed_customers(v1, [{"name": "甲", "notes": "保留我", "employees": "7"}])
    v2 = load(configs, "crm_v2.yaml", db_url)
    migrate(v2)
    path, dropped = purge_archived(v2, configs / "backups")
    backup = json.loads(path.read_text(encoding="utf-8"))
    assert backup["columns"]["customer"]["notes"][str(cid)] == "保留我"
    assert "customer.notes" in dropped
    assert "notes" not in columns(v2, "customer")
    assert Planner(v2).plan().empty


def test_cli_plan_and_migrate(configs, db_url):
    runner = CliRunner()
    cli = build_cli()
    v1 = str(configs / "crm_v1.yaml")
    r = runner.invoke(cli, ["plan", v1, "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "create table customer" in r.output
    r = runner.invoke(cli, ["migrate", v1, "--db", db_url])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["plan", v1, "--db", db_url])
    assert r.exit_code == 0 and r.output.strip() == "no changes"
    v1t = load(configs, "crm_v1.yaml", db_url)
    seed_customers(v1t, [{"name": "甲", "notes": "x"}])
    v2 = str(configs / "crm_v2.yaml")
    r = runner.invoke(cli, ["migrate", v2, "--db", db_url])  # archiving without --yes, no terminal
    assert r.exit_code == 1 and "--yes" in r.output
    r = runner.invoke(cli, ["migrate", v2, "--db", db_url, "--yes"])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
