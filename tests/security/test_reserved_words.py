"""Everyday words as names (issue #11 point 11): every SQL:2016 reserved word names a field, and
some name entities, on SQLite and PostgreSQL: migrate, create (records service, web form, JSON API),
filter, sort, expressions (`from` in backticks), CSV export and import."""
from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
from click.testing import CliRunner

from engine.cli import build_cli
from engine.errors import ValidationFailed

# ISO/IEC 9075-2:2016 <reserved word> (367 words).
SQL2016 = tuple("""
    abs acos all allocate alter and any are array array_agg array_max_cardinality as asensitive
    asin asymmetric at atan atomic authorization avg begin begin_frame begin_partition between
    bigint binary blob boolean both by call called cardinality cascaded case cast ceil ceiling char
    char_length character character_length check classifier clob close coalesce collate collect
    column commit condition connect constraint contains convert copy corr corresponding cos cosh
    count covar_pop covar_samp create cross cube cume_dist current current_catalog current_date
    current_default_transform_group current_path current_role current_row current_schema
    current_time current_timestamp current_transform_group_for_type current_user cursor cycle date
    day deallocate dec decfloat decimal declare default define delete dense_rank deref describe
    deterministic disconnect distinct double drop dynamic each element else empty end end_frame
    end_partition equals escape every except exec execute exists exp external extract false fetch
    filter first_value float floor for foreign frame_row free from full function fusion get global
    grant group grouping groups having hold hour identity in indicator initial inner inout
    insensitive insert int integer intersect intersection interval into is join json_array
    json_arrayagg json_exists json_object json_objectagg json_query json_table json_table_primitive
    json_value lag language large last_value lateral lead leading left like like_regex listagg ln
    local localtime localtimestamp log log10 lower match match_number match_recognize matches max
    member merge method min minute mod modifies module month multiset national natural nchar nclob
    new no none normalize not nth_value ntile null nullif numeric occurrences_regex octet_length of
    offset old omit on one only open or order out outer over overlaps overlay parameter partition
    pattern per percent percent_rank percentile_cont percentile_disc period portion position
    position_regex power precedes precision prepare primary procedure ptf range rank reads real
    recursive ref references referencing regr_avgx regr_avgy regr_count regr_intercept regr_r2
    regr_slope regr_sxx regr_sxy regr_syy release result return returns revoke right rollback
    rollup row row_number rows running savepoint scope scroll search second seek select sensitive
    session_user set show similar sin sinh skip smallint some specific specifictype sql
    sqlexception sqlstate sqlwarning sqrt start static stddev_pop stddev_samp submultiset subset
    substring substring_regex succeeds sum symmetric system system_time system_user table
    tablesample tan tanh then time timestamp timezone_hour timezone_minute to trailing translate
    translate_regex translation treat trigger trim trim_array true truncate uescape union unique
    unknown unnest update upper user using value values value_of var_pop var_samp varbinary varchar
    varying versioning when whenever where width_bucket window with within without year
""".split())
# More words a CRM admin reaches for: PostgreSQL-only reserved words, and names of wtforms.Form members.
EVERYDAY = ("comment", "returning", "variadic", "data", "meta", "errors", "process", "validate",
            "populate_obj", "sort", "q")
ENTITY_WORDS = ("lead", "user", "group", "select", "table", "from", "where", "order")
# Typed fields among the words (every other word is a text field).
TYPED = {
    "lead": "{type: reference, to: lead}",
    "user": "{type: reference, to: user}",
    "date": "{type: date}", "start": "{type: date}", "end": "{type: date}",
    "year": "{type: integer}", "month": "{type: integer}", "count": "{type: integer}",
    "from": "{type: integer}", "to": "{type: integer}", "rank": "{type: integer}",
    "value": "{type: decimal}", "percent": "{type: percent}",
    "position": "{type: text, label: Job title}",
    "rows": None,  # the subtable, below
}
FIELDS = SQL2016 + EVERYDAY
TEXT_WORDS = [w for w in FIELDS if w not in TYPED]
PASSWORD = "chief-pass-2x"


