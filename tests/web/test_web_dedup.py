"""Duplicates in the web app (R14, R18, R20, R36): the form prompt, the duplicates and merge pages,
the merge API and the data-quality page — through the Flask test client on SQLite and PostgreSQL."""
from __future__ import annotations

import re

import pytest

RULES = """    duplicates:
      - {field: name, match: fuzzy, threshold: 80, normalize: company_name}
      - {field: phone, match: exact}
    quality:
      key_fields: [name, industry, phone, email]
      completeness_min: 90
      followed_up_days: 90
      followed_up_min: 80
      unowned_max: 0
"""
REP_ROLE = """  rep:
    label: {zh: 外勤, en: Field rep}
    entities:
      customer: {read: own, create: true, update: own}
      follow_up: {read: own, create: true}
"""
EXISTING = "北京星河科技有限公司"
TYPED = "星河科技(北京)有限公司"


def dedup_config(h) -> str:
    text = h.CRM.read_text(encoding="utf-8")
    head = "  customer:\n    label: {zh: 客户, en: Customer}\n    title: name\n"
    assert head in text
    text = text.replace(head, head + RULES, 1)
    return text.replace("  manager: {label: {zh: 经理, en: Manager}}\n",
                        "  manager: {label: {zh: 经理, en: Manager}}\n" + REP_ROLE, 1)


@pytest.fixture
def tenant(db_url, tmp_path, h):
    t = h.make_tenant(db_url, tmp_path, dedup_config(h))
    yield t
    t.dispose()


def csrf(client, h, path="/"):
    return h.csrf_from(client.get(path).get_data(as_text=True))


def post_form(client, h, path, data, **kw):
    data = dict(data)
    data.setdefault("csrf_token", csrf(client, h, path))
    return client.post(path, data=data, **kw)


def add_user(tenant, h, username, roles, department="sales", display_name=None):
    tenant.users.add(username, roles, department=department, password="initial-pass-1",
                     display_name=display_name)
    tenant.users.change_password(username, "initial-pass-1", h.PASSWORD)
    return tenant.users.by_username(username)


def client_for(app, h, username):
    c = app.test_client()
    assert h.login(c, username).status_code == 302
    return c


@pytest.fixture
def existing(tenant, ready_user):
    """北京星河科技有限公司, owned by 李雷 (sales), with four follow-ups."""
    svc = tenant.records
    rec = svc.create("customer", {"name": EXISTING, "industry": "制造业", "phone": "13800138000"}, ready_user,
                     locale="zh_CN")
    for day in range(1, 5):
        svc.create("follow_up", {"customer": rec["id"], "focus": f"第{day}次沟通：报价", "channel": "phone",
                                 "next_contact_at": f"2025-03-0{day}T10:00:00+08:00"}, ready_user, locale="zh_CN")
    return rec


NEW = {"name": TYPED, "industry": "教育业", "level": "B", "email": "hello@xinghe.example", "remark": "展会认识的"}


# ------------------------------------------------------------------------------------------ prompt

