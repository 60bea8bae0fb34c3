"""Sharing (R34), transfer, web export (R42) and the admin pages (users, departure R44, departments,
roles with the effective-permission viewer, export log) on SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

PERM = Path(__file__).resolve().parent.parent / "data" / "perm.yaml"


@pytest.fixture
def org(db_url, tmp_path, h):
    t = h.make_tenant(db_url, tmp_path, PERM.read_text(encoding="utf-8"))
    users = {}
    for name, roles, dept, manages in [("rep_a", ["sales_rep"], "sales_east", []),
                                       ("rep_b", ["sales_rep"], "sales_east", []),
                                       ("rep_n", ["sales_rep"], "sales_north", []),
                                       ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"]),
                                       ("fin", ["finance"], "finance", []),
                                       ("root", ["admin"], None, [])]:
        t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")
        t.users.change_password(name, "initial-pass-1", h.PASSWORD)
        users[name] = t.users.by_username(name)
    recs = {}
    for owner, name in [("rep_a", "甲公司"), ("rep_a", "乙公司"), ("rep_b", "丙公司"), ("rep_n", "丁公司")]:
        recs[name] = t.records.create("customer", {"name": name, "needs": f"{name}的秘密需求"}, users[owner])
    yield t, users, recs
    t.dispose()


@pytest.fixture
def web(org, h):
    from web import create_app

    t, users, recs = org
    app = create_app(t, config={"TESTING": True, "SECRET_KEY": "test-secret"})
    clients = {}

    def as_(name):
        if name not in clients:
            c = app.test_client()
            assert h.login(c, name).status_code == 302
            clients[name] = c
        return clients[name]

    def post(name, path, data=None, follow=False):
        c = as_(name)
        token = h.csrf_from(c.get("/").get_data(as_text=True))
        return c.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=follow)

    as_.post = post
    return t, users, recs, as_


def owner_of(t, rid):
    return t.records.get("customer", rid)["owner"]


def test_r34_detail_page_shows_shares_and_manager_shares_and_unshares(web):
    t, u, recs, as_ = web
    rid = recs["甲公司"]["id"]
    page = as_("east_mgr").get(f"/e/customer/{rid}").get_data(as_text=True)
    assert 'id="sharing"' in page and "Not shared" not in page and "尚未共享" in page
    resp = as_.post("east_mgr", f"/e/customer/{rid}/share", {"with": "user:rep_b", "access": "write"}, follow=True)
    assert resp.status_code == 200 and "已共享" in resp.get_data(as_text=True)
    assert as_("rep_b").get(f"/e/customer/{rid}").status_code == 200          # rep_b now sees it
    detail = as_("rep_b").get(f"/e/customer/{rid}").get_data(as_text=True)
    assert "rep_b" in detail and "可编辑" in detail and "/unshare/" not in detail  # shown, but rep_b can't manage
    as_.post("east_mgr", f"/e/customer/{rid}/share", {"with": "department:finance", "access": "read"})
    from engine.records.ownership import shares_of
    shares = shares_of(t, "customer", rid)
    assert [(s["user"], s["department"], s["access"]) for s in shares] == [("rep_b", None, "write"),
                                                                          (None, "finance", "read")]
    # a rep may not manage shares (no transfer right): 403, nothing added
    assert as_.post("rep_a", f"/e/customer/{rid}/share", {"with": "user:rep_n"}).status_code == 403
    assert as_.post("rep_a", f"/e/customer/{rid}/unshare/{shares[0]['id']}").status_code == 403
    resp = as_.post("east_mgr", f"/e/customer/{rid}/unshare/{shares[0]['id']}")
    assert resp.status_code == 302
    assert as_("rep_b").get(f"/e/customer/{rid}").status_code == 404
    history = as_("east_mgr").get(f"/e/customer/{rid}").get_data(as_text=True)
    assert "共享了此记录" in history and "取消了此记录的共享" in history


def test_r34_bad_share_input_is_a_message(web):
    t, u, recs, as_ = web
    rid = recs["甲公司"]["id"]
    for data in ({}, {"with": "user:ghost"}, {"with": "department:nowhere"}, {"with": "user:rep_b", "access": "all"}):
        resp = as_.post("east_mgr", f"/e/customer/{rid}/share", data, follow=True)
        assert resp.status_code == 200 and 'class="alert alert-error' in resp.get_data(as_text=True), data
    assert as_.post("east_mgr", f"/e/customer/{recs['丁公司']['id']}/share",
                    {"with": "user:rep_b"}).status_code == 404            # north is outside east's scope


def test_transfer_one_record_from_its_page(web):
    t, u, recs, as_ = web
    rid = recs["甲公司"]["id"]
    page = as_("east_mgr").get(f"/e/customer/{rid}").get_data(as_text=True)
    assert 'action="/e/customer/%d/transfer"' % rid in page
    assert as_.post("east_mgr", f"/e/customer/{rid}/transfer", {"to": "rep_b"}).status_code == 302
    assert owner_of(t, rid) == u["rep_b"].id
    resp = as_.post("east_mgr", f"/e/customer/{rid}/transfer", {"to": "rep_n"}, follow=True)  # outside scope
    assert "alert-error" in resp.get_data(as_text=True) and owner_of(t, rid) == u["rep_b"].id
    assert as_.post("rep_b", f"/e/customer/{rid}/transfer", {"to": "rep_a"}).status_code in (302, 403)
    assert owner_of(t, rid) == u["rep_b"].id


def test_bulk_transfer_is_all_or_nothing(web):
    t, u, recs, as_ = web
    listing = as_("east_mgr").get("/e/customer/").get_data(as_text=True)
    assert 'id="bulk-transfer"' in listing and 'name="ids"' in listing
    assert 'id="bulk-transfer"' not in as_("rep_a").get("/e/customer/").get_data(as_text=True)
    mixed = [recs["甲公司"]["id"], recs["丁公司"]["id"]]             # 丁 belongs to the north team
    resp = as_.post("east_mgr", "/e/customer/transfer", {"ids": mixed, "to": "rep_b"}, follow=True)
    assert "未转移任何记录" in resp.get_data(as_text=True)
    assert owner_of(t, recs["甲公司"]["id"]) == u["rep_a"].id
    ok = [recs["甲公司"]["id"], recs["乙公司"]["id"]]
    resp = as_.post("east_mgr", "/e/customer/transfer", {"ids": ok, "to": "rep_b"}, follow=True)
    assert "已将 2 条记录转移给 rep_b" in resp.get_data(as_text=True)
    assert {owner_of(t, i) for i in ok} == {u["rep_b"].id}
    assert as_.post("rep_a", "/e/customer/transfer", {"ids": [recs["丙公司"]["id"]], "to": "rep_a"},
                    follow=True).status_code == 200
    assert owner_of(t, recs["丙公司"]["id"]) == u["rep_b"].id


def exports_logged(t):
    table = t.schema.system["exports"]
    with t.db.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_r42_web_export_is_scoped_masked_limited_and_logged(web):
    t, u, recs, as_ = web
    assert "导出 CSV" in as_("rep_a").get("/e/customer/").get_data(as_text=True)
    assert "导出 CSV" not in as_("fin").get("/e/customer/").get_data(as_text=True)
    resp = as_("rep_a").get("/e/customer/export.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    body = resp.get_data(as_text=True)
    assert "甲公司" in body and "乙公司" in body and "丙公司" not in body and "credit_limit" not in body
    log = exports_logged(t)
    assert [(r["username"], r["entity"], r["row_count"], r["channel"]) for r in log] == [("rep_a", "customer", 2, "web")]
    body = as_("rep_a").get("/e/customer/export.csv?q=甲").get_data(as_text=True)
    assert "甲公司" in body and "乙公司" not in body
    assert as_("fin").get("/e/customer/export.csv").status_code == 403
    for i in range(3):                                                  # the limit is 3 for reps
        t.records.create("customer", {"name": f"新客户{i}"}, u["rep_a"])
    resp = as_("rep_a").get("/e/customer/export.csv", follow_redirects=True)
    assert resp.status_code == 200 and "alert-error" in resp.get_data(as_text=True)
    assert len(exports_logged(t)) == 2                                  # the refused one left nothing
    assert as_("rep_a").get("/e/customer/export.csv?credit_limit__gte=0").status_code == 302
    assert len(exports_logged(t)) == 2


def test_admin_pages_are_for_admins_only(web):
    t, u, recs, as_ = web
    for path in ("/admin/users", "/admin/departments", "/admin/roles", "/admin/exports",
                 "/admin/users/rep_a/disable"):
        assert as_("east_mgr").get(path).status_code == 403, path
        assert as_("root").get(path).status_code == 200, path
    assert as_.post("rep_a", "/admin/users/rep_b/disable").status_code == 403
    assert t.users.by_username("rep_b").active
    assert "/admin/users" in as_("root").get("/").get_data(as_text=True)
    assert "/admin/users" not in as_("rep_a").get("/").get_data(as_text=True)


def test_admin_adds_resets_and_enables_users(web):
    t, u, recs, as_ = web
    resp = as_.post("root", "/admin/users", {"username": "new.rep", "display_name": "新同事", "roles": ["sales_rep"],
                                              "department": "sales_east", "manages": ["sales_north"]}, follow=True)
    page = resp.get_data(as_text=True)
    assert "已创建用户 new.rep" in page and "初始密码" in page
    made = t.users.by_username("new.rep")
    assert made.roles == ["sales_rep"] and made.department == "sales_east" and made.manages == ["sales_north"]
    for bad, text in (({"username": "x y", "roles": ["sales_rep"]}, "用户名"),
                      ({"username": "z", "roles": ["boss"]}, "未知角色 boss"),
                      ({"username": "z"}, "至少需要一个角色"),
                      ({"username": "rep_a", "roles": ["sales_rep"]}, "已存在")):
        page = as_.post("root", "/admin/users", bad, follow=True).get_data(as_text=True)
        assert text in page, bad
    page = as_.post("root", "/admin/users/rep_b/reset-password", follow=True).get_data(as_text=True)
    assert "rep_b 的新密码" in page and t.users.by_username("rep_b").must_change_password
    t.users.disable("rep_n")
    as_.post("root", "/admin/users/rep_n/enable")
    assert t.users.by_username("rep_n").active


def test_r44_admin_departure_disables_at_once_and_hands_over(web, h):
    t, u, recs, as_ = web
    live = as_("rep_a")
    token = t.users.create_token("rep_a")
    page = as_("root").get("/admin/users/rep_a/disable").get_data(as_text=True)
    assert "east_mgr" in page and "停用并移交" in page
    resp = as_.post("root", "/admin/users/rep_a/disable", {}, follow=True)
    text = resp.get_data(as_text=True)
    assert "已停用 rep_a" in text and "已将 2 条记录移交给 east_mgr" in text
    assert {owner_of(t, recs[n]["id"]) for n in ("甲公司", "乙公司")} == {u["east_mgr"].id}
    assert live.get("/e/customer/").status_code == 302                  # the live session is over
    assert live.get("/api/v1/customer", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # to a named colleague; refusing to hand over to nobody (north has no manager)
    as_.post("root", "/admin/users/rep_b/disable", {"transfer_to": "rep_n"})
    assert owner_of(t, recs["丙公司"]["id"]) == u["rep_n"].id
    resp = as_.post("root", "/admin/users/rep_n/disable", {}, follow=True)
    assert "no active manager" in resp.get_data(as_text=True) and t.users.by_username("rep_n").active
    resp = as_.post("root", "/admin/users/root/disable", {}, follow=True)
    assert "不能停用自己的账号" in resp.get_data(as_text=True) and t.users.by_username("root").active


def test_admin_departments_roles_viewer_and_export_log(web):
    t, u, recs, as_ = web
    page = as_("root").get("/admin/departments").get_data(as_text=True)
    assert 'id="dept-sales_east"' in page and "east_mgr" in page
    assert page.index('id="dept-sales"') < page.index('id="dept-sales_east"')
    page = as_("root").get("/admin/roles").get_data(as_text=True)
    assert 'id="role-sales_rep"' in page and "customer.credit_limit" not in page and "credit_limit: hidden" in page
    page = as_("root").get("/admin/roles?user=fin&entity=customer").get_data(as_text=True)
    assert "level != &#39;A&#39;" in page or "level != 'A'" in page
    assert 'data-field="needs"' in page
    needs_row = page.split('data-field="needs"')[1].split("</tr>")[0]
    assert "不可见" in needs_row
    limit = as_("root").get("/admin/roles?user=rep_a&entity=customer").get_data(as_text=True)
    assert "最多 3 行" in limit
    as_("rep_a").get("/e/customer/export.csv?q=甲")
    page = as_("root").get("/admin/exports").get_data(as_text=True)
    assert "rep_a" in page and "q=甲" in page and "web" in page
    assert as_("root").get("/admin/roles?user=ghost&entity=customer").status_code == 200


def test_admin_pages_in_english_have_no_chinese_chrome(web, h):
    import re

    t, u, recs, as_ = web
    c = as_("root")
    token = h.csrf_from(c.get("/").get_data(as_text=True))
    c.post("/language", data={"lang": "en", "next": "/", "csrf_token": token})
    for path in ("/admin/users", "/admin/departments", "/admin/roles?user=fin&entity=customer", "/admin/exports",
                 "/admin/users/rep_a/disable"):
        html = c.get(path).get_data(as_text=True)
        text = re.sub(r"<[^>]+>", " ", html)
        han = set(re.findall(r"[\u4e00-\u9fff]+", text))
        allowed = {"权限测试", "权", "中文", "销售部", "华东组", "华北组", "财务部", "管理员", "销售代表", "销售经理", "财务"}
        assert not han - allowed, (path, han - allowed)
