"""JSON API v1 (R47) through Flask's test client, on SQLite and PostgreSQL, over tests/data/crm_v1.yaml."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.schema.migrate import migrate
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).resolve().parent.parent / "data"
PASSWORD = "correct-horse-9"


@pytest.fixture
def tenant(db_url):
    """Overrides conftest's hand-built tenant: the small stable CRM config, migrated."""
    t = Tenant.load(DATA / "crm_v1.yaml", db_url=db_url)
    migrate_empty(t)
    yield t
    t.dispose()


class Api:
    """The test client with a Bearer token and JSON bodies."""

    def __init__(self, client, token, lang="en"):
        self.client = client
        self.token = token
        self.lang = lang

    def call(self, method, path, body=None, headers=None, token=None, **kw):
        hdrs = {"Authorization": f"Bearer {token or self.token}"}
        if self.lang:
            hdrs["Accept-Language"] = self.lang
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}
        if body is not None:
            kw["data"] = json.dumps(body, ensure_ascii=False)
            kw["content_type"] = "application/json"
        return self.client.open(path, method=method, headers=hdrs, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture
def admin(tenant):
    user, _ = tenant.users.add("api.admin", ["admin"], password="initial-pass-1", display_name="管理员")
    return user


@pytest.fixture
def token(tenant, admin):
    return tenant.users.create_token("api.admin", label="tests")


@pytest.fixture
def api(client, token):
    return Api(client, token)


@pytest.fixture
def other(tenant, client):
    """A second API user (王芳) for conflicts."""
    tenant.users.add("wang", ["admin"], password="initial-pass-2", display_name="王芳")
    return Api(client, tenant.users.create_token("wang"))


def new_customer(api, **values):
    body = {"name": "上海云启科技有限公司", "industry": "制造业", **values}
    resp = api.post("/api/v1/customer", body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def assert_error(resp, status, contains=None):
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.is_json, resp.get_data(as_text=True)
    body = resp.get_json()
    assert isinstance(body.get("error"), str) and body["error"], body
    if contains:
        assert contains in body["error"], body
    return body


# --------------------------------------------------------------------------------- discovery

def test_r47_index_describes_entities_and_fields(api):
    resp = api.get("/api/v1/")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["search"] == "/api/v1/search"
    entities = {e["name"]: e for e in body["entities"]}
    assert set(entities) == {"customer", "contact", "follow_up", "product", "quote"}
    customer = entities["customer"]
    assert customer["url"] == "/api/v1/customer" and customer["title"] == "name"
    assert customer["label"] == "Customer"
    fields = {f["name"]: f for f in customer["fields"]}
    assert fields["name"]["required"] and fields["name"]["unique"] and fields["name"]["max_length"] == 200
    assert fields["score"]["read_only"] and fields["score"]["type"] == "formula"
    assert [o["value"] for o in fields["industry"]["options"]] == ["制造业", "金融业", "教育业"]
    lines = {f["name"]: f for f in entities["quote"]["fields"]}["lines"]
    assert {f["name"] for f in lines["fields"]} == {"product", "quantity", "unit_price", "line_total"}
    assert {f["name"]: f for f in lines["fields"]}["line_total"]["read_only"]
    assert "version" in customer["system_fields"]


# ----------------------------------------------------------------------------- create / read

def test_r47_create_returns_201_location_and_the_record(api):
    resp = api.post("/api/v1/customer", {"name": "北京华信", "industry": "金融业", "phone": "13812345678",
                                         "revenue": 12.3, "rating": 3, "founded": "2019-05-01"})
    assert resp.status_code == 201, resp.get_json()
    rec = resp.get_json()
    assert resp.headers["Location"] == f"/api/v1/customer/{rec['id']}"
    assert resp.headers["ETag"] == '"1"'
    assert rec["version"] == 1 and rec["name"] == "北京华信"
    assert rec["phone"] == "+8613812345678"          # stored normalised
    assert rec["revenue"] == "12.30"                  # money stays exact (never a float)
    assert rec["score"] == 60                         # formula computed, read-only
    assert rec["level"] == "C"                        # default applied
    got = api.get(resp.headers["Location"])
    assert got.status_code == 200 and got.get_json() == rec
    assert got.headers["ETag"] == '"1"'


def test_r47_subtable_is_a_list_of_row_objects_with_formulas(api):
    cust = new_customer(api)
    prod = api.post("/api/v1/product", {"name": "服务器", "price": "100"}).get_json()
    resp = api.post("/api/v1/quote", {"customer": cust["id"], "lines": [
        {"product": prod["id"], "quantity": 2, "unit_price": "3.50"},
        {"product": prod["id"], "quantity": 1, "unit_price": "10"}]})
    assert resp.status_code == 201, resp.get_json()
    quote = resp.get_json()
    assert quote["code"].startswith("BJ-")
    assert [(r["quantity"], r["unit_price"], r["line_total"]) for r in quote["lines"]] == \
        [(2, "3.50", "7.00"), (1, "10.00", "10.00")]
    assert quote["total"] == "17.00"
    listed = api.get("/api/v1/quote").get_json()["items"][0]
    assert listed["lines"] == quote["lines"] and listed["total"] == "17.00"


def test_r47_formula_fields_are_read_only(api):
    resp = api.post("/api/v1/customer", {"name": "甲", "industry": "制造业", "rating": 2, "score": 100})
    assert resp.status_code == 422
    assert list(resp.get_json()["errors"]) == ["score"]
    rec = new_customer(api, rating=2)
    assert rec["score"] == 40
    bad = api.patch(f"/api/v1/customer/{rec['id']}", {"score": 99, "version": 1})
    assert bad.status_code == 422 and "score" in bad.get_json()["errors"]
    # Sending back exactly what was read (system fields and formulas included) is harmless.
    echo = dict(rec, notes="回访")
    ok = api.patch(f"/api/v1/customer/{rec['id']}", echo)
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["notes"] == "回访" and ok.get_json()["score"] == 40


# --------------------------------------------------------------------------------- validation

def test_r47_422_reports_every_field_at_once(api):
    resp = api.post("/api/v1/customer", {"industry": "农业", "rating": 9, "phone": "12", "founded": "soon"})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert set(errors) == {"name", "industry", "rating", "phone", "founded"}
    assert all(isinstance(m, list) and m and all(isinstance(x, str) for x in m) for m in errors.values())
    assert errors["name"] == ["This field is required"]
    assert "农业" in errors["industry"][0]


def test_r47_422_record_rule_under_record_key(api):
    resp = api.post("/api/v1/customer", {"name": "乙", "industry": "制造业", "level": "A"})
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"_record": ["A类客户必须填写电话"]}


def test_r47_422_subtable_errors_keyed_by_row(api):
    cust = new_customer(api)
    prod = api.post("/api/v1/product", {"name": "软件"}).get_json()
    resp = api.post("/api/v1/quote", {"customer": cust["id"], "lines": [
        {"product": prod["id"], "quantity": 1, "unit_price": "1"},
        {"product": prod["id"], "unit_price": "x"}]})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert "lines.1.quantity" in errors and "lines.1.unit_price" in errors
    assert not any(k.startswith("lines.0") for k in errors)


def test_r47_unknown_body_field_is_422_not_ignored(api):
    resp = api.post("/api/v1/customer", {"name": "丙", "industry": "制造业", "nmae": "typo"})
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"nmae": ["Unknown field"]}
    rec = new_customer(api)
    resp = api.patch(f"/api/v1/customer/{rec['id']}", {"version": 1, "colour": "red"})
    assert resp.status_code == 422 and "colour" in resp.get_json()["errors"]


