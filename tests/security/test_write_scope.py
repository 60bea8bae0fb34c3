"""Writes only within scope (issue #11, point 4; R39 R3): a reference must point to a record the
writer may read — the same 422 whether the id does not exist or is out of scope, on the API, the web
form and an import — and `department` is limited to the departments the writer may place records in.
On SQLite and PostgreSQL."""
from __future__ import annotations

import json
import re

import pytest

from engine.errors import ValidationFailed
from engine.records.service import BulkFailed

CONFIG = """\
tenant: {name: scope, label: 范围测试, locale: en_US, timezone: Asia/Shanghai, currency: CNY}
departments:
  sales: {label: 销售部}
  sales_east: {label: 华东组, parent: sales}
  sales_north: {label: 华北组, parent: sales}
  finance: {label: 财务部}
roles:
  admin: {label: 管理员, all: true}
  rep:
    label: 销售代表
    entities:
      customer: {read: own, create: true, update: own, import: true}
      visit: {read: own, create: true, update: own, import: true}
  manager:
    label: 销售经理
    entities:
      customer: {read: department_tree, create: true, update: department_tree, import: true}
      visit: {read: department_tree, create: true, update: department_tree, import: true}
entities:
  customer:
    label: 客户
    title: name
    fields:
      name: {type: text, label: 公司名称, required: true, unique: true}
  visit:
    label: 拜访
    title: focus
    fields:
      focus: {type: text, label: 重点, required: true}
      customer: {type: reference, label: 客户, to: customer, required: true}
      also:
        type: subtable
        label: 同时拜访
        fields:
          customer: {type: reference, label: 客户, to: customer, required: true}
"""
PASSWORD = "correct-horse-9"
MISSING = 999999


@pytest.fixture
def tenant(db_url, tmp_path, h):
    t = h.make_tenant(db_url, tmp_path, CONFIG)
    for name, roles, dept, manages in [("rep", ["rep"], "sales_east", []), ("rep2", ["rep"], "sales_north", []),
                                       ("mgr", ["manager"], "sales", ["sales"]), ("root", ["admin"], None, [])]:
        t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")
        t.users.change_password(name, "initial-pass-1", PASSWORD)
    yield t
    t.dispose()


@pytest.fixture
def u(tenant):
    return {x.username: x for x in tenant.users.list(include_inactive=True)}


@pytest.fixture
def theirs(tenant, u):
    """A customer of rep2's, which rep may not read."""
    return tenant.records.create("customer", {"name": "别人的客户"}, u["rep2"])


@pytest.fixture
def mine(tenant, u):
    return tenant.records.create("customer", {"name": "我的客户"}, u["rep"])


def api(client, tenant, username):
    token = tenant.users.create_token(username)

    def call(method, path, body=None):
        return client.open(path, method=method, data=json.dumps(body, ensure_ascii=False),
                           content_type="application/json",
                           headers={"Authorization": f"Bearer {token}", "Accept-Language": "en"})
    return call


def no_such(value) -> str:
    return f"No such record: {value}"


def errors_of(fn) -> dict:
    with pytest.raises(ValidationFailed) as exc:
        fn()
    return exc.value.errors


# --- references ----------------------------------------------------------------------------------------

def test_security_reference_out_of_scope_is_refused_like_a_missing_id(tenant, u, theirs, mine):
    t, rep = tenant, u["rep"]
    create = lambda cid: t.records.create("visit", {"focus": "拜访", "customer": cid}, rep)  # noqa: E731
    assert errors_of(lambda: create(theirs["id"]))["customer"] == [no_such(theirs["id"])]
    assert errors_of(lambda: create(MISSING))["customer"] == [no_such(MISSING)]
    # by title (forms and imports may name the record): no oracle either
    assert errors_of(lambda: create("别人的客户"))["customer"] == [no_such("别人的客户")]
    assert errors_of(lambda: create("没有这家"))["customer"] == [no_such("没有这家")]
    # subtable rows too
    errs = errors_of(lambda: t.records.create("visit", {"focus": "拜访", "customer": mine["id"],
                                                        "also": [{"customer": theirs["id"]}]}, rep))
    assert errs["also.0.customer"] == [no_such(theirs["id"])]
    v = create(mine["id"])
    assert errors_of(lambda: t.records.update("visit", v["id"], {"customer": theirs["id"]}, rep))["customer"] \
        == [no_such(theirs["id"])]
    # the manager reads both teams, and the engine itself (no user) everything
    assert t.records.create("visit", {"focus": "经理", "customer": theirs["id"]}, u["mgr"])["customer"] == theirs["id"]
    assert t.records.create("visit", {"focus": "系统", "customer": theirs["id"]})["customer"] == theirs["id"]
    # a reference the record already had is not re-judged when something else changes
    t.records.update("customer", mine["id"], {"owner": u["rep2"].id, "department": "sales_north"}, u["root"])
    assert t.records.update("visit", v["id"], {"focus": "改重点"}, rep)["focus"] == "改重点"


