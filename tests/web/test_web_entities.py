"""Generated entity pages through the test client: list, forms, detail, timeline, delete, search."""
from __future__ import annotations

import io
import re

import pytest


def csrf(client, h, path="/"):
    return h.csrf_from(client.get(path).get_data(as_text=True))


def post_form(client, h, path, data, **kw):
    data = dict(data)
    data.setdefault("csrf_token", csrf(client, h, path))
    return client.post(path, data=data, **kw)


def make_customer(signed_in, h, name="杭州云栖科技有限公司", **extra):
    data = {"name": name, "industry": "制造业", "level": "B", "phone": "13800138000"}
    data.update(extra)
    resp = post_form(signed_in, h, "/e/customer/new", data)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_r12_list_empty_state_says_what_to_do(signed_in):
    html = signed_in.get("/e/customer/").get_data(as_text=True)
    assert "还没有客户" in html and 'href="/e/customer/new"' in html


def test_new_form_has_widgets_per_type_and_sections(signed_in):
    html = signed_in.get("/e/customer/new").get_data(as_text=True)
    assert "基本信息" in html and "联系方式" in html           # sections from layout.form
    assert 'name="csrf_token"' in html and 'enctype="multipart/form-data"' in html
    assert re.search(r'<select class="select" id="industry" name="industry"', html)   # dictionary select
    assert '<option value="制造业"' in html
    assert 'type="tel"' in html and 'type="email"' in html and 'type="url"' in html
    assert 'type="date"' in html and 'type="file"' in html
    assert 'name="tags" value="重点"' in html                  # multiselect as checkboxes
    assert 'value="C" selected' in html                        # literal default pre-filled
    assert 'data-formula="score"' in html                      # formula shown read-only
    assert 'inputmode="decimal"' in html and "¥" in html       # money input
    assert '<option value="sales">销售部</option>' in html       # department select
    assert "李雷" in html                                       # user select


def test_r12_create_customer_then_detail_and_list(signed_in, h, tenant):
    rid = make_customer(signed_in, h, revenue="1,200,000.50", founded="2015-06-01", tags=["重点", "渠道"],
                        listed="true", rating="4")
    detail = signed_in.get(f"/e/customer/{rid}")
    html = detail.get_data(as_text=True)
    assert detail.status_code == 200
    assert "已保存客户“杭州云栖科技有限公司”" in html
    assert "+86-138-0013-8000" in html                         # phone shown formatted
    assert "2015-06-01" in html and "重点" in html and "渠道" in html
    assert "80" in html                                        # formula score = rating * 20
    assert "是" in html                                        # boolean
    rec = tenant.records.get("customer", rid)
    assert str(rec["revenue"]) == "1200000.50" and rec["phone"] == "+8613800138000"
    listing = signed_in.get("/e/customer/").get_data(as_text=True)
    assert "杭州云栖科技有限公司" in listing and "共 1 条" in listing