def test_r47_messages_follow_accept_language_then_user_locale(api, tenant, client):
    zh = api.post("/api/v1/customer", {"industry": "制造业"}, headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert zh.get_json()["errors"]["name"] == ["必填"]
    en = api.post("/api/v1/customer", {"industry": "制造业"}, headers={"Accept-Language": "en-US,en;q=0.8"})
    assert en.get_json()["errors"]["name"] == ["This field is required"]
    # No Accept-Language: the user's saved locale, else the tenant's (zh_CN here).
    tenant.users.add("emma", ["admin"], password="initial-pass-3", locale="en_US")
    emma = Api(client, tenant.users.create_token("emma"), lang=None)
    assert emma.post("/api/v1/customer", {"industry": "制造业"}).get_json()["errors"]["name"] == \
        ["This field is required"]
    default = Api(client, api.token, lang=None)
    assert default.post("/api/v1/customer", {"industry": "制造业"}).get_json()["errors"]["name"] == ["必填"]
    assert default.get("/api/v1/customer/424242").get_json()["error"] == "记录不存在"


@pytest.mark.parametrize("kwargs, message", [
    ({"data": "name=x", "content_type": "application/x-www-form-urlencoded"}, "Content-Type: application/json"),
    ({"data": "{not json", "content_type": "application/json"}, "not valid JSON"),
    ({"data": "[1, 2]", "content_type": "application/json"}, "must be a JSON object"),
    ({"data": "null", "content_type": "application/json"}, "must be a JSON object"),
    ({"data": b"\xff\xfe{", "content_type": "application/json"}, "UTF-8"),
    ({"data": '{"rating": NaN}', "content_type": "application/json"}, "not valid JSON"),
    ({}, "Content-Type: application/json"),
])
def test_non_json_body_is_400(api, kwargs, message):
    assert_error(api.post("/api/v1/customer", **kwargs), 400, message)
    rec_id = 1
    resp = api.patch(f"/api/v1/customer/{rec_id}", headers={"If-Match": '"1"'}, **kwargs)
    assert resp.status_code in (400, 404)


# ------------------------------------------------------------------------------------ listing

def test_r47_list_pagination_walk_with_next(api):
    ids = {new_customer(api, name=f"客户{i:02d}")["id"] for i in range(7)}
    seen, pages, url = [], 0, "/api/v1/customer?limit=3"
    while url:
        resp = api.get(url)
        assert resp.status_code == 200
        body = resp.get_json()
        assert set(body) == {"items", "next"}
        assert len(body["items"]) <= 3
        seen += [r["id"] for r in body["items"]]
        pages += 1
        url = f"/api/v1/customer?limit=3&after={body['next']}" if body["next"] else None
    assert pages == 3 and seen == sorted(ids, reverse=True)          # newest first by default
    # A sort on a field walks in that order, and the cursor only fits that sort.
    names, url = [], "/api/v1/customer?limit=2&sort=name"
    while url:
        body = api.get(url).get_json()
        names += [r["name"] for r in body["items"]]
        url = f"/api/v1/customer?limit=2&sort=name&after={body['next']}" if body["next"] else None
    assert names == sorted(f"客户{i:02d}" for i in range(7))
    first = api.get("/api/v1/customer?limit=2&sort=name").get_json()["next"]
    assert_error(api.get(f"/api/v1/customer?limit=2&sort=-rating&after={first}"), 400, "cursor")
    assert_error(api.get("/api/v1/customer?after=garbage!"), 400, "cursor")
    assert api.get("/api/v1/customer?limit=7").get_json()["next"] is None


def test_r47_list_typed_filters_and_search(api):
    new_customer(api, name="华东制造", industry="制造业", level="A", phone="13800000001", rating=5,
                 revenue="1000000", founded="2010-01-01")
    new_customer(api, name="华南金融", industry="金融业", level="B", rating=3, revenue="500",
                 founded="2020-06-01")
    new_customer(api, name="北方教育", industry="教育业", rating=1, founded="2022-03-15")

    def names(query):
        resp = api.get(f"/api/v1/customer?{query}")
        assert resp.status_code == 200, resp.get_json()
        return sorted(r["name"] for r in resp.get_json()["items"])

    assert names("level=A") == ["华东制造"]
    assert names("level__ne=A") == ["北方教育", "华南金融"]
    assert names("industry__in=金融业,教育业") == ["北方教育", "华南金融"]
    assert names("industry__in=金融业&industry__in=教育业") == ["北方教育", "华南金融"]
    assert names("rating__gte=3") == ["华东制造", "华南金融"]
    assert names("rating__lt=3") == ["北方教育"]
    assert names("revenue__between=100,2000") == ["华南金融"]
    assert names("founded__gte=2020-01-01") == ["北方教育", "华南金融"]
    assert names("name__contains=华") == ["华东制造", "华南金融"]
    assert names("phone__empty=1") == ["北方教育", "华南金融"]
    assert names("phone__not_empty=1") == ["华东制造"]
    assert names("q=金融") == ["华南金融"]
    assert names("q=13800000001") == ["华东制造"]
    assert names("rating__gte=2&level=B") == ["华南金融"]
    assert [r["rating"] for r in api.get("/api/v1/customer?sort=-rating").get_json()["items"]] == [5, 3, 1]


def test_r47_bad_filters_are_400_naming_the_field(api):
    assert_error(api.get("/api/v1/customer?rating__contains=3"), 400, "rating")
    assert_error(api.get("/api/v1/customer?rating__gte=abc"), 400, "rating")
    assert_error(api.get("/api/v1/customer?founded__gte=yesterday"), 400, "founded")
    assert_error(api.get("/api/v1/customer?level=A&level=B"), 400, "level")
    assert_error(api.get("/api/v1/customer?sort=nosuch"), 400, "nosuch")
    assert_error(api.get("/api/v1/customer?lines=1"), 400)


def test_r47_unknown_query_parameters_are_400(api):
    body = assert_error(api.get("/api/v1/customer?bogus=1"), 400)
    assert body == {"error": "unknown query parameter 'bogus'"}
    assert_error(api.get("/api/v1/customer?nosuch__eq=1"), 400, "unknown query parameter 'nosuch__eq'")
    assert_error(api.get("/api/v1/customer?page=2"), 400, "'page'")
    rec = new_customer(api)
    assert_error(api.get(f"/api/v1/customer/{rec['id']}?expand=1"), 400, "unknown query parameter 'expand'")
    assert_error(api.get(f"/api/v1/customer/{rec['id']}/history?x=1"), 400, "'x'")
    assert_error(api.post("/api/v1/customer?dry_run=1", {"name": "x", "industry": "制造业"}), 400, "dry_run")
    assert_error(api.get("/api/v1/?x=1"), 400, "'x'")
    for bad in ("0", "-1", "abc", "501"):
        assert_error(api.get(f"/api/v1/customer?limit={bad}"), 400, "limit")
    assert_error(api.get("/api/v1/customer?sort=name&sort=-name"), 400, "sort")


# ----------------------------------------------------------------------------------- updating

def test_r47_patch_with_body_version(api):
    rec = new_customer(api)
    resp = api.patch(f"/api/v1/customer/{rec['id']}", {"version": 1, "rating": 4})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["version"] == 2 and body["rating"] == 4 and body["score"] == 80
    assert body["name"] == rec["name"]                 # PATCH merges: untouched fields stay
    assert resp.headers["ETag"] == '"2"'


@pytest.mark.parametrize("header", ['"1"', "1", 'W/"1"'])
def test_r47_patch_with_if_match(api, header):
    rec = new_customer(api)
    resp = api.patch(f"/api/v1/customer/{rec['id']}", {"rating": 1}, headers={"If-Match": header})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["version"] == 2


def test_r47_patch_without_version_is_428(api):
    rec = new_customer(api)
    body = assert_error(api.patch(f"/api/v1/customer/{rec['id']}", {"rating": 1}), 428, "version")
    assert "If-Match" in body["error"]
    assert_error(api.patch(f"/api/v1/customer/{rec['id']}", {"rating": 1, "version": None}), 428)
    assert api.get(f"/api/v1/customer/{rec['id']}").get_json()["version"] == 1
    # If-Match: * is the explicit "whatever the current version" opt-out.
    assert api.patch(f"/api/v1/customer/{rec['id']}", {"rating": 1}, headers={"If-Match": "*"}).status_code == 200


def test_r47_patch_version_must_be_a_whole_number(api):
    rec = new_customer(api)
    resp = api.patch(f"/api/v1/customer/{rec['id']}", {"version": "abc"})
    assert resp.status_code == 422 and list(resp.get_json()["errors"]) == ["version"]
    assert api.patch(f"/api/v1/customer/{rec['id']}", {"version": True}).status_code == 422
    assert api.patch(f"/api/v1/customer/{rec['id']}", {"version": 1.5}).status_code == 422
    assert_error(api.patch(f"/api/v1/customer/{rec['id']}", {}, headers={"If-Match": "abc"}), 400, "If-Match")
    assert_error(api.patch(f"/api/v1/customer/{rec['id']}", {"version": 1}, headers={"If-Match": '"2"'}),
                 400, "disagree")


def _stale_setup(api, other):
    rec = new_customer(api, rating=1)
    moved = other.patch(f"/api/v1/customer/{rec['id']}", {"version": 1, "rating": 5, "notes": "改了"})
    assert moved.status_code == 200
    return rec


def _assert_conflict(resp):
    body = assert_error(resp, 409)
    assert body["current_version"] == 2
    assert body["changed_by"] == "wang"
    assert body["changes"]["rating"] == [1, 5] and body["changes"]["notes"] == [None, "改了"]
    assert "wang" in body["error"]


def test_r47_stale_version_in_body_is_409(api, other):
    rec = _stale_setup(api, other)
    _assert_conflict(api.patch(f"/api/v1/customer/{rec['id']}", {"version": 1, "rating": 2}))
    assert api.get(f"/api/v1/customer/{rec['id']}").get_json()["rating"] == 5


def test_r47_stale_if_match_is_409(api, other):
    rec = _stale_setup(api, other)
    _assert_conflict(api.patch(f"/api/v1/customer/{rec['id']}", {"rating": 2}, headers={"If-Match": '"1"'}))


# ----------------------------------------------------------------------------------- deleting

def test_r47_delete_is_204_then_404(api):
    rec = new_customer(api)
    resp = api.delete(f"/api/v1/customer/{rec['id']}")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert_error(api.get(f"/api/v1/customer/{rec['id']}"), 404)
    assert_error(api.delete(f"/api/v1/customer/{rec['id']}"), 404)


def test_r47_delete_refused_while_referenced_is_409(api):
    cust = new_customer(api)
    contact = api.post("/api/v1/contact", {"name": "张伟", "customer": cust["id"]})
    assert contact.status_code == 201, contact.get_json()
    body = assert_error(api.delete(f"/api/v1/customer/{cust['id']}"), 409)
    assert body["errors"]["_record"] == [body["error"]]
    assert "current_version" not in body
    assert api.get(f"/api/v1/customer/{cust['id']}").status_code == 200
    assert api.delete(f"/api/v1/contact/{contact.get_json()['id']}").status_code == 204
    assert api.delete(f"/api/v1/customer/{cust['id']}").status_code == 204


def test_r47_delete_with_stale_if_match_is_409(api, other):
    rec = _stale_setup(api, other)
    _assert_conflict(api.delete(f"/api/v1/customer/{rec['id']}", headers={"If-Match": '"1"'}))
    assert api.delete(f"/api/v1/customer/{rec['id']}", headers={"If-Match": '"2"'}).status_code == 204


# ------------------------------------------------------------------------------ history, search

def test_r43_history_is_the_audit_timeline(api, other):
    rec = _stale_setup(api, other)
    resp = api.get(f"/api/v1/customer/{rec['id']}/history")
    assert resp.status_code == 200
    items = resp.get_json()["items"]
    assert [i["action"] for i in items] == ["update", "create"]
    assert items[0]["username"] == "wang" and items[0]["changes"]["rating"] == [1, 5]
    assert items[1]["username"] == "api.admin" and items[1]["changes"]["name"] == [None, rec["name"]]
    assert items[0]["at"].endswith("+00:00")


def test_r10_quick_search(api):
    cust = new_customer(api, name="杭州西湖贸易", phone="13912345678")
    api.post("/api/v1/contact", {"name": "西湖张三", "customer": cust["id"], "mobile": "13700000000"})
    resp = api.get("/api/v1/search?q=西湖")
    assert resp.status_code == 200
    hits = resp.get_json()["items"]
    assert {(h["entity"], h["title"]) for h in hits} == {("customer", "杭州西湖贸易"), ("contact", "西湖张三")}
    assert all(h["url"] == f"/api/v1/{h['entity']}/{h['id']}" for h in hits)
    by_phone = api.get("/api/v1/search?q=1391234").get_json()["items"]
    assert [h["id"] for h in by_phone if h["entity"] == "customer"] == [cust["id"]]
    assert api.get("/api/v1/search?q=西湖&limit=1").get_json()["items"].__len__() == 1
    assert_error(api.get("/api/v1/search"), 400, "'q'")
    assert_error(api.get("/api/v1/search?q=x&entity=customer"), 400, "unknown query parameter 'entity'")


# ------------------------------------------------------------------------------ 404 / 401 / 405

@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/nosuch"), ("POST", "/api/v1/nosuch"), ("GET", "/api/v1/nosuch/1"),
    ("PATCH", "/api/v1/nosuch/1"), ("DELETE", "/api/v1/nosuch/1"), ("GET", "/api/v1/nosuch/1/history"),
    ("GET", "/api/v1/nosuch/abc"),
])
def test_r47_unknown_entity_is_404(api, method, path):
    body = {"version": 1} if method in ("POST", "PATCH") else None
    assert_error(api.call(method, path, body), 404, "nosuch")


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/customer/999999"), ("PATCH", "/api/v1/customer/999999"),
    ("DELETE", "/api/v1/customer/999999"), ("GET", "/api/v1/customer/999999/history"),
    ("GET", "/api/v1/customer/abc"), ("DELETE", "/api/v1/customer/abc"), ("GET", "/api/v1/customer/1/nope"),
])
def test_r47_unknown_record_is_404(api, method, path):
    body = {"version": 1} if method == "PATCH" else None
    assert_error(api.call(method, path, body), 404)