def test_r14_form_prompt_lists_matches_keeps_input_and_saves_on_confirm(signed_in, h, tenant, existing):
    resp = post_form(signed_in, h, "/e/customer/new", NEW)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    assert "dup-panel" in html and "可能已存在" in html
    assert f'href="/e/customer/{existing["id"]}"' in html and EXISTING in html       # open the match
    assert re.search(r'class="dup-score[^"]*"[^>]*>\d+%<', html)                      # its score
    assert "李雷" in html and "销售部" in html                                         # owner, department
    assert "第4次沟通" in html and "第3次沟通" in html and "第2次沟通" in html           # latest three …
    assert "第1次沟通" not in html                                                     # … only
    assert f'value="{TYPED}"' in html and 'value="hello@xinghe.example"' in html      # input kept
    assert "展会认识的" in html and '<option value="教育业" selected' in html
    assert re.search(r'<button[^>]*form="record-form"[^>]*name="confirm_duplicates"[^>]*value="1"', html)
    assert tenant.records.count("customer", None) == 1

    saved = post_form(signed_in, h, "/e/customer/new", {**NEW, "confirm_duplicates": "1"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert tenant.records.count("customer", None) == 2
    page = signed_in.get(saved.headers["Location"]).get_data(as_text=True)
    assert TYPED in page


def test_r14_confirm_needs_the_csrf_token(signed_in, h, tenant, existing):
    resp = signed_in.post("/e/customer/new", data={**NEW, "confirm_duplicates": "1"})
    assert resp.status_code in (400, 403) or "/e/customer/new" in resp.headers.get("Location", "")
    assert tenant.records.count("customer", None) == 1


def test_r14_unrelated_company_saves_without_prompt(signed_in, h, tenant, existing):
    resp = post_form(signed_in, h, "/e/customer/new", {**NEW, "name": "北京明月科技有限公司"})
    assert resp.status_code == 302


def test_r14_phone_match_prompts_too(signed_in, h, tenant, existing):
    resp = post_form(signed_in, h, "/e/customer/new", {**NEW, "name": "上海某某贸易公司",
                                                      "phone": "+86 138-0013-8000"})
    assert resp.status_code == 409 and EXISTING in resp.get_data(as_text=True)


def test_r14_update_of_a_matched_field_prompts_and_confirms(signed_in, h, tenant, existing, ready_user):
    other = tenant.records.create("customer", {"name": "深圳蓝海贸易有限公司", "industry": "金融业"}, ready_user)
    path = f"/e/customer/{other['id']}/edit"
    data = {"name": "星河科技（北京）", "industry": "金融业", "level": "C", "version": str(other["version"])}
    resp = post_form(signed_in, h, path, data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "dup-panel" in html and EXISTING in html
    assert 'value="星河科技（北京）"' in html and f'name="version" value="{other["version"]}"' in html
    # editing another field does not prompt
    ok = post_form(signed_in, h, path, {**data, "name": "深圳蓝海贸易有限公司", "level": "B"})
    assert ok.status_code == 302
    fresh = tenant.records.get("customer", other["id"])
    saved = post_form(signed_in, h, path, {**data, "version": str(fresh["version"]), "confirm_duplicates": "1"})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert tenant.records.get("customer", other["id"])["name"] == "星河科技（北京）"


def test_r14_out_of_scope_match_shows_only_its_department(app, h, tenant, existing):
    add_user(tenant, h, "zhao.rep", ["rep"], department="sales_east", display_name="赵外勤")
    rep = client_for(app, h, "zhao.rep")
    resp = post_form(rep, h, "/e/customer/new", NEW)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409
    panel = html[html.index("dup-panel"):html.index('id="record-form"')]
    assert "已存在匹配的记录，归属部门：销售部" in panel
    assert EXISTING not in html and f'/e/customer/{existing["id"]}' not in html
    assert "第4次沟通" not in html and "李雷" not in panel and "13800138000" not in html
    assert post_form(rep, h, "/e/customer/new", {**NEW, "confirm_duplicates": "1"}).status_code == 302


def test_r14_prompt_in_english(signed_in, h, tenant, existing):
    with signed_in.session_transaction() as s:
        s["lang"] = "en"
    html = post_form(signed_in, h, "/e/customer/new", NEW).get_data(as_text=True)
    assert "This may already exist" in html and "Not a duplicate — save anyway" in html


# ------------------------------------------------------------------------------------------ scan and merge

@pytest.fixture
def pair(tenant, ready_user, existing):
    """The existing customer and a confirmed near-duplicate with an email and a follow-up of its own."""
    svc = tenant.records
    dup = svc.create("customer", {"name": TYPED, "industry": "教育业", "email": "hi@xinghe.example"}, ready_user,
                     confirm_duplicates=True)
    fu = svc.create("follow_up", {"customer": dup["id"], "focus": "重复客户上的跟进", "channel": "visit",
                                  "next_contact_at": "2025-04-01T09:00:00+08:00"}, ready_user)
    return existing, dup, fu


def test_r20_duplicates_page_lists_clusters_with_scores(signed_in, pair):
    existing, dup, _fu = pair
    home = signed_in.get("/").get_data(as_text=True)
    assert 'href="/duplicates/"' in home and 'href="/quality/"' in home
    resp = signed_in.get("/duplicates/", follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "重复数据" in html
    assert EXISTING in html and TYPED in html and "共找到 1 组" in html
    assert re.search(r"相似度 \d+%", html)
    assert f'/duplicates/customer/merge?ids={existing["id"]}&amp;ids={dup["id"]}' in html


def test_r20_merge_page_choose_values_then_merge_repoints_and_keeps_history(signed_in, h, tenant, pair):
    existing, dup, fu = pair
    path = f"/duplicates/customer/merge?ids={existing['id']}&ids={dup['id']}"
    page = signed_in.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "保留的记录" in html
    assert f'name="survivor" value="{existing["id"]}" checked' in html
    assert f'name="choice-industry" value="{dup["id"]}"' in html      # values differ: a radio each
    assert "制造业" in html and "教育业" in html
    token = h.csrf_from(html)
    resp = signed_in.post("/duplicates/customer/merge", data={
        "csrf_token": token, "ids": [existing["id"], dup["id"]], "survivor": existing["id"],
        "choice-industry": dup["id"], "choice-name": existing["id"]})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert resp.headers["Location"].endswith(f"/e/customer/{existing['id']}")
    rec = tenant.records.get("customer", existing["id"])
    assert rec["name"] == EXISTING and rec["industry"] == "教育业"
    assert rec["email"] == "hi@xinghe.example"                          # empty field filled from the merged one
    assert tenant.records.get("follow_up", fu["id"])["customer"] == existing["id"]   # re-pointed
    assert tenant.records.count("customer", None) == 1
    detail = signed_in.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已将 1 条记录合并到" in detail
    actions = [a["action"] for a in tenant.records.history("customer", existing["id"])]
    assert "merge" in actions


def test_r20_timeline_labels_the_merge_and_names_the_merged_records(signed_in, tenant, ready_user, pair):
    from html import unescape

    from engine.dedup.merge import merge

    existing, dup, fu = pair
    merge(tenant, "customer", existing["id"], [dup["id"]], user=ready_user)

    html = unescape(signed_in.get(f"/e/customer/{existing['id']}").get_data(as_text=True))
    timeline = html[html.index('id="timeline"'):]
    assert "将其他记录合并到了此记录" in timeline
    assert f"合并到此记录的：#{dup['id']} {TYPED}" in timeline       # which record, by its last title
    assert "改为关联此记录的：跟进记录 1 条" in timeline
    assert f"来自被合并的记录 #{dup['id']} {TYPED}" in timeline     # its history, copied here
    assert "</strong> merge <" not in timeline and "merged #" not in timeline and "re-pointed:" not in timeline
    follow_up = unescape(signed_in.get(f"/e/follow_up/{fu['id']}").get_data(as_text=True))
    assert f"因重复合并改为关联客户 #{existing['id']}" in follow_up[follow_up.index('id="timeline"'):]

    with signed_in.session_transaction() as s:
        s["lang"] = "en"
    html = unescape(signed_in.get(f"/e/customer/{existing['id']}").get_data(as_text=True))
    timeline = html[html.index('id="timeline"'):]
    assert "merged other records into this one" in timeline
    assert f"Merged into this record: #{dup['id']} {TYPED}" in timeline
    assert "Re-pointed to this record: Follow-up: 1" in timeline
    assert f"from merged record #{dup['id']} {TYPED}" in timeline


def test_r20_merge_without_csrf_changes_nothing(signed_in, tenant, pair):
    existing, dup, _fu = pair
    signed_in.post("/duplicates/customer/merge", data={"ids": [existing["id"], dup["id"]],
                                                       "survivor": existing["id"]})
    assert tenant.records.count("customer", None) == 2


def test_r20_merge_refused_by_the_engine_is_shown(app, h, tenant):
    rep = add_user(tenant, h, "zhao.rep", ["rep"], department="sales_east")
    a = tenant.records.create("customer", {"name": EXISTING, "industry": "制造业"}, rep)
    b = tenant.records.create("customer", {"name": TYPED, "industry": "制造业"}, rep, confirm_duplicates=True)
    c = client_for(app, h, "zhao.rep")
    path = f"/duplicates/customer/merge?ids={a['id']}&ids={b['id']}"
    html = c.get(path).get_data(as_text=True)
    resp = c.post("/duplicates/customer/merge", data={"csrf_token": h.csrf_from(html), "ids": [a["id"], b["id"]],
                                                      "survivor": a["id"]})
    body = resp.get_data(as_text=True)
    assert resp.status_code == 403 and "alert" in body and "保留的记录" in body   # the page, with the refusal
    assert tenant.records.count("customer", None) == 2


def test_r20_merge_pages_need_update_rights(app, h, tenant, pair):
    existing, dup, _fu = pair
    add_user(tenant, h, "kan.kan", ["viewer"])
    viewer = client_for(app, h, "kan.kan")
    assert 'href="/duplicates/"' not in viewer.get("/").get_data(as_text=True)
    assert viewer.get("/duplicates/customer").status_code == 403
    assert viewer.get(f"/duplicates/customer/merge?ids={existing['id']}&ids={dup['id']}").status_code == 403
    assert viewer.get("/duplicates/product").status_code == 404            # no rules there


def test_r20_merge_page_of_out_of_scope_records_is_404(app, h, tenant, pair):
    existing, dup, _fu = pair
    add_user(tenant, h, "zhao.rep", ["rep"], department="sales_east")
    rep = client_for(app, h, "zhao.rep")
    assert rep.get(f"/duplicates/customer/merge?ids={existing['id']}&ids={dup['id']}").status_code == 404
    html = rep.get("/duplicates/customer").get_data(as_text=True)       # the scan covers only their records
    assert EXISTING not in html and "没有疑似重复" in html


# ------------------------------------------------------------------------------------------ merge API

def _api(client, token, method, path, body=None):
    return client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})


def test_r20_api_merge_repoints_children(client, tenant, h, pair):
    existing, dup, fu = pair
    add_user(tenant, h, "boss", ["admin"])
    token = tenant.users.create_token("boss")
    resp = _api(client, token, "POST", "/api/v1/customer/merge",
                {"survivor": dup["id"], "merged": [existing["id"]], "choices": {"name": existing["id"]}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data = resp.get_json()
    assert data["survivor"]["id"] == dup["id"] and data["survivor"]["name"] == EXISTING
    assert data["merged"] == [existing["id"]] and any(n for n in data["moved"].values())
    page = _api(client, token, "GET", f"/api/v1/follow_up?customer={dup['id']}").get_json()
    assert len(page["items"]) == 5                                        # 4 moved + its own
    assert _api(client, token, "GET", f"/api/v1/customer/{existing['id']}").status_code == 404


def test_r20_api_merge_errors(client, tenant, h, pair):
    existing, dup, _fu = pair
    add_user(tenant, h, "boss", ["admin"])
    token = tenant.users.create_token("boss")
    assert _api(client, token, "POST", "/api/v1/customer/merge", {"survivor": dup["id"]}).status_code == 400
    bad = _api(client, token, "POST", "/api/v1/customer/merge",
               {"survivor": dup["id"], "merged": [dup["id"]]})
    assert bad.status_code == 400 and "error" in bad.get_json()
    assert _api(client, token, "POST", "/api/v1/customer/merge",
                {"survivor": dup["id"], "merged": [999999]}).status_code == 404
    assert _api(client, token, "POST", "/api/v1/customer/merge",
                {"survivor": dup["id"], "merged": [existing["id"]], "choices": {"nope": 1}}).status_code == 400
    add_user(tenant, h, "kan.kan", ["viewer"])
    viewer = tenant.users.create_token("kan.kan")
    resp = _api(client, viewer, "POST", "/api/v1/customer/merge", {"survivor": dup["id"], "merged": [existing["id"]]})
    assert resp.status_code == 403
    assert tenant.records.count("customer", None) == 2


# ------------------------------------------------------------------------------------------ quality

def test_r18_r36_quality_page_figures_with_pass_fail(signed_in, tenant, ready_user):
    from datetime import datetime, timedelta, timezone

    svc = tenant.records
    full = svc.create("customer", {"name": "甲公司", "industry": "制造业", "phone": "13900000001",
                                   "email": "a@jia.example"}, ready_user)
    svc.create("customer", {"name": "乙公司", "industry": "金融业"}, ready_user)
    svc.create("follow_up", {"customer": full["id"], "focus": "近期拜访", "channel": "visit",
                             "next_contact_at": (datetime.now(timezone.utc) - timedelta(days=2)).isoformat()},
               ready_user)
    resp = signed_in.get("/quality/")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "数据质量" in html
    assert "75.0%" in html and "50.0%" in html                   # 6 of 8 key values; 1 of 2 followed up
    assert "未达标" in html and "目标 ≥ 90%" in html and "目标 ≥ 80%" in html
    assert "按部门" in html and "销售部" in html and "按人员" in html and "李雷" in html
    assert "电话 50%" in html                                     # per key field


def test_r18_quality_page_in_english_and_scoped(app, h, tenant, ready_user):
    tenant.records.create("customer", {"name": "甲公司", "industry": "制造业"}, ready_user)
    add_user(tenant, h, "zhao.rep", ["rep"], department="sales_east")
    rep = client_for(app, h, "zhao.rep")
    with rep.session_transaction() as s:
        s["lang"] = "en"
    html = rep.get("/quality/").get_data(as_text=True)
    assert "Data quality" in html and "0 records" in html            # li.lei's customer is out of their scope
    assert "甲公司" not in html