def config_text() -> str:
    out = ["tenant: {name: words, label: Words, locale: en, timezone: UTC}",
           "roles:", "  admin: {label: Admin, all: true}", "entities:"]
    for ent in ENTITY_WORDS[:-1]:
        out += [f"  {ent}:", f"    label: E-{ent}", "    title: result",
                "    fields:", "      result: {type: text, label: Result}"]
    out += ["  order:", "    label: Order", "    title: result", "    fields:"]
    for w in (w for w in FIELDS if TYPED.get(w, "") is not None):
        out.append(f"      {w}: {TYPED.get(w, '{type: text}')}")
    out += ["      rows:", "        type: subtable", "        fields:",
            "          value: {type: integer}", "          from: {type: text}", "          order: {type: text}",
            "      total: {type: formula, returns: integer, expr: \"`from` + `to` + count\"}",
            "      row_sum: {type: formula, returns: integer, expr: \"sum(rows.`value`)\"}",
            "      late: {type: formula, returns: boolean, expr: \"`end` > start and `in` == 'x'\"}",
            "    rules:",
            "      - {check: \"`to` >= `from`\", message: \"to must not be before from\"}"]
    return "\n".join(out) + "\n"


def values(i: int, lead_id: int, user_id: int) -> dict:
    out = {w: f"{w}-{i}" for w in TEXT_WORDS}
    out.update({"lead": lead_id, "user": user_id, "date": "2026-03-0%d" % (i + 1), "start": "2026-01-01",
                "end": "2026-02-01", "year": 2020 + i, "month": i + 1, "count": i, "from": i, "to": 10 + i,
                "rank": 100 - i, "value": f"{i}.5", "percent": 10 * i, "position": f"manager-{i}",
                "rows": [{"value": i, "from": "a", "order": "b"}, {"value": 2, "from": "c", "order": "d"}]})
    return out


@pytest.fixture
def words(tmp_path, db_url, h):
    from web import create_app

    tenant = h.make_tenant(db_url, tmp_path, config_text())
    tenant.users.add("boss", ["admin"], password="chief-pass-1")
    tenant.users.change_password("boss", "chief-pass-1", PASSWORD)
    boss = tenant.users.by_username("boss")
    svc = tenant.records
    lead = svc.create("lead", {"result": "a lead"}, boss)
    user = svc.create("user", {"result": "a user row"}, boss)
    for ent in ENTITY_WORDS[2:-1]:
        svc.create(ent, {"result": f"in {ent}"}, boss)
    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "x", "FORMWORK_RELOAD_INTERVAL": -1})
    yield tenant, boss, lead["id"], user["id"], app
    tenant.dispose()


def test_security_sql2016_reserved_words_as_names_records_filter_sort_expressions(words):
    tenant, boss, lead_id, user_id, _app = words
    svc = tenant.records
    created = [svc.create("order", values(i, lead_id, user_id), boss) for i in range(3)]
    rec = svc.get("order", created[1]["id"], boss)
    for w in TEXT_WORDS:
        assert rec[w] == f"{w}-1", w
    assert rec["date"] == date(2026, 3, 2) and rec["value"] == Decimal("1.5") and rec["lead"] == lead_id
    assert rec["position"] == "manager-1" and [r["value"] for r in rec["rows"]] == [1, 2]
    assert rec["total"] == 1 + 11 + 1 and rec["row_sum"] == 3 and rec["late"] is False
    with pytest.raises(ValidationFailed) as err:
        svc.create("order", {**values(5, lead_id, user_id), "from": 50, "to": 1}, boss)
    assert "to must not be before from" in str(err.value)

    for w in TEXT_WORDS:  # filter by every word, sort by every word
        page = svc.list("order", boss, filters={w: f"{w}-2"})
        assert [r["id"] for r in page.items] == [created[2]["id"]], w
        page = svc.list("order", boss, sort=f"-{w}")
        assert [r["id"] for r in page.items] == [c["id"] for c in reversed(created)], w
    for w, val, want in (("from", "1", 1), ("to__gte", "11", 2), ("date__lt", "2026-03-02", 1),
                         ("value__gt", "0.5", 2), ("year", "2022", 1), ("rank__lte", "99", 2),
                         ("lead", str(lead_id), 3), ("count__in", "0,1", 2), ("percent__gte", "10", 2)):
        assert len(svc.list("order", boss, filters={w: val}).items) == want, w
    for w in ("order", "from", "date", "value", "year", "user", "group", "end", "position"):
        page = svc.list("order", boss, sort=w)
        assert [r["id"] for r in page.items] == [c["id"] for c in created], w


