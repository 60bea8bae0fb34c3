"""Data-quality figures (R18, R36) on SQLite and PostgreSQL: completeness, follow-ups, owners, thresholds."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import build_cli
from engine.quality import quality_report
from engine.schema.migrate import migrate
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

CONFIG = Path(__file__).parent / "data" / "dedup.yaml"


@pytest.fixture
def org(db_url):
    t = Tenant.load(CONFIG, db_url=db_url)
    migrate_empty(t)
    u = {}
    for name, dept in [("rep_a", "sales_east"), ("rep_n", "sales_north"), ("gone", "sales_east")]:
        u[name] = t.users.add(name, ["sales_rep"], department=dept, password="initial-pass-1")[0]
    today = date.today()

    def add(name, who, followed_days_ago=None, **fields):
        owner = {"owner": u[who].id, "department": u[who].department} if who else {}
        c = t.records.create("customer", {"name": name, **owner, **fields}, confirm_duplicates=True)
        if followed_days_ago is not None:
            t.records.create("follow_up", {"customer": c["id"], "summary": "回访",
                                           "followed_on": (today - timedelta(days=followed_days_ago)).isoformat()})
        return c

    full = {"industry": "制造业", "email": "a@example.com"}
    add("甲公司", "rep_a", 5, mobile="13800000001", **full)          # 4/4 key fields, followed up
    add("乙公司", "rep_a", 100, mobile="13800000002", **full)        # 4/4, follow-up too old
    add("丙公司", "rep_a", None, industry="金融业")                   # 2/4, never followed up
    add("丁公司", "rep_n", 30, mobile="13800000004", **full)         # 4/4, followed up
    add("戊公司", None, 1, **full)                                   # 3/4, no owner
    add("己公司", "gone", 2, mobile="13800000006", **full)           # 4/4, owner disabled below
    t.users.disable("gone")
    yield t, u
    t.dispose()


def checks(group):
    return {c.name: (c.value, c.passed) for c in group.checks}


def test_r18_live_figures_with_pass_fail(org):
    t, u = org
    [r] = quality_report(t)
    g = r.overall
    assert r.entity == "customer" and g.records == 6
    # filled key-field values: 4 + 4 + 2 + 4 + 3 + 4 = 21 of 24
    assert checks(g) == {"completeness": (87.5, False), "followed_up": (66.7, False), "unowned": (2, False)}
    assert g.by_field == {"name": 6, "industry": 6, "mobile": 4, "email": 5} and g.complete_records == 4
    assert r.passed is False and r.followed_up_days == 90


def test_r36_figures_per_department_and_per_user(org):
    t, u = org
    [r] = quality_report(t)
    depts = {g.key: g for g in r.by_department}
    assert set(depts) == {"sales_east", "sales_north", None}
    east = depts["sales_east"]
    assert east.label == "华东组" and east.records == 4
    assert checks(east)["completeness"] == (87.5, False)      # 14 of 16
    assert checks(east)["followed_up"] == (50.0, False)      # 甲 and 己
    assert checks(depts["sales_north"])["completeness"] == (100.0, True)
    users = {g.label: g for g in r.by_user}
    assert users["rep_n"].records == 1 and checks(users["rep_n"])["followed_up"] == (100.0, True)
    assert checks(users["rep_a"])["followed_up"] == (33.3, False)
    assert users["（无）"].records == 1 and users["（无）"].unowned == 1
    assert users["gone"].unowned == 1


def test_r18_figures_respect_the_users_scope(org):
    t, u = org
    [r] = quality_report(t, user=u["rep_a"])
    assert r.overall.records == 3
    assert checks(r.overall)["completeness"] == (83.3, False)  # 10 of 12
    assert [g.label for g in r.by_user] == ["rep_a"]


def test_r18_no_thresholds_means_figures_without_verdict(tmp_path, sqlite_url):
    path = tmp_path / "t.yaml"
    path.write_text("tenant: {name: t}\nentities:\n  customer:\n    fields: {name: {type: text}, city: {type: text}}\n"
                    "    quality: {key_fields: [name, city]}\n", encoding="utf-8")
    t = Tenant.load(path, db_url=sqlite_url)
    migrate(t)
    t.records.create("customer", {"name": "甲"})
    [r] = quality_report(t)
    assert r.passed is None and checks(r.overall) == {"completeness": (50.0, None), "unowned": (1, None)}
    t.dispose()


def _cli(*args):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


def test_r18_quality_cli_prints_figures_and_verdicts(org):
    t, u = org
    out = _cli("quality", CONFIG, "--db", t.db_url)
    assert out.exit_code == 0, out.output
    assert "customer (customer): 6 record(s) — FAIL" in out.output
    assert "key-field completeness" in out.output and "87.5% (≥ 90% FAIL)" in out.output
    assert "66.7% (≥ 80% FAIL)" in out.output and "followed up (90 days)" in out.output
    assert "华东组" in out.output and "rep_n" in out.output
    assert _cli("quality", CONFIG, "--db", t.db_url, "--strict").exit_code == 1
    data = json.loads(_cli("quality", CONFIG, "customer", "--db", t.db_url, "--format", "json").output)
    assert data[0]["overall"]["records"] == 6 and data[0]["passed"] is False
    out = _cli("quality", CONFIG, "contact", "--db", t.db_url)
    assert out.exit_code == 1 and "contact has no quality: settings" in out.output
    out = _cli("quality", CONFIG, "--db", t.db_url, "--as", "rep_a", "--format", "json")
    assert json.loads(out.output)[0]["overall"]["records"] == 3


def test_r18_sample_tenant_states_the_seed_thresholds(sqlite_url):
    """The seed's checklist: completeness ≥ 90%, a follow-up in the last 3 months for ≥ 80%."""
    sample = Path(__file__).resolve().parent.parent / "sample_tenant.yaml"
    out = _cli("check", sample)
    assert out.exit_code == 0, out.output
    t = Tenant.load(sample, db_url=sqlite_url)
    try:
        quality = t.model.entity("customer").settings["quality"]
        assert (quality["completeness_min"], quality["followed_up_days"], quality["followed_up_min"]) == (90, 90, 80)
        migrate(t)
        [r] = quality_report(t, ["customer"])
        assert r.followed_up_days == 90
        thresholds = {c.name: (c.threshold, c.comparison) for c in r.overall.checks}
        assert thresholds["completeness"] == (90, ">=") and thresholds["followed_up"] == (80, ">=")
    finally:
        t.dispose()
