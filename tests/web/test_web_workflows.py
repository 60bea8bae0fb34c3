"""Pipelines and approvals through the pages and the JSON API, on SQLite and PostgreSQL, over the
issue's own example (tests/data/pipeline.yaml): the board (R26), refused moves with every unmet
criterion (R6), stagnation in lists and the inbox (R27), help requests (R28), approvals with their
bypass attempts (R4)."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.clock import FrozenClock

DATA = Path(__file__).resolve().parent.parent / "data"
PASSWORD = "correct-horse-9"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)
QUALIFIED = {"budget": "100000", "decision_maker": "王建国"}


@pytest.fixture
def tenant(db_url, tmp_path, h):
    """Overrides conftest's tenant: the issue's pipeline and approvals, a frozen clock, the people."""
    t = h.make_tenant(db_url, tmp_path, (DATA / "pipeline.yaml").read_text(encoding="utf-8"))
    t.clock = FrozenClock(T0)
    for name, roles, dept, manages, shown in [
            ("rep", ["sales_rep"], "sales_east", [], "张三"), ("rep2", ["sales_rep"], "sales_east", [], "李四"),
            ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"], "王经理"),
            ("boss", ["sales_manager"], "sales", ["sales"], "赵总监"), ("fin", ["finance"], "finance", [], "钱财务"),
            ("ceo", ["executive"], "board", [], "孙总"), ("root", ["admin"], None, [], "管理员")]:
        t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1", display_name=shown)
        t.users.change_password(name, "initial-pass-1", PASSWORD)
    yield t
    t.dispose()


@pytest.fixture
def u(tenant):
    return {u.username: u for u in tenant.users.list(include_inactive=True)}


def deal(tenant, user, **values):
    return tenant.records.create("opportunity", {"name": "测试商机", **values}, user)


def signed_in(app, h, username):
    client = app.test_client()
    resp = h.login(client, username)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


def page_csrf(client, path="/inbox"):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


class Api:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def call(self, method, path, body=None, lang="zh"):
        kw = {}
        if body is not None:
            kw = {"data": json.dumps(body, ensure_ascii=False), "content_type": "application/json"}
        return self.client.open(path, method=method, headers={"Authorization": f"Bearer {self.token}",
                                                               "Accept-Language": lang}, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)


@pytest.fixture
def api(tenant, client):
    return lambda username: Api(client, tenant.users.create_token(username))


def text(resp) -> str:
    return re.sub(r"\s+", " ", resp.get_data(as_text=True))


# --- R26 the board ------------------------------------------------------------------------------

def test_r26_board_page_shows_counts_sums_and_weighted_sums_per_stage(app, h, tenant, u):
    deal(tenant, u["rep"], name="星河一期", amount="10000")
    deal(tenant, u["rep"], name="星河二期", amount="30000")
    deal(tenant, u["rep"], name="云端项目", stage="proposal", amount="40000", quote_sent_at="2026-03-01", **QUALIFIED)
    deal(tenant, u["rep2"], name="别人的", amount="99999")                 # not the rep's: not on their board
    client = signed_in(app, h, "rep")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/pipelines/sales"' in home and 'href="/inbox"' in home   # in the navigation
    resp = client.get("/pipelines/sales")
    assert resp.status_code == 200
    html = text(resp)
    col = lambda stage: re.search(rf'data-stage="{stage}".*?</section>', html).group(0)  # noqa: E731
    contact, proposal, won = col("contact"), col("proposal"), col("won")
    assert "初步接触" in contact and ">2</span>" in contact and "¥40,000" in contact and "¥4,000" in contact
    assert "星河一期" in contact and "星河二期" in contact and "别人的" not in html
    assert ">1</span>" in proposal and "¥20,000" in proposal and "云端项目" in proposal
    assert "签约成交" in won and "badge-success" in won                      # the outcome column says won
    totals = re.search(r'class="board-totals".*?</div>\s*<div class="board-scroll"', html).group(0)
    assert "¥80,000" in totals and "¥24,000" in totals                       # open stages: sum and weighted
    assert 'draggable="true"' in html and 'name="csrf_token"' in html
    assert re.search(r'<summary class="move-toggle" aria-label="移动“星河一期”到">', html)
    partial = client.get("/pipelines/sales?partial=1").get_data(as_text=True)
    assert "<html" not in partial and "星河一期" in partial
    assert client.get("/pipelines/nope").status_code == 404


def test_r5_stage_is_a_choice_of_the_pipeline_stages_with_their_probability(app, h, tenant, u, api):
    client = signed_in(app, h, "rep")
    form = text(client.get("/e/opportunity/new"))
    select = re.search(r'<select class="select" id="stage" name="stage".*?</select>', form).group(0)
    assert re.findall(r'<option value="(\w+)"', select) == ["contact", "qualify", "proposal", "negotiation", "won", "lost"]
    assert '<option value="contact" selected>' in select                  # the first stage by default
    board = text(client.get("/pipelines/sales"))
    assert [p for p in re.findall(r'class="col-prob"[^>]*>(\d+)%<', board)] == ["10", "30", "50", "80"]
    stages = api("rep").get("/api/v1/pipelines").get_json()["items"][0]["stages"]
    assert [(s_["name"], s_["probability"], s_["outcome"]) for s_ in stages][-2:] == [("won", "100", "won"), ("lost", "0", "lost")]
    assert stages[1]["requires"] == ["budget", "decision_maker"] and stages[1]["actions"][0] == "确认预算"


def test_r27_board_flags_stalled_deals_and_filters_them(app, h, tenant, u):
    deal(tenant, u["rep"], name="老商机", amount="5000")
    tenant.clock.advance(days=10)
    deal(tenant, u["rep"], name="新商机", amount="5000")
    tenant.clock.advance(days=5)                                              # 老商机: 15 days > 14
    client = signed_in(app, h, "rep")
    html = text(client.get("/pipelines/sales"))
    card = re.search(r'<li class="deal-card stalled".*?</li>', html).group(0)
    assert "老商机" in card and "停滞" in card and "15 天" in card
    only = text(client.get("/pipelines/sales?stalled=1"))
    assert "老商机" in only and "新商机" not in only
    mine = text(client.get(f"/pipelines/sales?owner={u['rep'].id}&q=新"))
    assert "新商机" in mine and "老商机" not in mine
    # lists: the stalled filter (stagnant=1) and the marker
    listed = text(client.get("/e/opportunity/?stagnant=1"))
    assert "老商机" in listed and "新商机" not in listed and "stalled-mark" in listed
    assert 'name="stagnant"' in text(client.get("/e/opportunity/"))
    # the owner's inbox lists them
    inbox = text(client.get("/inbox"))
    assert re.search(r'id="stalled".*老商机.*初步接触 · 15 天', inbox)


def test_r6_refused_move_returns_every_unmet_criterion_and_moves_nothing(app, h, tenant, u):
    d = deal(tenant, u["rep"], name="星河一期", amount="10000")
    client = signed_in(app, h, "rep")
    csrf = page_csrf(client, "/pipelines/sales")
    resp = client.post("/pipelines/sales/move", data={"record_id": d["id"], "stage": "qualify", "version": d["version"],
                                                      "csrf_token": csrf}, headers={"Accept": "application/json"})
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["ok"] is False and "需求确认" in body["title"]
    assert len(body["messages"]) == 2 and any("预算" in m for m in body["messages"]) \
        and any("决策人" in m for m in body["messages"])
    assert body["fix_url"].startswith(f"/e/opportunity/{d['id']}/edit?move_to=qualify")
    assert tenant.records.get("opportunity", d["id"])["stage"] == "contact"
    # a jump forward meets every gate on the way
    resp = client.post("/pipelines/sales/move", data={"record_id": d["id"], "stage": "negotiation",
                                                      "csrf_token": csrf}, headers={"Accept": "application/json"})
    assert len(resp.get_json()["messages"]) == 3 and "报价日期" in resp.get_json()["messages"][2]
    # the fix link opens the form with the stage preset and the missing fields highlighted
    form = text(client.get(body["fix_url"]))
    assert "要进入“需求确认”，请填写" in form and 'id="field-budget"' in form
    assert re.search(r'class="field has-error" id="field-budget"', form)
    assert re.search(r'<option value="qualify" selected>', form)
    resp = client.post(f"/e/opportunity/{d['id']}/edit", data={
        "csrf_token": csrf, "version": d["version"], "name": "星河一期", "amount": "10000", "stage": "qualify",
        "budget": "100000", "decision_maker": "王建国", "next": "/pipelines/sales"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/pipelines/sales")
    got = tenant.records.get("opportunity", d["id"])
    assert got["stage"] == "qualify"
    # now the drop succeeds, and a form post (no JavaScript) works as well
    resp = client.post("/pipelines/sales/move", data={"record_id": d["id"], "stage": "contact", "version": got["version"],
                                                      "csrf_token": csrf}, headers={"Accept": "application/json"})
    assert resp.status_code == 200 and resp.get_json()["ok"] is True
    resp = client.post("/pipelines/sales/move", data={"record_id": d["id"], "stage": "qualify", "csrf_token": csrf,
                                                      "next": "/pipelines/sales"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/pipelines/sales")
    assert tenant.records.get("opportunity", d["id"])["stage"] == "qualify"
    # no CSRF token, no move
    assert client.post("/pipelines/sales/move", data={"record_id": d["id"], "stage": "contact"}).status_code in (302, 400)
    assert tenant.records.get("opportunity", d["id"])["stage"] == "qualify"


def test_r6_api_board_and_move_and_patch_enforce_the_criteria(api, tenant, u):
    d = deal(tenant, u["rep"], name="星河一期", amount="10000")
    rep = api("rep")
    board = rep.get("/api/v1/pipelines/sales").get_json()
    contact = board["columns"][0]
    assert (contact["stage"], contact["count"], contact["amount"], contact["weighted"]) == ("contact", 1, "10000.00", "1000.00")
    assert contact["cards"][0]["title"] == "星河一期" and board["total_weighted"] == "1000.00"
    resp = rep.post("/api/v1/pipelines/sales/move", {"id": d["id"], "stage": "qualify"})
    assert resp.status_code == 422 and len(resp.get_json()["errors"]["stage"]) == 2
    resp = rep.patch(f"/api/v1/opportunity/{d['id']}", {"stage": "won", "version": d["version"]})
    # won's contract amount and delivery date, and what the stages it would skip require
    assert resp.status_code == 422 and len(resp.get_json()["errors"]["stage"]) == 5
    assert "签约成交" in resp.get_json()["errors"]["contract_amount"][0]
    resp = rep.post("/api/v1/pipelines/sales/move", {"id": d["id"], "stage": "qualify", **{}} | {"version": d["version"]})
    assert resp.status_code == 422
    rep.patch(f"/api/v1/opportunity/{d['id']}", {**QUALIFIED, "version": d["version"]})
    resp = rep.post("/api/v1/pipelines/sales/move", {"id": d["id"], "stage": "qualify"})
    assert resp.status_code == 200 and resp.get_json()["stage"] == "qualify"
    hist = rep.get(f"/api/v1/opportunity/{d['id']}/stage-history").get_json()
    assert [x["stage"] for x in hist["items"]] == ["contact", "qualify"] and hist["items"][1]["entered_by"] == "张三"
    assert rep.get("/api/v1/opportunity?stagnant=1").get_json()["items"] == []
    assert rep.get("/api/v1/pipelines/nope").status_code == 404
    [opp] = [e for e in rep.get("/api/v1/").get_json()["entities"] if e["name"] == "opportunity"]
    fields = {f["name"]: f for f in opp["fields"]}
    assert fields["discount_status"].get("read_only") is True and fields["stage"]["type"] == "stage"
    assert [o["value"] for o in fields["stage"]["options"]][:2] == ["contact", "qualify"]
    assert api("rep2").post("/api/v1/pipelines/sales/move", {"id": d["id"], "stage": "contact"}).status_code == 404


def test_r26_record_page_checklist_history_and_stage_path(app, h, tenant, u):
    d = deal(tenant, u["rep"], name="星河一期", stage="qualify", amount="10000", **QUALIFIED)
    client = signed_in(app, h, "rep")
    html = text(client.get(f"/e/opportunity/{d['id']}"))
    assert 'aria-current="step"' in html and "确认预算" in html and "需求调研表" in html
    assert "阶段历程" in html and "0/4" in html
    csrf = page_csrf(client, f"/e/opportunity/{d['id']}")
    resp = client.post(f"/pipelines/sales/{d['id']}/checklist", data={"kind": "action", "item": "1", "done": "1",
                                                                       "csrf_token": csrf})
    assert resp.status_code == 302
    html = text(client.get(f"/e/opportunity/{d['id']}"))
    assert "1/4" in html and re.search(r'class="check-item done" role="checkbox" aria-checked="true".*?识别决策人', html)
    # the record page's "move to" goes straight to the fields still needed when it is refused
    resp = client.post("/pipelines/sales/move", data={"record_id": d["id"], "stage": "proposal", "csrf_token": csrf,
                                                      "next": f"/e/opportunity/{d['id']}", "on_refuse": "fill"})
    assert resp.status_code == 302 and "move_to=proposal" in resp.headers["Location"]


def test_r28_ask_for_help_creates_a_task_in_the_helpers_inbox(app, h, tenant, u, api):
    d = deal(tenant, u["rep"], name="星河一期", amount="10000")
    client = signed_in(app, h, "rep")
    csrf = page_csrf(client, f"/e/opportunity/{d['id']}")
    assert "寻求协助" in text(client.get(f"/e/opportunity/{d['id']}"))
    resp = client.post(f"/e/opportunity/{d['id']}/help", data={"to": "user:fin", "note": "请帮忙核算报价毛利",
                                                                "csrf_token": csrf}, follow_redirects=True)
    assert "已向 钱财务 发出协助请求" in text(resp)
    resp = client.post(f"/e/opportunity/{d['id']}/help", data={"to": "user:fin", "note": " ", "csrf_token": csrf},
                       follow_redirects=True)
    assert "请说明需要什么帮助" in text(resp)
    fin = signed_in(app, h, "fin")
    inbox = text(fin.get("/inbox"))
    assert "请帮忙核算报价毛利" in inbox and "星河一期" in inbox
    assert 'class="nav-badge"' in inbox                                     # unread notification
    assert fin.get(f"/e/opportunity/{d['id']}").status_code == 200           # the helper may read the deal
    [task] = tenant.tasks.list(u["fin"])
    fcsrf = page_csrf(fin)
    assert fin.post(f"/tasks/{task['id']}/done", data={"csrf_token": fcsrf}).status_code == 302
    assert tenant.tasks.list(u["fin"]) == []
    # and through the API, to a role
    resp = api("rep").post(f"/api/v1/opportunity/{d['id']}/help", {"to": "role:sales_manager", "note": "一起拜访客户"})
    assert resp.status_code == 201 and resp.get_json()["assignee_role"] == "sales_manager"
    mgr, boss = api("east_mgr"), api("boss")
    [t] = mgr.get("/api/v1/tasks").get_json()["items"]
    assert t["note"] == "一起拜访客户"
    notes = boss.get("/api/v1/notifications?unread=1").get_json()
    assert notes["unread"] == 1 and notes["items"][0]["kind"] == "help_requested"
    assert boss.post("/api/v1/notifications/read", {"ids": [notes["items"][0]["id"]]}).get_json() == {"marked": 1, "unread": 0}
    assert mgr.get("/api/v1/notifications").get_json()["unread"] == 1
    assert mgr.post(f"/api/v1/tasks/{t['id']}/done").get_json()["status"] == "done"
    assert mgr.get("/api/v1/notifications").get_json()["unread"] == 0      # acting on it reads it
    assert mgr.get("/api/v1/tasks").get_json()["items"] == []
    assert api("rep").post(f"/api/v1/opportunity/{d['id']}/help", {"to": "user:nobody", "note": "x"}).status_code == 422


# --- R4 approvals --------------------------------------------------------------------------------

def test_r4_approve_and_reject_through_the_api(api, tenant, u):
    d = deal(tenant, u["rep"], name="折扣单", amount="100000", discount="25")
    mgr, ceo, rep = api("east_mgr"), api("ceo"), api("rep")
    [a] = mgr.get("/api/v1/approvals?mine=1").get_json()["items"]
    assert a["record_id"] == d["id"] and a["can"]["approve"] and a["flow"] == "discount"
    assert rep.get("/api/v1/approvals?mine=1").get_json()["items"] == []
    assert [x["id"] for x in rep.get("/api/v1/approvals?submitted=1").get_json()["items"]] == [a["id"]]
    assert rep.get(f"/api/v1/approvals?entity=opportunity&record_id={d['id']}&status=pending").get_json()["items"][0]["id"] == a["id"]
    assert rep.get(f"/api/v1/approvals/{a['id']}").get_json()["can"]["withdraw"] is True
    # the submitter cannot approve; nor can someone who is not the step's approver
    assert rep.post(f"/api/v1/approvals/{a['id']}/approve", {}).status_code == 403
    assert ceo.post(f"/api/v1/approvals/{a['id']}/approve", {}).status_code == 403
    first = mgr.post(f"/api/v1/approvals/{a['id']}/approve", {"comment": "同意"})
    assert first.status_code == 200 and [s["status"] for s in first.get_json()["steps"]] == ["approved", "skipped", "active"]
    again = mgr.post(f"/api/v1/approvals/{a['id']}/approve", {"comment": "同意"})   # a double click
    assert again.status_code == 409 and "已审批" in again.get_json()["error"]
    assert ceo.post(f"/api/v1/approvals/{a['id']}/reject", {"comment": " "}).status_code == 422
    rejected = ceo.post(f"/api/v1/approvals/{a['id']}/reject", {"comment": "折扣太高"})
    assert rejected.status_code == 200 and rejected.get_json()["status"] == "rejected"
    assert ceo.post(f"/api/v1/approvals/{a['id']}/approve", {}).status_code == 409   # already decided
    assert tenant.records.get("opportunity", d["id"])["discount_status"] == "rejected"
    again = rep.post(f"/api/v1/approvals/{a['id']}/resubmit", {"comment": "客户是战略客户"})
    assert again.status_code == 200 and again.get_json()["status"] == "pending" and again.get_json()["id"] != a["id"]
    assert rep.post(f"/api/v1/approvals/{again.get_json()['id']}/withdraw").get_json()["status"] == "withdrawn"
    assert rep.get("/api/v1/approvals/999999").status_code == 404
    assert api("rep2").get(f"/api/v1/approvals/{a['id']}").status_code == 404       # not theirs to see
    assert rep.post(f"/api/v1/approvals/{a['id']}/bogus").status_code == 404


def test_r4_self_approval_is_refused_with_403(api, tenant, u):
    d = deal(tenant, u["east_mgr"], name="经理自己的单", amount="100000", discount="25")
    [a] = tenant.approvals.for_record("opportunity", d["id"])
    resp = api("east_mgr").post(f"/api/v1/approvals/{a['id']}/approve", {"comment": "我批准自己"})
    assert resp.status_code == 403 and "自己" in resp.get_json()["error"]
    assert api("boss").post(f"/api/v1/approvals/{a['id']}/approve", {}).status_code == 200


def test_r4_locked_fields_refused_with_423_via_patch(api, tenant, u):
    d = deal(tenant, u["rep"], name="折扣单", amount="100000", discount="25")
    rep = api("rep")
    resp = rep.patch(f"/api/v1/opportunity/{d['id']}", {"discount": "15", "version": d["version"]})
    assert resp.status_code == 423
    body = resp.get_json()
    assert body["fields"] == ["discount"] and "折扣" in body["error"] and body["approval_id"]
    resp = api("root").patch(f"/api/v1/opportunity/{d['id']}", {"amount": "1", "version": d["version"]})
    assert resp.status_code == 423                                           # an admin too
    assert api("root").call("DELETE", f"/api/v1/opportunity/{d['id']}").status_code == 423
    ok = rep.patch(f"/api/v1/opportunity/{d['id']}", {"name": "改名不受限", "version": d["version"]})
    assert ok.status_code == 200
    got = tenant.records.get("opportunity", d["id"])
    assert (str(got["discount"]).rstrip("0").rstrip("."), got["name"]) == ("25", "改名不受限")


def test_r4_status_field_cannot_be_set_by_patch_or_import(api, tenant, u, tmp_path, db_url):
    d = deal(tenant, u["rep"], name="折扣单", amount="100000", discount="25")
    for who in ("rep", "root"):
        resp = api(who).patch(f"/api/v1/opportunity/{d['id']}", {"discount_status": "approved", "version": d["version"]})
        assert resp.status_code == 422 and "不能直接修改" in resp.get_json()["errors"]["discount_status"][0]
    won = {"stage": "won", "contract_amount": "100000", "delivery_date": "2026-06-01", "version": d["version"],
           **QUALIFIED, "quote_sent_at": "2026-03-01"}
    resp = api("rep").patch(f"/api/v1/opportunity/{d['id']}", won)
    assert resp.status_code == 422 and "折扣审批" in resp.get_json()["errors"]["stage"][0]
    # the CSV import (there is no web import: `formwork import`, the same records service)
    from click.testing import CliRunner

    from engine.cli.data_cmds import import_

    csv_path = tmp_path / "deals.csv"
    csv_path.write_text("商机名称,折扣,审批状态,阶段,合同金额,交付日期\n导入单,10,已批准,初步接触,,\n"
                        "导入成交,40,,签约成交,100000,2026-06-01\n", encoding="utf-8")
    result = CliRunner().invoke(import_, [str(tmp_path / "tenant.yaml"), "opportunity", str(csv_path),
                                          "--db", db_url, "--as", "rep"])
    assert result.exit_code == 1, result.output
    assert "nothing imported" in result.output and "row 1: discount_status" in result.output \
        and "row 2: stage" in result.output
    assert tenant.records.count("opportunity") == 1
    got = tenant.records.get("opportunity", d["id"])
    assert (got["discount_status"], got["version"]) == ("pending", d["version"])
    [a] = tenant.approvals.for_record("opportunity", d["id"])
    assert a["status"] == "pending" and a["steps"][0]["decisions"] == []


def test_r4_edit_form_shows_locked_and_flow_fields_read_only_and_a_423_as_a_message(app, h, tenant, u):
    d = deal(tenant, u["rep"], name="折扣单", amount="100000", discount="10")
    client = signed_in(app, h, "rep")
    # a form opened before the approval started …
    form = text(client.get(f"/e/opportunity/{d['id']}/edit"))
    assert 'name="discount"' in form and 'name="discount_status"' not in form   # the flow's field: never an input
    assert "由“折扣审批”审批流程设置" in form
    csrf = page_csrf(client, f"/e/opportunity/{d['id']}/edit")
    d = tenant.records.update("opportunity", d["id"], {"discount": "25"}, u["rep"])   # starts the approval
    resp = client.post(f"/e/opportunity/{d['id']}/edit", data={
        "csrf_token": csrf, "version": d["version"], "name": "折扣单", "amount": "100000", "discount": "12",
        "stage": "contact"})
    assert resp.status_code == 423
    page = text(resp)
    assert "“折扣审批”审批中，折扣已锁定，不能修改" in page and "Traceback" not in page
    # … and one opened now: the locked fields are read-only with a note
    form = text(client.get(f"/e/opportunity/{d['id']}/edit"))
    assert 'name="discount"' not in form and 'name="amount"' not in form and 'name="name"' in form
    assert form.count("“折扣审批”审批中，已锁定") == 2
    resp = client.post(f"/e/opportunity/{d['id']}/edit", data={"csrf_token": csrf, "version": d["version"],
                                                               "name": "改个名", "stage": "contact", "discount": "1"})
    assert resp.status_code == 423                                          # a forged locked value: refused
    resp = client.post(f"/e/opportunity/{d['id']}/edit", data={"csrf_token": csrf, "version": d["version"],
                                                               "name": "改个名", "stage": "contact"})
    assert resp.status_code == 302
    got = tenant.records.get("opportunity", d["id"])
    assert got["name"] == "改个名" and str(got["discount"]).startswith("25")
    # a delete while pending is refused with a message, not a crash
    root = signed_in(app, h, "root")
    resp = root.post(f"/e/opportunity/{d['id']}/delete", data={"csrf_token": page_csrf(root), "version": got["version"]},
                     follow_redirects=True)
    assert resp.status_code == 200 and "不能删除" in text(resp)


def test_r4_inbox_shows_the_waiting_approval_and_approves_inline(app, h, tenant, u):
    d = deal(tenant, u["rep"], name="折扣单", amount="100000", discount="25")
    [a] = tenant.approvals.for_record("opportunity", d["id"])
    mgr = signed_in(app, h, "east_mgr")
    inbox = text(mgr.get("/inbox"))
    waiting = re.search(r'id="waiting".*?id="tasks"', inbox).group(0)
    assert "折扣审批" in waiting and "折扣单" in waiting and "张三" in waiting and "25%" in waiting
    assert f'/approvals/{a["id"]}/approve' in waiting and f'/approvals/{a["id"]}/reject' in waiting
    assert re.search(r'class="nav-badge"[^>]*>1<', inbox)                     # one unread notification
    csrf = page_csrf(mgr)
    resp = mgr.post(f"/approvals/{a['id']}/reject", data={"csrf_token": csrf, "comment": ""}, follow_redirects=True)
    assert "驳回时请填写意见" in text(resp)
    resp = mgr.post(f"/approvals/{a['id']}/approve", data={"csrf_token": csrf, "comment": "同意", "next": "/inbox"},
                    follow_redirects=True)
    assert "已批准" in text(resp) or "已通过" in text(resp)
    again = mgr.post(f"/approvals/{a['id']}/approve", data={"csrf_token": csrf, "comment": "同意"}, follow_redirects=True)
    assert "已审批过此步骤" in text(again)                                     # the double click: one transition
    assert len(tenant.approvals.get(a["id"])["steps"][0]["decisions"]) == 1
    assert "没有等待您审批的事项" in text(mgr.get("/inbox"))
    # the record page shows the steps, who decided and the comment; the CEO decides there
    ceo = signed_in(app, h, "ceo")
    page = text(ceo.get(f"/e/opportunity/{d['id']}"))
    assert "王经理" in page and "同意" in page and "审批中" in page and "锁定" in page
    resp = ceo.post(f"/approvals/{a['id']}/approve", data={"csrf_token": page_csrf(ceo), "comment": ""})
    assert resp.status_code == 302
    assert tenant.records.get("opportunity", d["id"])["discount_status"] == "approved"
    # the submitter sees the outcome among their submissions and notifications
    rep = signed_in(app, h, "rep")
    inbox = text(rep.get("/inbox"))
    assert re.search(r'id="submitted".*折扣单.*已批准', inbox) and "已批准：折扣审批（折扣单）" in inbox
    note = tenant.notifications.list(u["rep"])[0]
    resp = rep.get(f"/notifications/{note['id']}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/e/opportunity/{d['id']}#approvals")
    assert tenant.notifications.unread_count(u["rep"]) == 0


def test_r4_english_pages_show_no_chinese_chrome(app, h, tenant, u):
    d = deal(tenant, u["rep"], name="Acme", amount="100000", discount="25")
    client = signed_in(app, h, "rep")
    csrf = page_csrf(client)
    client.post("/language", data={"lang": "en", "next": "/", "csrf_token": csrf})
    for path in ("/pipelines/sales", "/inbox", f"/e/opportunity/{d['id']}", f"/e/opportunity/{d['id']}/edit",
                 "/e/opportunity/"):
        html = client.get(path).get_data(as_text=True)
        assert "Pending" in html or path != "/inbox" or "Nothing" in html
        body = re.sub(r"<[^>]+>", " ", html)
        # labels come from the Chinese-only YAML; chrome must be English
        for word in ("阶段历程", "合计", "移动到", "待办", "寻求协助", "停滞", "审批人", "锁定"):
            assert word not in body, (path, word)


def test_r4_approvals_leave_out_locked_values_the_reader_may_not_see(db_url, tmp_path, h):
    """An approver whose role hides a locked field does not see its value in the approval (page or API)."""
    text_ = (DATA / "pipeline.yaml").read_text(encoding="utf-8").replace(
        "  executive:\n    label: 高管\n    entities:\n      opportunity: {read: all}\n",
        "  executive:\n    label: 高管\n    entities:\n      opportunity: {read: all}\n    fields:\n      opportunity.amount: hidden\n")
    assert "opportunity.amount: hidden" in text_
    t = h.make_tenant(db_url, tmp_path, text_)
    try:
        for name, roles, dept, manages in [("rep", ["sales_rep"], "sales_east", []),
                                           ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"]),
                                           ("ceo", ["executive"], "board", [])]:
            t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")
            t.users.change_password(name, "initial-pass-1", PASSWORD)
        rep, mgr, ceo = (t.users.by_username(n) for n in ("rep", "east_mgr", "ceo"))
        d = t.records.create("opportunity", {"name": "保密金额", "amount": "123456", "discount": "25"}, rep)
        [a] = t.approvals.for_record("opportunity", d["id"])
        t.approvals.approve(a["id"], mgr)
        from web import create_app

        app = create_app(t, config={"TESTING": True, "SECRET_KEY": "test-secret"})
        client = app.test_client()
        body = client.get(f"/api/v1/approvals/{a['id']}",
                          headers={"Authorization": f"Bearer {t.users.create_token('ceo')}"}).get_json()
        assert set(body["values"]) == {"discount"} and body["can"]["approve"]
        assert "123456" not in json.dumps(body)
        page = signed_in(app, h, "ceo").get("/inbox").get_data(as_text=True)
        assert "保密金额" in page and "123,456" not in page and "25%" in page
    finally:
        t.dispose()