def test_security_reference_out_of_scope_on_the_api_answers_the_missing_ids_422(client, tenant, u, theirs, mine):
    call = api(client, tenant, "rep")
    out = call("POST", "/api/v1/visit", {"focus": "拜访", "customer": theirs["id"]})
    missing = call("POST", "/api/v1/visit", {"focus": "拜访", "customer": MISSING})
    assert out.status_code == missing.status_code == 422
    assert out.get_json()["errors"]["customer"] == [no_such(theirs["id"])]
    assert missing.get_json()["errors"]["customer"] == [no_such(MISSING)]
    ok = call("POST", "/api/v1/visit", {"focus": "拜访", "customer": mine["id"]})
    assert ok.status_code == 201
    rec = ok.get_json()
    resp = call("PATCH", f"/api/v1/visit/{rec['id']}", {"customer": theirs["id"], "version": rec["version"]})
    assert resp.status_code == 422 and resp.get_json()["errors"] == {"customer": [no_such(theirs["id"])]}


def test_security_reference_out_of_scope_on_the_web_form_answers_the_missing_ids_422(client, h, tenant, u, theirs):
    assert h.login(client, "rep").status_code == 302
    pages = {}
    for cid in (theirs["id"], MISSING):
        csrf = h.csrf_from(client.get("/e/visit/new").get_data(as_text=True))
        resp = client.post("/e/visit/new", data={"focus": "拜访", "customer": str(cid), "csrf_token": csrf})
        assert resp.status_code == 422
        pages[cid] = re.sub(r"\s+", " ", resp.get_data(as_text=True))
    assert no_such(theirs["id"]) in pages[theirs["id"]] and no_such(MISSING) in pages[MISSING]
    assert "别人的客户" not in pages[theirs["id"]]
    assert tenant.records.count("visit") == 0


def test_security_reference_out_of_scope_in_an_import_is_a_missing_id_row_error(tenant, u, theirs, mine):
    with pytest.raises(BulkFailed) as exc:
        tenant.records.create_many("visit", [{"focus": "a", "customer": mine["id"]},
                                             {"focus": "b", "customer": theirs["id"]},
                                             {"focus": "c", "customer": MISSING},
                                             {"focus": "d", "customer": mine["id"], "also": [{"customer": theirs["id"]}]}],
                                   u["rep"])
    got = [(e.row, e.field, e.message) for e in exc.value.row_errors]
    assert got == [(2, "customer", no_such(theirs["id"])), (3, "customer", no_such(MISSING)),
                   (4, "also.0.customer", no_such(theirs["id"]))]
    assert tenant.records.count("visit") == 0


# --- department placement ----------------------------------------------------------------------------

def test_security_department_is_limited_to_where_the_writer_may_place_records(tenant, u):
    t, rep = tenant, u["rep"]
    errs = errors_of(lambda: t.records.create("customer", {"name": "放到财务", "department": "finance"}, rep))
    assert list(errs) == ["department"] and "finance" in errs["department"][0]
    errs = errors_of(lambda: t.records.create("customer", {"name": "放到华北", "department": "sales_north"}, rep))
    assert list(errs) == ["department"]
    c = t.records.create("customer", {"name": "本组", "department": "sales_east"}, rep)
    assert c["department"] == "sales_east"
    assert errors_of(lambda: t.records.update("customer", c["id"], {"department": "finance"}, rep))["department"]
    assert t.records.get("customer", c["id"])["department"] == "sales_east"
    # a manager places records anywhere in the tree they manage, not outside it; an admin anywhere
    assert t.records.create("customer", {"name": "华北", "department": "sales_north"}, u["mgr"])["department"] == "sales_north"
    assert errors_of(lambda: t.records.create("customer", {"name": "财务", "department": "finance"}, u["mgr"]))
    assert t.records.create("customer", {"name": "任意", "department": "finance"}, u["root"])["department"] == "finance"
    with pytest.raises(BulkFailed) as exc:
        t.records.create_many("customer", [{"name": "导入一"}, {"name": "导入二", "department": "finance"}], rep)
    assert [(e.row, e.field) for e in exc.value.row_errors] == [(2, "department")]


def test_security_department_outside_placement_on_the_api_is_422(client, tenant, u):
    call = api(client, tenant, "rep")
    resp = call("POST", "/api/v1/customer", {"name": "放到财务", "department": "finance"})
    assert resp.status_code == 422 and list(resp.get_json()["errors"]) == ["department"]
    resp = call("POST", "/api/v1/customer", {"name": "本组"})
    assert resp.status_code == 201 and resp.get_json()["department"] == "sales_east"
    rec = resp.get_json()
    resp = call("PATCH", f"/api/v1/customer/{rec['id']}", {"department": "sales", "version": rec["version"]})
    assert resp.status_code == 422 and list(resp.get_json()["errors"]) == ["department"]
    assert tenant.records.get("customer", rec["id"])["department"] == "sales_east"
