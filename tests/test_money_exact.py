"""Issue #11 point 9: money and decimals are exact on SQLite as on PostgreSQL (R4 amounts, R40 prices).

Every value the types accept round-trips through records.create/get, the bulk import (the SQLite
driver path), the JSON API and export; sum, ordering and filters are exact on the stored form; an
old SQLite database whose money columns are NUMERIC (floating point) is converted by migrate.
"""
from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.expressions import compile_expression
from engine.expressions.sql import row_condition
from engine.records.query import SYSTEM_FIELD_TYPES, system_field
from engine.schema.migrate import check_schema, migrate
from engine.schema.plan import Planner
from engine.tenant import Tenant

CONFIG = """
tenant: {name: money, label: Money, locale: en, timezone: Asia/Shanghai, currency: CNY}
roles:
  admin: {label: Admin, all: true}
  big:
    label: Big deals only
    entities:
      deal: {read: {scope: all, where: "amount >= 100.5"}}
entities:
  deal:
    label: Deal
    title: name
    fields:
      name: {type: text, label: Name, required: true}
      amount: {type: money, label: Amount}
      rate: {type: decimal, label: Rate}
      share: {type: percent, label: Share}
      cost: {type: decimal, label: Cost, scale: 2}
"""

MONEY = ["99999999999999.99", "-99999999999999.99", "0.01", "-0.01", "0.00", "12345678901234.56",
         "70368744177664.01", "1.10", "100.50"]
RATE = ["99999999999999.9999", "-99999999999999.9999", "0.0001", "-0.0001", "12345678901234.5678",
        "3.3333", "1.0000", "0.0000", "100.5000"]
SHARE = ["99999.9999", "-99999.9999", "0.0001", "33.3333", "100.0000", "0.0000", "-0.0001", "1.5000", "7.0000"]


@pytest.fixture
def tenant(db_url, tmp_path):
    path = tmp_path / "money.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    t = Tenant.load(path, db_url=db_url)
    migrate(t)
    yield t
    t.dispose()


def rows():
    return [{"name": f"d{i}", "amount": m, "rate": r, "share": s, "cost": m}
            for i, (m, r, s) in enumerate(zip(MONEY, RATE, SHARE))]


def test_R4_money_round_trips_exactly_through_create_and_get(tenant):
    for row in rows():
        rec = tenant.records.create("deal", row)
        got = tenant.records.get("deal", rec["id"])
        assert got["amount"] == Decimal(row["amount"]) and str(got["amount"]) == row["amount"]
        assert got["rate"] == Decimal(row["rate"]) and str(got["rate"]) == row["rate"]
        assert got["share"] == Decimal(row["share"]) and str(got["share"]) == row["share"]
        assert got["cost"] == Decimal(row["amount"])
        assert tenant.records.to_json("deal", got)["amount"] == row["amount"]


def test_R4_money_round_trips_exactly_through_the_bulk_import(tenant):
    result = tenant.records.create_many("deal", rows())
    assert not result.errors
    got = {r["name"]: r for r in tenant.records.list("deal", limit=100).items}
    for row in rows():
        assert str(got[row["name"]]["amount"]) == row["amount"]
        assert str(got[row["name"]]["rate"]) == row["rate"]
        assert str(got[row["name"]]["share"]) == row["share"]
    # and out again through export, as text
    out = io.StringIO()
    from engine.io.transfer import write_json

    write_json(tenant.records, tenant.model.entities["deal"], iter(tenant.records.list("deal", limit=100).items), out)
    exported = {r["name"]: r for r in json.loads(out.getvalue())}
    assert all(exported[row["name"]]["amount"] == row["amount"] for row in rows())


def test_R4_money_round_trips_exactly_through_the_api(tenant):
    from web import create_app

    tenant.users.add("api.admin", ["admin"], password="initial-pass-1")
    token = tenant.users.create_token("api.admin", label="tests")
    client = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "t"}).test_client()
    hdrs = {"Authorization": f"Bearer {token}"}
    for row in rows():
        made = client.post("/api/v1/deal", data=json.dumps(row), content_type="application/json", headers=hdrs)
        assert made.status_code == 201, made.get_data(as_text=True)
        rid = made.get_json()["id"]
        got = client.get(f"/api/v1/deal/{rid}", headers=hdrs).get_json()
        assert got["amount"] == row["amount"]   # money is text with its 2 places; decimals plain text
        assert (Decimal(got["rate"]), Decimal(got["share"])) == (Decimal(row["rate"]), Decimal(row["share"]))