def test_r12_failed_submit_shows_inline_errors_and_keeps_input(signed_in, h):
    resp = post_form(signed_in, h, "/e/customer/new", {
        "name": "", "industry": "", "phone": "12345", "email": "not-an-email", "rating": "9",
        "remark": "客户很重要，下周再联系", "level": "A"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "请修改标出的字段" in html
    for field in ("name", "industry", "phone", "email", "rating"):
        assert f'id="{field}-error"' in html, field
    assert "必填" in html and "不是有效的电话号码" in html and "不是有效的邮箱地址" in html
    assert "不能大于 5" in html
    # everything typed is still there
    assert 'value="12345"' in html and 'value="not-an-email"' in html and 'value="9"' in html
    assert "客户很重要，下周再联系" in html and 'value="A" selected' in html


def test_errors_in_the_users_language(signed_in, h):
    post_form(signed_in, h, "/language", {"lang": "en", "next": "/"})
    html = post_form(signed_in, h, "/e/customer/new", {"name": ""}).get_data(as_text=True)
    assert "This field is required" in html and "New Customer" in html and "Company name" in html


def test_r12_rule_message_under_its_field(signed_in, h):
    resp = post_form(signed_in, h, "/e/customer/new", {"name": "甲公司", "industry": "金融业", "level": "A"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert re.search(r'id="phone-error"><p>A类客户必须填写电话', html)


def test_unique_violation_is_inline(signed_in, h):
    make_customer(signed_in, h, name="重复公司")
    resp = post_form(signed_in, h, "/e/customer/new", {"name": "重复公司", "industry": "金融业"})
    assert resp.status_code == 422 and "已存在相同的值" in resp.get_data(as_text=True)


def test_edit_and_timeline_shows_old_and_new(signed_in, h):
    rid = make_customer(signed_in, h)
    html = signed_in.get(f"/e/customer/{rid}/edit").get_data(as_text=True)
    assert 'value="杭州云栖科技有限公司"' in html and 'name="version" value="1"' in html
    resp = post_form(signed_in, h, f"/e/customer/{rid}/edit", {
        "name": "杭州云栖科技有限公司", "industry": "金融业", "level": "B", "phone": "13800138000",
        "version": "1"})
    assert resp.status_code == 302
    html = signed_in.get(f"/e/customer/{rid}").get_data(as_text=True)
    timeline = html[html.index('id="timeline"'):]
    assert "修改了" in timeline and "创建了此记录" in timeline
    assert re.search(r'行业</span> <span class="old">制造业</span> → <span class="new">金融业</span>', timeline)


def test_optimistic_lock_conflict_shows_changes_and_keeps_input(signed_in, h, tenant, ready_user):
    rid = make_customer(signed_in, h)
    tenant.records.update("customer", rid, {"industry": "教育业"}, ready_user)  # someone else, meanwhile
    resp = post_form(signed_in, h, f"/e/customer/{rid}/edit", {
        "name": "我的新名字", "industry": "金融业", "level": "B", "version": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "该记录已被" in html and "教育业" in html            # who changed what
    assert 'value="我的新名字"' in html                          # nothing typed is lost
    assert 'name="version" value="2"' in html                   # saving again overwrites knowingly
    resp = post_form(signed_in, h, f"/e/customer/{rid}/edit", {
        "name": "我的新名字", "industry": "金融业", "level": "B", "version": "2"})
    assert resp.status_code == 302
    assert tenant.records.get("customer", rid)["name"] == "我的新名字"


def test_reference_picker_lookup_and_related_list_with_prefilled_add(signed_in, h):
    rid = make_customer(signed_in, h)
    make_customer(signed_in, h, name="北京另一家公司")
    html = signed_in.get("/e/customer/lookup?q=杭州").get_data(as_text=True)
    assert f'data-id="{rid}"' in html and "北京另一家公司" not in html
    new_page = signed_in.get(f"/e/follow_up/new?customer={rid}").get_data(as_text=True)
    assert f'name="customer" value="{rid}"' in new_page and 'value="杭州云栖科技有限公司"' in new_page
    resp = post_form(signed_in, h, "/e/follow_up/new", {
        "customer": str(rid), "channel": "visit", "focus": "确认采购预算", "next_contact_at": "2026-12-01T10:00"})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    detail = signed_in.get(f"/e/customer/{rid}").get_data(as_text=True)
    related = detail[detail.index('id="related-follow_up-customer"'):]
    assert "确认采购预算" in related and f'href="/e/follow_up/new?customer={rid}"' in related
    fu = signed_in.get(resp.headers["Location"]).get_data(as_text=True)
    assert f'href="/e/customer/{rid}"' in fu and "2026-12-01 10:00" in fu


def test_reference_by_unique_title_when_nothing_was_picked(signed_in, h):
    make_customer(signed_in, h, name="只输入了名字的公司")
    resp = post_form(signed_in, h, "/e/follow_up/new", {
        "customer": "只输入了名字的公司", "focus": "电话沟通", "next_contact_at": "2026-12-01 09:00"})
    assert resp.status_code == 302


def test_subtable_grid_lines_and_formulas(signed_in, h, tenant, ready_user):
    cid = make_customer(signed_in, h)
    p1 = tenant.records.create("product", {"name": "CRM 软件许可", "price": "1000"}, ready_user)["id"]
    p2 = tenant.records.create("product", {"name": "实施服务", "price": "500"}, ready_user)["id"]
    html = signed_in.get("/e/quote/new").get_data(as_text=True)
    assert 'data-subtable="lines"' in html and "lines-__INDEX__-product" in html and "添加一行" in html
    form = {"customer": str(cid),
            "lines-0-product": str(p1), "lines-0-quantity": "2", "lines-0-unit_price": "1000",
            "lines-3-product": str(p2), "lines-3-quantity": "1", "lines-3-unit_price": "500.5",
            "lines-5-product": "", "lines-5-quantity": "", "lines-5-unit_price": ""}  # a blank row is dropped
    preview = post_form(signed_in, h, "/e/quote/preview", form).get_json()
    assert preview["rows"]["lines"][0]["line_total"] == "¥2,000.00"
    assert preview["fields"]["total"] == "¥2,500.50"
    resp = post_form(signed_in, h, "/e/quote/new", form)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    qid = int(resp.headers["Location"].rsplit("/", 1)[1])
    rec = tenant.records.get("quote", qid)
    assert [str(r["quantity"]) for r in rec["lines"]] == ["2", "1"] and str(rec["total"]) == "2500.50"
    detail = signed_in.get(f"/e/quote/{qid}").get_data(as_text=True)
    assert "CRM 软件许可" in detail and "2,500.50" in detail and re.search(r"BJ-\d{4}-0001", detail)
    edit = signed_in.get(f"/e/quote/{qid}/edit").get_data(as_text=True)
    assert f'name="lines-1-product" value="{p2}"' in edit and 'value="实施服务"' in edit
    assert 'data-next-index="2"' in edit


def test_subtable_row_errors_are_shown_in_their_cell(signed_in, h):
    cid = make_customer(signed_in, h)
    resp = post_form(signed_in, h, "/e/quote/new", {"customer": str(cid), "lines-0-product": "",
                                                     "lines-0-quantity": "0", "lines-0-unit_price": "10"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert 'id="lines.0.product-error"' in html and 'id="lines.0.quantity-error"' in html
    assert 'name="lines-0-quantity" value="0"' in html


def test_list_filters_search_sort_and_keyset_pages(signed_in, h, tenant, ready_user):
    for i in range(30):
        tenant.records.create("customer", {"name": f"客户{i:02d}", "industry": "金融业" if i % 2 else "制造业",
                                           "revenue": str(i * 1000)}, ready_user)
    first = signed_in.get("/e/customer/?sort=name").get_data(as_text=True)
    assert "共 30 条" in first and "客户00" in first and "客户25" not in first
    nxt = re.search(r'href="\?([^"]*after=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = signed_in.get(f"/e/customer/?{nxt}").get_data(as_text=True)
    assert "客户25" in second and "客户00" not in second and "第一页" in second
    filtered = signed_in.get("/e/customer/?industry=金融业&revenue__gte=20000").get_data(as_text=True)
    assert "共 5 条" in filtered and "客户21" in filtered and "客户20" not in filtered
    assert '<option value="金融业" selected' in filtered
    searched = signed_in.get("/e/customer/?q=客户1").get_data(as_text=True)
    assert "共 10 条" in searched
    desc = signed_in.get("/e/customer/?sort=-name").get_data(as_text=True)
    assert desc.index("客户29") < desc.index("客户28")
    none = signed_in.get("/e/customer/?industry=教育业").get_data(as_text=True)
    assert "没有符合筛选条件的客户" in none


def test_unknown_filter_is_reported_not_ignored(signed_in):
    resp = signed_in.get("/e/customer/?nosuchfield=1", follow_redirects=True)
    assert "nosuchfield" in resp.get_data(as_text=True)


def test_delete_with_confirmation_and_refusal_while_referenced(signed_in, h, tenant, ready_user):
    rid = make_customer(signed_in, h)
    confirm = signed_in.get(f"/e/customer/{rid}/delete").get_data(as_text=True)
    assert "确定删除客户“杭州云栖科技有限公司”吗" in confirm
    tenant.records.create("follow_up", {"customer": rid, "focus": "x", "next_contact_at": "2026-12-01 10:00"},
                          ready_user)
    resp = post_form(signed_in, h, f"/e/customer/{rid}/delete", {}, follow_redirects=True)
    assert "仍被" in resp.get_data(as_text=True)
    other = make_customer(signed_in, h, name="可以删除的公司")
    resp = post_form(signed_in, h, f"/e/customer/{other}/delete", {})
    assert resp.status_code == 302 and resp.headers["Location"] == "/e/customer/"
    assert signed_in.get(f"/e/customer/{other}").status_code == 404


def test_r10_quick_search_by_name_and_phone(signed_in, h):
    rid = make_customer(signed_in, h)
    html = signed_in.get("/search?q=云栖").get_data(as_text=True)
    assert f'href="/e/customer/{rid}"' in html
    partial = signed_in.get("/search?q=13800138000", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'href="/e/customer/{rid}"' in partial and "<html" not in partial
    assert "没有找到" in signed_in.get("/search?q=不存在的公司").get_data(as_text=True)


def test_r8_workbench_lists_my_records(signed_in, h):
    make_customer(signed_in, h)
    html = signed_in.get("/").get_data(as_text=True)
    assert "杭州云栖科技有限公司" in html


def test_file_upload_and_download(signed_in, h, tenant):
    data = {"name": "带执照的公司", "industry": "金融业",
            "licence": (io.BytesIO(b"%PDF-1.4 test"), "执照.pdf", "application/pdf")}
    resp = post_form(signed_in, h, "/e/customer/new", data, content_type="multipart/form-data")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    rid = int(resp.headers["Location"].rsplit("/", 1)[1])
    html = signed_in.get(f"/e/customer/{rid}").get_data(as_text=True)
    assert "执照.pdf" in html
    got = signed_in.get(f"/e/customer/{rid}/file/licence")
    assert got.status_code == 200 and got.data == b"%PDF-1.4 test"
    # editing without a new upload keeps the file; ticking "remove" clears it
    post_form(signed_in, h, f"/e/customer/{rid}/edit", {"name": "带执照的公司", "industry": "金融业",
                                                        "version": "1"})
    assert tenant.records.get("customer", rid)["licence"] is not None
    version = tenant.records.get("customer", rid)["version"]
    post_form(signed_in, h, f"/e/customer/{rid}/edit", {"name": "带执照的公司", "industry": "金融业",
                                                        "version": str(version), "licence__clear": "1"})
    assert tenant.records.get("customer", rid)["licence"] is None


def test_pages_need_login_and_unknown_record_is_404(client, signed_in):
    assert signed_in.get("/e/customer/999").status_code == 404
    assert signed_in.get("/e/nope/new").status_code == 404


@pytest.mark.parametrize("config", ["sample_tenant.yaml", "configs/base.yaml", "configs/service_company.yaml"])
def test_every_entity_page_renders_for_shipped_configs(config, tmp_path, h, sqlite_url):
    """A second tenant config serves with no code change: every page of every entity renders."""
    from engine.demo.generate import generate_demo
    from web import create_app

    from engine.schema.migrate import migrate
    from engine.tenant import Tenant

    tenant = Tenant.load(h.CRM.parent.parent.parent / config, db_url=sqlite_url)
    migrate(tenant)
    try:
        generate_demo(tenant, size=3, seed=1)
        tenant.users.add("boss", ["admin"], password="chief-secret-1")
        tenant.users.change_password("boss", "chief-secret-1", "chief-secret-2")
        app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "x"})
        client = app.test_client()
        h.login(client, "boss", "chief-secret-2")
        assert client.get("/").status_code == 200
        for name in tenant.model.entities:
            assert client.get(f"/e/{name}/").status_code == 200, name
            assert client.get(f"/e/{name}/new").status_code == 200, name
            page = tenant.records.list(name, None, limit=1)
            if page.items:
                rid = page.items[0]["id"]
                assert client.get(f"/e/{name}/{rid}").status_code == 200, name
                assert client.get(f"/e/{name}/{rid}/edit").status_code == 200, name
    finally:
        tenant.dispose()


def test_list_search_as_you_type_returns_only_the_table(signed_in, h):
    make_customer(signed_in, h)
    html = signed_in.get("/e/customer/?q=云栖", headers={"HX-Request": "true", "HX-Target": "list-results"})
    text = html.get_data(as_text=True)
    assert "杭州云栖科技有限公司" in text and "<html" not in text and "data-table" in text
