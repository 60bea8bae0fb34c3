"""The permission layer in the engine on SQLite and PostgreSQL: scopes, field masks, writes, exports (R39–R44)."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.errors import BadRequest, NotFound, ValidationFailed
from engine.permissions import PermissionDenied
from engine.records.ownership import hand_over, share, shares_of, transfer
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).parent / "data"


@pytest.fixture
def org(db_url):
    t = Tenant.load(DATA / "perm.yaml", db_url=db_url)
    migrate_empty(t)
    users = {}
    for name, roles, dept, manages in [("rep_a", ["sales_rep"], "sales_east", []),
                                       ("rep_b", ["sales_rep"], "sales_east", []),
                                       ("rep_n", ["sales_rep"], "sales_north", []),
                                       ("boss", ["sales_manager"], "sales", ["sales"]),
                                       ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"]),
                                       ("fin", ["finance"], "finance", []),
                                       ("root", ["admin"], None, [])]:
        users[name] = t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")[0]
    recs = {}
    for owner, name, level in [("rep_a", "甲公司", "A"), ("rep_a", "乙公司", "B"), ("rep_b", "丙公司", "C"),
                               ("rep_n", "丁公司", "B")]:
        rec = t.records.create("customer", {"name": name, "level": level, "needs": f"{name}的需求"}, users[owner])
        recs[name] = t.records.update("customer", rec["id"], {"credit_limit": "1000"})  # reps may not see it
    yield t, users, recs
    t.dispose()


def names(page_or_list):
    items = page_or_list.items if hasattr(page_or_list, "items") and not isinstance(page_or_list, list) else page_or_list
    return sorted(r["name"] for r in items)


def audit_count(t):
    audit = t.schema.system["audit"]
    with t.db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar()


def test_r39_rep_sees_only_own_customers_everywhere(org):
    t, u, recs = org
    assert names(t.records.list("customer", u["rep_a"])) == ["乙公司", "甲公司"]
    assert t.records.count("customer", u["rep_a"]) == 2
    assert [h["title"] for h in t.records.quick_search("公司", u["rep_a"])] == ["乙公司", "甲公司"]
    with pytest.raises(NotFound):
        t.records.get("customer", recs["丙公司"]["id"], u["rep_a"])
    with pytest.raises(NotFound):
        t.records.history("customer", recs["丙公司"]["id"], u["rep_a"])


def test_r39_other_reps_record_by_id_is_404_and_nothing_changes(org):
    t, u, recs = org
    other = recs["丙公司"]
    before = audit_count(t)
    with pytest.raises(NotFound):
        t.records.update("customer", other["id"], {"level": "A"}, u["rep_a"])
    with pytest.raises((NotFound, PermissionDenied)):
        t.records.delete("customer", other["id"], u["rep_a"])
    assert t.records.get("customer", other["id"])["level"] == "C"
    assert audit_count(t) == before


def test_manager_sees_department_tree(org):
    t, u, _ = org
    assert names(t.records.list("customer", u["boss"])) == ["丁公司", "丙公司", "乙公司", "甲公司"]
    assert names(t.records.list("customer", u["east_mgr"])) == ["丙公司", "乙公司", "甲公司"]


def test_r41_finance_sees_by_grade_and_r40_not_needs(org):
    t, u, recs = org
    seen = t.records.list("customer", u["fin"]).items
    assert sorted(r["name"] for r in seen) == ["丁公司", "丙公司", "乙公司"]  # no A-grade
    assert all("needs" not in r for r in seen)
    assert all(r["credit_limit"] is not None for r in seen)
    with pytest.raises(NotFound):
        t.records.get("customer", recs["甲公司"]["id"], u["fin"])
    with pytest.raises(BadRequest):
        t.records.list("customer", u["fin"], filters={"needs__contains": "需求"})
    with pytest.raises(BadRequest):
        t.records.list("customer", u["fin"], sort="needs")
    history = t.records.history("customer", recs["乙公司"]["id"], u["fin"])
    assert all("needs" not in h["changes"] for h in history)
    with pytest.raises(PermissionDenied):
        t.records.update("customer", recs["乙公司"]["id"], {"credit_limit": "5"}, u["fin"])


def test_r40_hidden_field_is_no_field_for_writes_and_search(org):
    t, u, recs = org
    mine = t.records.get("customer", recs["甲公司"]["id"], u["rep_a"])
    assert "credit_limit" not in mine
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("customer", mine["id"], {"credit_limit": "999999"}, u["rep_a"])
    assert exc.value.errors == {"credit_limit": ["未知字段"]}
    t.records.update("customer", mine["id"], {"level": "B"}, u["rep_a"])
    assert t.records.quick_search("1000", u["fin"]) == []  # money isn't searched; nor are hidden fields


def test_mass_assignment_of_system_fields_is_refused(org):
    t, u, recs = org
    mine = recs["甲公司"]
    for values in ({"created_by": u["rep_b"].id}, {"id": 999}, {"created_at": "2020-01-01T00:00:00Z"}):
        with pytest.raises(ValidationFailed):
            t.records.update("customer", mine["id"], values, u["rep_a"])
    with pytest.raises(PermissionDenied):
        t.records.update("customer", mine["id"], {"owner": u["rep_b"].id}, u["rep_a"])
    with pytest.raises(PermissionDenied):
        t.records.create("customer", {"name": "塞给别人", "owner": u["rep_b"].id}, u["rep_a"])
    assert t.records.get("customer", mine["id"])["owner"] == u["rep_a"].id


def test_bulk_with_a_foreign_id_is_rejected_whole(org):
    t, u, recs = org
    ids = [recs["甲公司"]["id"], recs["丙公司"]["id"]]
    with pytest.raises(NotFound):
        t.records.update_many("customer", ids, {"level": "B"}, u["rep_a"])
    assert t.records.get("customer", recs["甲公司"]["id"])["level"] == "A"


def test_r42_export_scope_limit_and_log(org):
    t, u, _ = org
    rows = list(t.records.export("customer", u["rep_a"]))
    assert sorted(r["name"] for r in rows) == ["乙公司", "甲公司"]
    assert all("credit_limit" not in r for r in rows)
    for i in range(3):
        t.records.create("customer", {"name": f"新客户{i}"}, u["rep_a"])
    with pytest.raises(PermissionDenied) as exc:
        t.records.export("customer", u["rep_a"])
    assert "3" in str(exc.value)
    with pytest.raises(PermissionDenied):
        t.records.export("customer", u["fin"])  # finance may read but not export
    exports = t.schema.system["exports"]
    with t.db.connect() as conn:
        logged = conn.execute(sa.select(exports.c.username, exports.c.row_count)).all()
    assert logged == [("rep_a", 2)]


def test_r34_share_with_a_colleague(org):
    t, u, recs = org
    rid = recs["丙公司"]["id"]
    with pytest.raises(PermissionDenied):
        share(t, "customer", rid, u["rep_b"], with_user="rep_a")  # reps may not transfer, so not share
    share(t, "customer", rid, u["east_mgr"], with_user="rep_a", access="read")
    assert t.records.get("customer", rid, u["rep_a"])["name"] == "丙公司"
    with pytest.raises(PermissionDenied):
        t.records.update("customer", rid, {"level": "B"}, u["rep_a"])
    share(t, "customer", rid, u["east_mgr"], with_user="rep_a", access="write")
    t.records.update("customer", rid, {"level": "B"}, u["rep_a"])
    assert [s["user"] for s in shares_of(t, "customer", rid, u["east_mgr"])] == ["rep_a", "rep_a"]
    assert t.records.history("customer", rid, u["east_mgr"])[1]["action"] == "share"


def test_manager_transfers_within_scope_only(org):
    t, u, recs = org
    transfer(t, "customer", [recs["甲公司"]["id"]], "rep_b", u["east_mgr"])
    assert t.records.get("customer", recs["甲公司"]["id"])["owner"] == u["rep_b"].id
    with pytest.raises(PermissionDenied):
        transfer(t, "customer", [recs["乙公司"]["id"]], "rep_n", u["east_mgr"])  # north is outside east
    with pytest.raises(NotFound):
        transfer(t, "customer", [recs["丁公司"]["id"]], "rep_a", u["east_mgr"])


def test_r44_departure_hands_records_over_and_keeps_history(org):
    t, u, recs = org
    t.users.disable("rep_a")
    assert not t.records.permissions.can(t.model.entity("customer"), t.users.by_username("rep_a"), "read")
    counts = hand_over(t, "rep_a", by=None)  # to the manager of sales_east
    assert counts == {"customer": 2}
    for name in ("甲公司", "乙公司"):
        rec = t.records.get("customer", recs[name]["id"])
        assert rec["owner"] == u["east_mgr"].id
        history = t.records.history("customer", rec["id"])
        assert history[0]["action"] == "transfer" and history[0]["changes"]["owner"] == [u["rep_a"].id, u["east_mgr"].id]
        assert "departure of rep_a" in history[0]["note"]


def test_disabled_user_can_do_nothing(org):
    t, u, _ = org
    t.users.disable("rep_b")
    gone = t.users.by_username("rep_b")
    with pytest.raises(PermissionDenied):
        t.records.list("customer", gone)
    with pytest.raises(PermissionDenied):
        t.records.create("customer", {"name": "离职后新建"}, gone)


def test_import_cannot_place_records_outside_scope(org):
    from engine.records.service import BulkFailed

    t, u, _ = org
    with pytest.raises(BulkFailed) as exc:
        t.records.create_many("customer", [{"name": "自己的"}, {"name": "别人的", "owner": u["rep_b"].id}], u["rep_a"])
    assert [(e.row, e.field) for e in exc.value.row_errors] == [(2, "_record")]
    with pytest.raises(PermissionDenied):
        t.records.create_many("customer", [{"name": "经理导入"}], u["boss"])  # no import right


def test_permissions_matrix_lists_every_role_and_entity(org):
    t, _, _ = org
    rows = t.records.permissions.matrix()
    rep = next(r for r in rows if r["role"] == "sales_rep" and r["entity"] == "customer")
    assert rep["actions"]["read"] == "own" and rep["actions"]["export"] == "own (max 3)"
    assert rep["fields"] == {"credit_limit": "hidden"}
    fin = next(r for r in rows if r["role"] == "finance" and r["entity"] == "customer")
    assert fin["actions"]["read"] == "all where level != 'A'"


def test_cli_permissions_matrix_and_export_as_user(org, db_url):
    from click.testing import CliRunner

    from engine.cli import build_cli

    t, u, _ = org
    runner = CliRunner()
    cfg = str(DATA / "perm.yaml")
    r = runner.invoke(build_cli(), ["permissions", cfg, "--role", "sales_rep"])
    assert r.exit_code == 0, r.output
    assert "sales_rep  customer" in r.output and "credit_limit=hidden" in r.output
    r = runner.invoke(build_cli(), ["permissions", cfg, "--role", "nobody"])
    assert r.exit_code != 0 and "unknown role(s): nobody" in r.output
    r = runner.invoke(build_cli(), ["export", cfg, "customer", "--as", "rep_a", "--db", db_url])
    assert r.exit_code == 0, r.output
    assert "甲公司" in r.output and "丙公司" not in r.output and "credit_limit" not in r.output
    r = runner.invoke(build_cli(), ["export", cfg, "customer", "--as", "fin", "--db", db_url])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_r39_a_reference_does_not_reveal_the_name_of_a_record_outside_scope(org):
    t, u, recs = org
    other = recs["丙公司"]  # rep_b's customer
    contact = t.records.create("contact", {"name": "王芳", "customer": other["id"]})  # created by the engine
    t.records.update("contact", contact["id"], {"owner": u["rep_a"].id})
    mine = t.records.get("contact", contact["id"], u["rep_a"])
    assert t.records.display("contact", mine, user=u["rep_a"])["customer"] == f"#{other['id']}"
    assert t.records.display("contact", mine, user=u["east_mgr"])["customer"] == "丙公司"