def test_unsupported_method_is_json_405(api):
    rec = new_customer(api)
    assert_error(api.call("PUT", f"/api/v1/customer/{rec['id']}", {"version": 1}), 405)
    assert_error(api.call("POST", f"/api/v1/customer/{rec['id']}", {}), 405)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer fwt_not-a-real-token", "Basic YWRtaW46eA==",
                                    "Bearer " + "x" * 300])
def test_r47_no_or_bad_credentials_are_401(client, admin, header):
    headers = {"Authorization": header} if header else {}
    for method, path in (("GET", "/api/v1/"), ("GET", "/api/v1/customer"), ("POST", "/api/v1/customer"),
                         ("GET", "/api/v1/customer/1"), ("DELETE", "/api/v1/customer/1"),
                         ("GET", "/api/v1/search?q=x"), ("GET", "/api/v1/nosuch")):
        resp = client.open(path, method=method, headers=headers, json={} if method == "POST" else None)
        assert_error(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_r44_disabled_users_token_is_401_on_next_request(api, tenant):
    assert api.get("/api/v1/customer").status_code == 200
    tenant.users.disable("api.admin")
    resp = api.get("/api/v1/customer")
    assert_error(resp, 401)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    tenant.users.enable("api.admin")                  # re-enabling does not revive revoked tokens
    assert api.get("/api/v1/customer").status_code == 401


def test_revoked_token_is_401(api, tenant):
    assert api.get("/api/v1/").status_code == 200
    tenant.users.revoke_tokens("api.admin")
    assert_error(api.get("/api/v1/"), 401)


def test_r47_session_sign_in_also_works_with_csrf_on_writes(client, tenant, h):
    tenant.users.add("li.lei", ["admin"], password="initial-pass-1")
    tenant.users.change_password("li.lei", "initial-pass-1", PASSWORD)
    assert h.login(client, "li.lei", PASSWORD).status_code == 302
    assert client.get("/api/v1/customer").status_code == 200
    body = {"name": "会话客户", "industry": "制造业"}
    assert_error(client.post("/api/v1/customer", json=body), 400, "CSRF")
    csrf = h.csrf_from(client.get("/").get_data(as_text=True))
    resp = client.post("/api/v1/customer", json=body, headers={"X-CSRFToken": csrf})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.get_json()["created_by"] == tenant.users.by_username("li.lei").id


# ------------------------------------------------------------------------------ schema guard

def test_r50_api_refuses_a_database_behind_the_config_with_503(tenant, token, db_url):
    """The database was migrated for crm_v1; serving crm_v2 over it must wait for `formwork migrate`."""
    from web import create_app

    newer = Tenant.load(DATA / "crm_v2.yaml", db_url=db_url)
    try:
        app = create_app(newer, config={"TESTING": True, "SECRET_KEY": "test"})
        client = app.test_client()
        resp = client.get("/api/v1/customer", headers={"Authorization": f"Bearer {token}"})
        body = assert_error(resp, 503, "formwork plan")
        assert "Traceback" not in json.dumps(body)
        migrate(newer)
        assert client.get("/api/v1/customer", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        newer.dispose()


# ------------------------------------------------------------------- permissions (R39, R40, R41)

@pytest.fixture
def perm(db_url, tmp_path):
    """tests/data/perm.yaml: reps see their own customers, credit_limit hidden from them, no deletes."""
    from web import create_app

    t = Tenant.load(DATA / "perm.yaml", db_url=db_url)
    migrate(t)
    people = {"boss": (["admin"], None), "rep1": (["sales_rep"], "sales_east"),
              "rep2": (["sales_rep"], "sales_north"), "fin": (["finance"], "finance")}
    app = create_app(t, config={"TESTING": True, "SECRET_KEY": "test"})
    client = app.test_client()
    apis = {}
    for name, (roles, dept) in people.items():
        t.users.add(name, roles, department=dept, password="initial-pass-1")
        apis[name] = Api(client, t.users.create_token(name))
    apis["ids"] = {name: t.users.by_username(name).id for name in people}
    yield apis
    t.dispose()


def test_r39_reps_see_only_their_own_customers_through_the_api(perm):
    rep1, rep2, boss = perm["rep1"], perm["rep2"], perm["boss"]
    mine = rep1.post("/api/v1/customer", {"name": "华东一号"})
    assert mine.status_code == 201, mine.get_json()
    theirs = rep2.post("/api/v1/customer", {"name": "华北一号"}).get_json()
    assert [r["name"] for r in rep1.get("/api/v1/customer").get_json()["items"]] == ["华东一号"]
    assert {r["name"] for r in boss.get("/api/v1/customer").get_json()["items"]} == {"华北一号", "华东一号"}
    for method, path in (("GET", f"/api/v1/customer/{theirs['id']}"),
                         ("GET", f"/api/v1/customer/{theirs['id']}/history")):
        assert_error(rep1.call(method, path), 404)
    assert_error(rep1.patch(f"/api/v1/customer/{theirs['id']}", {"version": 1, "level": "A"}), 404)
    hits = rep1.get("/api/v1/search?q=一号").get_json()["items"]
    assert [(h["entity"], h["title"]) for h in hits] == [("customer", "华东一号")]


def test_r40_hidden_fields_are_absent_and_not_writable(perm):
    rep1, boss = perm["rep1"], perm["boss"]
    made = boss.post("/api/v1/customer", {"name": "授信客户", "credit_limit": "1000", "owner": perm["ids"]["rep1"]})
    assert made.status_code == 201, made.get_json()
    rec = rep1.get(f"/api/v1/customer/{made.get_json()['id']}").get_json()
    assert rec["name"] == "授信客户" and "credit_limit" not in rec
    listed = rep1.get("/api/v1/customer").get_json()["items"]
    assert listed and all("credit_limit" not in r for r in listed)
    resp = rep1.post("/api/v1/customer", {"name": "偷偷授信", "credit_limit": "5"})
    assert resp.status_code == 422 and "credit_limit" in resp.get_json()["errors"]
    assert_error(rep1.get("/api/v1/customer?credit_limit__gte=1"), 400, "credit_limit")
    index = {e["name"]: e for e in rep1.get("/api/v1/").get_json()["entities"]}
    assert "credit_limit" not in {f["name"] for f in index["customer"]["fields"]}
    assert index["customer"]["actions"] == ["create", "update"]
    boss_index = {e["name"]: e for e in boss.get("/api/v1/").get_json()["entities"]}
    assert "credit_limit" in {f["name"] for f in boss_index["customer"]["fields"]}


def test_r41_role_conditions_and_403_for_refused_actions(perm):
    boss, fin, rep1 = perm["boss"], perm["fin"], perm["rep1"]
    for name, level in (("甲级客户", "A"), ("乙级客户", "B")):
        assert boss.post("/api/v1/customer", {"name": name, "level": level}).status_code == 201
    assert [r["name"] for r in fin.get("/api/v1/customer").get_json()["items"]] == ["乙级客户"]
    assert_error(fin.post("/api/v1/customer", {"name": "财务建的"}), 403)
    own = rep1.post("/api/v1/customer", {"name": "我的客户"}).get_json()
    body = assert_error(rep1.delete(f"/api/v1/customer/{own['id']}"), 403)
    assert "Traceback" not in body["error"]
    assert rep1.get(f"/api/v1/customer/{own['id']}").status_code == 200
    assert {e["name"] for e in fin.get("/api/v1/").get_json()["entities"]} == {"customer"}


# ----------------------------------------------------------------------------- duplicates (R14)

@pytest.fixture
def dedup_api(db_url, tmp_path):
    import yaml

    from web import create_app

    config = yaml.safe_load((DATA / "crm_v1.yaml").read_text(encoding="utf-8"))
    config["entities"]["customer"]["duplicates"] = [
        {"field": "name", "match": "fuzzy", "threshold": 80, "normalize": "company_name"}]
    path = tmp_path / "dedup.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    t = Tenant.load(path, db_url=db_url)
    migrate(t)
    t.users.add("api.admin", ["admin"], password="initial-pass-1")
    app = create_app(t, config={"TESTING": True, "SECRET_KEY": "test"})
    yield Api(app.test_client(), t.users.create_token("api.admin"))
    t.dispose()


def test_r14_likely_duplicate_is_409_until_confirmed(dedup_api):
    api = dedup_api
    first = api.post("/api/v1/customer", {"name": "北京星河科技有限公司", "industry": "制造业"}).get_json()
    body = {"name": "星河科技（北京）有限公司", "industry": "制造业"}
    resp = api.post("/api/v1/customer", body)
    dup = assert_error(resp, 409)
    assert dup["duplicates"][0]["id"] == first["id"] and dup["duplicates"][0]["score"] >= 80
    assert "current_version" not in dup
    assert_error(api.post("/api/v1/customer?confirm_duplicates=maybe", body), 400, "confirm_duplicates")
    assert api.post("/api/v1/customer?confirm_duplicates=false", body).status_code == 409
    saved = api.post("/api/v1/customer?confirm_duplicates=true", body)
    assert saved.status_code == 201, saved.get_json()
    other = api.post("/api/v1/customer", {"name": "上海海洋贸易", "industry": "制造业"}).get_json()
    resp = api.patch(f"/api/v1/customer/{other['id']}", {"version": 1, "name": "北京星河科技"})
    assert_error(resp, 409)
    resp = api.patch(f"/api/v1/customer/{other['id']}?confirm_duplicates=1", {"version": 1, "name": "北京星河科技"})
    assert resp.status_code == 200, resp.get_json()