def test_R4_money_sum_order_and_filters_are_exact(tenant):
    tenant.records.create_many("deal", rows())
    t = tenant.schema.table("deal")
    with tenant.db.connect() as conn:
        total = conn.execute(sa.select(sa.func.sum(t.c.amount))).scalar()
        rate_total = conn.execute(sa.select(sa.func.sum(t.c.rate))).scalar()
    assert Decimal(total) == sum(Decimal(m) for m in MONEY)
    assert Decimal(rate_total) == sum(Decimal(r) for r in RATE)

    ordered = [str(r["amount"]) for r in tenant.records.list("deal", sort="amount", limit=100).items]
    assert ordered == sorted(MONEY, key=Decimal)
    ordered = [str(r["rate"]) for r in tenant.records.list("deal", sort="-rate", limit=100).items]
    assert ordered == sorted(RATE, key=Decimal, reverse=True)
    # a cursor walks the same order page by page
    page, seen = tenant.records.list("deal", sort="amount", limit=2), []
    while True:
        seen += [str(r["amount"]) for r in page.items]
        if not page.next:
            break
        page = tenant.records.list("deal", sort="amount", limit=2, after=page.next)
    assert seen == sorted(MONEY, key=Decimal)

    def names(filters):
        return sorted(r["name"] for r in tenant.records.list("deal", filters=filters, limit=100).items)

    expect = sorted(r["name"] for r in rows() if Decimal(r["amount"]) >= Decimal("100.5"))
    assert names({"amount__gte": "100.5"}) == expect
    assert names({"amount__eq": "1.1"}) == ["d7"]
    assert names({"amount__lt": "0"}) == ["d1", "d3"]
    assert names({"amount__between": "0,1.10"}) == ["d2", "d4", "d7"]
    assert names({"amount__in": "0.01,99999999999999.99"}) == ["d0", "d2"]
    assert names({"rate__gt": "99999999999999.9998"}) == ["d0"]
    assert names({"share__lte": "-0.0001"}) == ["d1", "d6"]


def test_R4_money_where_conditions_compare_exactly_in_sql(tenant):
    tenant.records.create_many("deal", rows())
    entity = tenant.model.entities["deal"]
    t = tenant.schema.table("deal")
    ctx = tenant.field_context()
    system = {n: system_field(n) for n in SYSTEM_FIELD_TYPES}

    def names(text):
        cond = row_condition(compile_expression(text, entity=entity, model=tenant.model), entity,
                             tenant.field_types, system)
        with tenant.db.connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.select(t.c.name).where(cond.clause(t, ctx))))

    for text, keep in [("amount >= 100.5", lambda r: Decimal(r["amount"]) >= Decimal("100.5")),
                       ("amount == 1.1", lambda r: Decimal(r["amount"]) == Decimal("1.1")),
                       ("amount < 0", lambda r: Decimal(r["amount"]) < 0),
                       ("rate > 3.33333", lambda r: Decimal(r["rate"]) > Decimal("3.33333")),
                       ("amount in [0.01, 1.1]", lambda r: r["amount"] in ("0.01", "1.10")),
                       ("rate > 99999999999999.9998", lambda r: r["rate"] == "99999999999999.9999"),
                       ("cost > rate", lambda r: Decimal(r["amount"]) > Decimal(r["rate"])),
                       ("rate >= amount", lambda r: Decimal(r["rate"]) >= Decimal(r["amount"])),
                       ("share > rate", lambda r: Decimal(r["share"]) > Decimal(r["rate"]))]:
        assert names(text) == sorted(r["name"] for r in rows() if keep(r)), text

    # a role's `where` scope is such a condition
    big, _ = tenant.users.add("big", ["big"], password="initial-pass-1")
    seen = sorted(r["name"] for r in tenant.records.list("deal", big, limit=100).items)
    assert seen == sorted(r["name"] for r in rows() if Decimal(r["amount"]) >= Decimal("100.5"))