def test_security_sql2016_reserved_words_through_web_form_and_api(words, h):
    tenant, boss, lead_id, user_id, app = words
    client = app.test_client()
    assert h.login(client, "boss", PASSWORD).status_code == 302
    page = client.get("/e/order/new")
    assert page.status_code == 200
    form = {w: f"{w}-web" for w in TEXT_WORDS}
    form.update({"lead": str(lead_id), "user": str(user_id), "date": "2026-05-01", "start": "2026-01-01",
                 "end": "2026-01-02", "year": "2030", "month": "5", "count": "7", "from": "1", "to": "2",
                 "rank": "3", "value": "4.25", "percent": "50", "position": "web-title",
                 "rows-0-value": "9", "rows-0-from": "f", "rows-0-order": "o",
                 "csrf_token": h.csrf_from(page.get_data(as_text=True))})
    resp = client.post("/e/order/new", data=form)
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    rid = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    rec = tenant.records.get("order", rid, boss)
    assert all(rec[w] == f"{w}-web" for w in TEXT_WORDS)
    assert rec["total"] == 10 and rec["row_sum"] == 9 and rec["position"] == "web-title"
    edit = client.get(f"/e/order/{rid}/edit")
    assert edit.status_code == 200 and "validate-web" in edit.get_data(as_text=True)
    for ent in ENTITY_WORDS:
        assert client.get(f"/e/{ent}/").status_code == 200, ent

    token = h.csrf_from(page.get_data(as_text=True))
    body = {w: f"{w}-api" for w in TEXT_WORDS}
    body.update({"lead": lead_id, "from": 3, "to": 4, "count": 1, "date": "2026-06-01", "value": "1.5",
                 "rows": [{"value": 5, "from": "x", "order": "y"}]})
    resp = client.post("/api/v1/order", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 201, resp.get_data(as_text=True)[:2000]
    made = resp.get_json()
    assert made["from"] == 3 and made["order"] == "order-api" and made["total"] == 8
    resp = client.get("/api/v1/order?from=3&sort=-order&select=select-api")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [r["id"] for r in resp.get_json()["items"]] == [made["id"]]
    resp = client.get("/api/v1/order?sort__eq=sort-api&q__eq=q-api&sort=order")  # list params vs fields
    assert [r["id"] for r in resp.get_json()["items"]] == [made["id"]], resp.get_data(as_text=True)
    resp = client.get("/api/v1/order?sort=from")
    assert [r["from"] for r in resp.get_json()["items"]] == [1, 3]
    for ent in ENTITY_WORDS[:-1]:
        assert client.get(f"/api/v1/{ent}").status_code == 200, ent


def test_security_sql2016_reserved_words_csv_export_and_import(words, tmp_path, db_url):
    tenant, boss, lead_id, user_id, _app = words
    for i in range(2):
        tenant.records.create("order", values(i, lead_id, user_id), boss)
    config = str(tmp_path / "tenant.yaml")
    cli, runner = build_cli(), CliRunner()
    first = runner.invoke(cli, ["export", config, "order", "--db", db_url])
    assert first.exit_code == 0, first.output
    header = next(csv.reader(io.StringIO(first.stdout)))
    assert set(FIELDS) <= set(header)
    path = tmp_path / "orders.csv"
    path.write_text(first.stdout, encoding="utf-8")
    result = runner.invoke(cli, ["import", config, "order", str(path), "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "imported 2 order" in result.output
    again = runner.invoke(cli, ["export", config, "order", "--db", db_url])
    rows = list(csv.DictReader(io.StringIO(again.stdout)))
    assert len(rows) == 4 and rows[2:] == rows[:2]
    assert rows[3]["from"] == "1" and rows[3]["order"] == "order-1" and json.loads(rows[3]["rows"])[0]["value"] == 1
