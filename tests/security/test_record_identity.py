"""Issue #11 point 2: a record's id is never reused, so a new record inherits nothing of a deleted one
(R39 visibility through shares and approval grants, R43 its operation log), on SQLite and PostgreSQL;
an old SQLite database whose tables reuse ids is rebuilt by migrate without losing a row."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.errors import Locked, NotFound, SchemaMismatch
from engine.records.ownership import share, shares_of
from engine.schema.migrate import check_schema, migrate
from engine.schema.plan import Planner
from engine.tenant import Tenant

DATA = Path(__file__).resolve().parent.parent / "data"


class Clock:
    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def load(url: str) -> tuple[Tenant, dict]:
    t = Tenant.load(DATA / "pipeline.yaml", db_url=url)
    migrate(t)
    t.clock = Clock(datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc))
    users = {}
    for name, roles, dept, manages in [("rep", ["sales_rep"], "sales_east", []),
                                       ("rep2", ["sales_rep"], "sales_east", []),
                                       ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"]),
                                       ("ceo", ["executive"], "board", []),
                                       ("root", ["admin"], None, [])]:
        if t.users.by_username(name) is None:
            t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")
        users[name] = t.users.by_username(name)
    return t, users


@pytest.fixture
def crm(db_url):
    t, users = load(db_url)
    yield t, users
    t.dispose()


def deal(t, user, **values):
    return t.records.create("opportunity", {"name": "测试商机", **values}, user)


def record_rows(t, table: str, rid: int, entity: str = "opportunity") -> list:
    tab = t.schema.system[table]
    with t.db.connect() as conn:
        return conn.execute(sa.select(tab).where(tab.c.entity == entity, tab.c.record_id == rid)).mappings().all()


def test_security_a_deleted_records_id_shares_grants_tasks_and_history_go_to_nobody_new(crm):
    t, u = crm
    old = deal(t, u["rep"], amount="100000", discount="25")          # starts the discount approval
    [a] = t.approvals.for_record("opportunity", old["id"])
    t.approvals.approve(a["id"], u["east_mgr"])                        # the ceo's step: a read grant
    assert t.records.get("opportunity", old["id"], u["ceo"])["id"] == old["id"]
    share(t, "opportunity", old["id"], u["root"], with_user="rep2", access="write")
    task = t.tasks.ask_for_help("opportunity", old["id"], u["rep"], "user:rep2", "请帮忙")
    with pytest.raises(Locked):                                        # pending: the approval keeps it
        t.records.delete("opportunity", old["id"], u["root"])
    t.approvals.withdraw(a["id"], u["rep"])
    t.records.delete("opportunity", old["id"], u["root"])

    # the delete took the record's shares (its own and the approval's grant) and the task's link with it
    assert record_rows(t, "shares", old["id"]) == []
    assert t.tasks.get(task["id"])["record_id"] is None
    assert all(r["status"] != "pending" for r in record_rows(t, "approvals", old["id"]))

    new = deal(t, u["rep"], amount="5")
    assert new["id"] != old["id"] and new["id"] > old["id"]
    assert shares_of(t, "opportunity", new["id"], u["root"]) == []
    with pytest.raises(NotFound):                                      # the share went with the old one
        t.records.get("opportunity", new["id"], u["rep2"])
    assert t.approvals.for_record("opportunity", new["id"]) == []
    assert [h["action"] for h in t.records.history("opportunity", new["id"])] == ["create"]
    assert [x["id"] for x in t.tasks.list(u["rep2"])] == [task["id"]]


def test_security_ids_are_never_reused_after_deleting_the_newest_record_or_a_bulk_import(crm):
    t, u = crm
    first = deal(t, u["root"])
    last = deal(t, u["root"])
    t.records.delete("opportunity", last["id"], u["root"])
    again = deal(t, u["root"])
    assert again["id"] > last["id"]
    t.records.delete("opportunity", again["id"], u["root"])
    result = t.records.create_many("opportunity", [{"name": "导入一"}, {"name": "导入二"}], u["root"])
    assert min(result.created) > again["id"] and first["id"] < last["id"]


def old_format(db: Path) -> None:
    """Rewrite a SQLite database as a Formwork that let SQLite reuse ids left it: no AUTOINCREMENT,
    no sqlite_sequence rows, and the schema fingerprint of that time."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA writable_schema=ON")
    con.execute("UPDATE sqlite_master SET sql = replace(sql, ' AUTOINCREMENT', '') WHERE type = 'table'")
    if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        con.execute("DELETE FROM sqlite_sequence")
    con.execute("UPDATE fw_config_versions SET fingerprint = 'before-autoincrement'")
    con.commit()
    con.execute("PRAGMA writable_schema=OFF")
    con.close()


def test_security_migrate_rebuilds_an_old_sqlite_table_keeping_every_row_and_ids_stay_unused(sqlite_url):
    t, u = load(sqlite_url)
    made = [deal(t, u["rep"], amount=str(1000 * i)) for i in range(1, 5)]
    share(t, "opportunity", made[-1]["id"], u["root"], with_user="rep2")
    t.records.delete("opportunity", made[-1]["id"], u["root"])
    before = {r["id"]: (r["name"], r["amount"], r["version"]) for r in t.records.list("opportunity", limit=100).items}
    t.dispose()
    old_format(Path(sqlite_url.removeprefix("sqlite:///")))

    t = Tenant.load(DATA / "pipeline.yaml", db_url=sqlite_url)
    u = {name: t.users.by_username(name) for name in ("rep", "rep2", "root")}
    try:
        with pytest.raises(SchemaMismatch):
            check_schema(t)
        plan = Planner(t).plan()
        text = plan.render()
        assert "opportunity" in text and "fw_shares" in text and "reused" in text, text
        assert not plan.blocking
        migrate(t)
        check_schema(t)
        assert Planner(t).plan().empty                                 # idempotent
        after = {r["id"]: (r["name"], r["amount"], r["version"])
                 for r in t.records.list("opportunity", limit=100).items}
        assert after == before
        with t.db.connect() as conn:
            sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'opportunity'").scalar()
        assert "AUTOINCREMENT" in sql.upper()
        new = deal(t, u["rep"])
        assert new["id"] > made[-1]["id"]                              # not the deleted one's id
        with pytest.raises(NotFound):
            t.records.get("opportunity", new["id"], u["rep2"])
    finally:
        t.dispose()