def test_R4_an_old_sqlite_database_with_floating_money_is_converted_by_migrate(sqlite_url, tmp_path):
    path = tmp_path / "money.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    t = Tenant.load(path, db_url=sqlite_url)
    migrate(t)
    made = [t.records.create("deal", {"name": f"o{i}", "amount": m, "rate": r})
            for i, (m, r) in enumerate([("1234.50", "3.3333"), ("-0.01", "0.0001"), ("12345678.99", "-12.5000")])]
    t.dispose()
    old_format(Path(sqlite_url.removeprefix("sqlite:///")))

    t = Tenant.load(path, db_url=sqlite_url)
    try:
        with pytest.raises(Exception):
            check_schema(t)   # the old storage asks for migrate before anything reads it
        text = Planner(t).plan().render()
        assert "deal.amount" in text and "deal.rate" in text, text
        migrate(t)
        check_schema(t)
        for rec, (m, r) in zip(made, [("1234.50", "3.3333"), ("-0.01", "0.0001"), ("12345678.99", "-12.5000")]):
            got = t.records.get("deal", rec["id"])
            assert (str(got["amount"]), str(got["rate"])) == (m, r)
        assert Planner(t).plan().empty   # idempotent
        big = t.records.create("deal", {"name": "big", "amount": "99999999999999.99"})
        assert str(t.records.get("deal", big["id"])["amount"]) == "99999999999999.99"
    finally:
        t.dispose()


def old_format(db: Path) -> None:
    """Rewrite a SQLite database as the Formwork before this fix left it: decimal columns NUMERIC
    (SQLite keeps REAL or INTEGER in them), no AUTOINCREMENT, and a schema fingerprint of that time."""
    import sqlite3

    con = sqlite3.connect(db)
    con.execute("PRAGMA writable_schema=ON")
    for name, sql in con.execute("SELECT name, sql FROM sqlite_master WHERE type='table' AND name='deal'").fetchall():
        cols = [r[1] for r in con.execute(f'PRAGMA table_info("{name}")')]
        new = sql
        for col, kind in (("amount", "NUMERIC(18, 2)"), ("rate", "NUMERIC(18, 4)"), ("share", "NUMERIC(9, 4)"),
                          ("cost", "NUMERIC(18, 2)")):
            new = new.replace(f"{col} BIGINT", f"{col} {kind}")
        con.execute("UPDATE sqlite_master SET sql=? WHERE type='table' AND name=?", (new, name))
        if new != sql:
            scale = {"amount": 2, "rate": 4, "share": 4, "cost": 2}
            for col in cols:
                if col in scale:
                    con.execute(f'UPDATE "{name}" SET "{col}" = "{col}" / {10 ** scale[col]}.0 '
                                f'WHERE typeof("{col}") = \'integer\'')
    con.execute("UPDATE fw_config_versions SET fingerprint = 'before-exact-decimals'")
    con.commit()
    con.execute("PRAGMA writable_schema=OFF")
    con.close()


def test_R4_purged_archived_money_is_backed_up_as_the_exact_amount(db_url, tmp_path):
    from engine.schema.migrate import purge_archived

    path = tmp_path / "money.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    t = Tenant.load(path, db_url=db_url)
    migrate(t)
    rec = t.records.create("deal", {"name": "x", "amount": "99999999999999.99", "rate": "-0.0001"})
    t.dispose()
    path.write_text(CONFIG.replace("      amount: {type: money, label: Amount}\n", "")
                    .replace("      rate: {type: decimal, label: Rate}\n", "")
                    .replace('where: "amount >= 100.5"', 'where: "cost >= 100.5"'), encoding="utf-8")
    t = Tenant.load(path, db_url=db_url)
    try:
        migrate(t)                                     # amount and rate are archived, not dropped
        backup, dropped = purge_archived(t, tmp_path / "backup")
        kept = json.loads(backup.read_text(encoding="utf-8"))["columns"]["deal"]
        assert Decimal(str(kept["amount"][str(rec["id"])])) == Decimal("99999999999999.99")
        assert Decimal(str(kept["rate"][str(rec["id"])])) == Decimal("-0.0001")
    finally:
        t.dispose()
