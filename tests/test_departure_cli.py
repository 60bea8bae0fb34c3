"""`formwork user disable TENANT.yaml USERNAME [--transfer-to OTHER]`: departure in one step (R44)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner

from engine.cli import build_cli
from engine.tenant import Tenant
from engine.users import UserStore
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).parent / "data"


@pytest.fixture
def org(tmp_path, db_url):
    config = tmp_path / "perm.yaml"
    shutil.copy(DATA / "perm.yaml", config)
    t = Tenant.load(config, db_url=db_url)
    t.__dict__["users"] = UserStore(t, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    migrate_empty(t)
    for name, roles, dept, manages in [("rep_a", ["sales_rep"], "sales_east", []),
                                       ("rep_b", ["sales_rep"], "sales_east", []),
                                       ("loner", ["sales_rep"], "finance", []),
                                       ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"])]:
        t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")
    rep_a = t.users.by_username("rep_a")
    for n in ("甲公司", "乙公司"):
        c = t.records.create("customer", {"name": n}, rep_a)
        t.records.create("contact", {"name": f"{n}联系人", "customer": c["id"]}, rep_a)
    t.records.create("customer", {"name": "孤客"}, t.users.by_username("loner"))
    token = t.users.create_token("rep_a")

    def run(*args):
        return CliRunner().invoke(build_cli(), ["user", "disable", str(config), *args, "--db", db_url])

    yield t, run, token
    t.dispose()


def owners(t, entity):
    table = t.records.schema.table(t.model.entity(entity))
    with t.db.connect() as conn:
        return sorted(r[0] for r in conn.execute(sa.select(table.c.owner)))


def test_r44_disable_hands_everything_to_the_manager(org):
    t, run, token = org
    result = run("rep_a")
    assert result.exit_code == 0, result.output
    assert "disabled user rep_a" in result.output and "to east_mgr" in result.output
    assert "customer: 2" in result.output and "contact: 2" in result.output
    mgr, loner = t.users.by_username("east_mgr"), t.users.by_username("loner")
    assert owners(t, "customer") == sorted([mgr.id, mgr.id, loner.id]) and owners(t, "contact") == [mgr.id, mgr.id]
    assert not t.users.by_username("rep_a").active and t.users.user_for_token(token) is None
    rid = t.records.list("customer", mgr).items[0]["id"]
    assert "departure of rep_a" in t.records.history("customer", rid)[0]["note"]


def test_r44_disable_with_transfer_to(org):
    t, run, _ = org
    result = run("rep_a", "--transfer-to", "rep_b")
    assert result.exit_code == 0 and "to rep_b" in result.output, result.output
    b = t.users.by_username("rep_b")
    assert t.records.count("customer", b) == 2 and t.records.count("contact", b) == 2


def test_r44_no_manager_is_a_clear_error_and_nothing_changes(org):
    t, run, _ = org
    result = run("loner")
    assert result.exit_code == 1 and "no active manager" in result.output and "--transfer-to" in result.output
    assert "Traceback" not in result.output
    assert t.users.by_username("loner").active  # refused before anything changed


@pytest.mark.parametrize("args, expected", [(("nobody",), "no user named nobody"),
                                            (("rep_a", "--transfer-to", "ghost"), "no such user: ghost"),
                                            (("rep_a", "--transfer-to", "rep_a"), "themselves")])
def test_r44_bad_names_are_clear_errors(org, args, expected):
    t, run, _ = org
    result = run(*args)
    assert result.exit_code == 1 and expected in result.output, result.output
    assert "Traceback" not in result.output
    assert t.users.by_username("rep_a").active


def test_r44_transfer_to_a_disabled_user_is_refused(org):
    t, run, _ = org
    t.users.disable("rep_b")
    result = run("rep_a", "--transfer-to", "rep_b")
    assert result.exit_code == 1 and "disabled" in result.output


def test_user_add_manages_is_stored(org):
    t, _, _ = org
    result = CliRunner().invoke(build_cli(), ["user", "add", str(t.config_path), "boss2", "--role", "sales_manager",
                                              "--department", "sales", "--manages", "sales", "--manages",
                                              "sales_north", "--db", str(t.db.url.render_as_string(False))])
    assert result.exit_code == 0, result.output
    assert t.users.by_username("boss2").manages == ["sales", "sales_north"]
