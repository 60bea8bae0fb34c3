"""Approvals cannot be walked around, and a refused stage move says which fields to fill (issue #11,
points 5 and 12; R4 R6 R26), on SQLite and PostgreSQL, over the issue's pipeline and approvals
(tests/data/pipeline.yaml) with a customer the deals reference."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import Locked, ValidationFailed
from engine.records.service import BulkFailed

DATA = Path(__file__).resolve().parent.parent / "data"
QUALIFIED = {"budget": "100000", "decision_maker": "王建国"}
PROPOSED = {**QUALIFIED, "amount": "80000", "quote_sent_at": "2026-03-01"}
WON = {"stage": "won", "contract_amount": "80000", "delivery_date": "2026-06-01"}


def config() -> str:
    """pipeline.yaml, plus a customer that deals reference and the discount approval locks."""
    text = (DATA / "pipeline.yaml").read_text(encoding="utf-8")
    text = text.replace("      opportunity: {read: own, create: true, update: own, import: true}\n",
                        "      opportunity: {read: own, create: true, update: own, import: true}\n"
                        "      customer: {read: all, create: true, update: all, delete: all}\n", 1)
    text = text.replace("entities:\n  opportunity:\n",
                        "entities:\n  customer:\n    label: 客户\n    title: name\n    fields:\n"
                        "      name: {type: text, label: 公司名称, required: true}\n  opportunity:\n", 1)
    text = text.replace("      name: {type: text, label: 商机名称, required: true}\n",
                        "      name: {type: text, label: 商机名称, required: true}\n"
                        "      customer: {type: reference, label: 客户, to: customer}\n", 1)
    text = text.replace("    lock: [amount, discount]\n", "    lock: [amount, discount, customer]\n", 1)
    assert text.count("customer") == 5  # every replacement above took place
    return text


@pytest.fixture
def tenant(db_url, tmp_path, h):
    t = h.make_tenant(db_url, tmp_path, config())
    for name, roles, dept, manages in [("rep", ["sales_rep"], "sales_east", []),
                                       ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"]),
                                       ("ceo", ["executive"], "board", []), ("root", ["admin"], None, [])]:
        t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")
    yield t
    t.dispose()


@pytest.fixture
def u(tenant):
    return {x.username: x for x in tenant.users.list(include_inactive=True)}


class Api:
    def __init__(self, client, token):
        self.client, self.token = client, token

    def call(self, method, path, body=None):
        return self.client.open(path, method=method, data=json.dumps(body, ensure_ascii=False),
                                content_type="application/json",
                                headers={"Authorization": f"Bearer {self.token}", "Accept-Language": "en"})


@pytest.fixture
def api(tenant, client):
    return lambda username: Api(client, tenant.users.create_token(username))


def deal(t, user, **values):
    return t.records.create("opportunity", {"name": "测试商机", **values}, user)


def pending(t, rid):
    return [a for a in t.approvals.for_record("opportunity", rid) if a["status"] == "pending"]


# --- point 5: the walk-around ------------------------------------------------------------------------

def test_security_the_walk_around_from_the_issue_is_refused_when_the_won_discount_is_raised(tenant, u):
    t, rep = tenant, u["rep"]
    d = deal(t, rep, stage="negotiation", **PROPOSED, discount="25")
    [a] = pending(t, d["id"])
    t.approvals.withdraw(a["id"], rep)                                     # 1. withdraw
    with pytest.raises(ValidationFailed) as exc:                           # (still needs the approval)
        t.records.update("opportunity", d["id"], WON, rep)
    assert "折扣审批" in " ".join(exc.value.errors["stage"])
    d = t.records.update("opportunity", d["id"], {"discount": "10"}, rep)  # 2. a small discount
    d = t.records.update("opportunity", d["id"], WON, rep)                 # 3. win: legitimate
    with pytest.raises(Locked) as exc:                                     # 4. raise the discount: refused
        t.records.update("opportunity", d["id"], {"discount": "90"}, rep)
    assert exc.value.fields == ["discount"] and "签约成交" in str(exc.value)
    with pytest.raises(Locked):                                            # not even an admin, without reopening
        t.records.update("opportunity", d["id"], {"discount": "90"}, u["root"])
    with pytest.raises(Locked):                                            # nor a bulk edit
        t.records.update_many("opportunity", [d["id"]], {"discount": "90"}, rep)
    got = t.records.get("opportunity", d["id"])
    assert (got["stage"], got["discount"]) == ("won", Decimal("10")) and pending(t, d["id"]) == []
    assert t.records.update("opportunity", d["id"], {"name": "改个名字"}, rep)["name"] == "改个名字"
    # a reopen_roles user reopens it; the raised discount then needs the approval again before winning
    d = t.records.update("opportunity", d["id"], {"stage": "negotiation", "discount": "28"}, u["root"])
    assert d["discount_status"] == "pending" and len(pending(t, d["id"])) == 1
    with pytest.raises(ValidationFailed):
        t.records.update("opportunity", d["id"], {"stage": "won"}, u["root"])


def test_security_withdraw_while_when_holds_leaves_the_record_needing_approval(tenant, u, api):
    t, rep = tenant, u["rep"]
    d = deal(t, rep, stage="negotiation", **PROPOSED, discount="25")
    [a] = pending(t, d["id"])
    client = api("rep")
    assert client.call("POST", f"/api/v1/approvals/{a['id']}/withdraw", {}).status_code == 200
    for path, body in ((f"/api/v1/opportunity/{d['id']}", {**WON, "version": d["version"] + 1}),
                       ("/api/v1/pipelines/sales/move", {"id": d["id"], "stage": "won"})):
        resp = client.call("PATCH" if "move" not in path else "POST", path, body)
        assert resp.status_code == 422, resp.get_json()
    with pytest.raises(ValidationFailed):
        t.records.update_many("opportunity", [d["id"]], WON, rep)
    assert t.records.get("opportunity", d["id"])["stage"] == "negotiation"
    # approved, won — and a won deal's discount stays what was approved, on every path
    a = t.approvals.resubmit(a["id"], rep)
    t.approvals.approve(a["id"], u["east_mgr"])
    t.approvals.approve(a["id"], u["ceo"])
    d = t.records.update("opportunity", d["id"], WON, rep)
    resp = client.call("PATCH", f"/api/v1/opportunity/{d['id']}", {"discount": "90", "version": d["version"]})
    assert resp.status_code == 423 and resp.get_json()["fields"] == ["discount"]
    assert pending(t, d["id"]) == []


def test_security_merge_cannot_change_a_field_a_pending_approval_locked(tenant, u, api):
    t, rep = tenant, u["rep"]
    keep = t.records.create("customer", {"name": "星河科技"}, rep)
    dup = t.records.create("customer", {"name": "星河科技有限公司"}, rep)
    d = deal(t, rep, customer=dup["id"], amount="100000", discount="25")   # discount approval pending
    assert len(pending(t, d["id"])) == 1
    resp = api("rep").call("POST", "/api/v1/customer/merge", {"survivor": keep["id"], "merged": [dup["id"]]})
    assert resp.status_code == 423, resp.get_json()
    assert resp.get_json()["fields"] == ["customer"]
    assert t.records.get("opportunity", d["id"])["customer"] == dup["id"]   # nothing changed
    assert t.records.count("customer") == 2
    from engine.dedup.merge import merge

    with pytest.raises(Locked):
        merge(t, "customer", keep["id"], [dup["id"]], {}, u["root"])


def test_security_merge_into_a_won_deal_cannot_change_what_its_approval_depends_on(tenant, u):
    t, rep = tenant, u["rep"]
    from engine.dedup.merge import merge

    won = deal(t, rep, stage="negotiation", **PROPOSED, discount="10")
    won = t.records.update("opportunity", won["id"], WON, rep)
    other = deal(t, rep, discount="90")
    [a] = pending(t, other["id"])
    t.approvals.withdraw(a["id"], rep)
    with pytest.raises(Locked):
        merge(t, "opportunity", won["id"], [other["id"]], {"discount": other["id"]}, u["root"])
    assert t.records.get("opportunity", won["id"])["discount"] == Decimal("10")


# --- point 5: a jump to an outcome passes every earlier gate ------------------------------------------

def test_R6_contact_to_won_reports_the_earlier_stages_unmet_criteria(tenant, u):
    t, rep = tenant, u["rep"]
    d = deal(t, rep)
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("opportunity", d["id"], WON, rep)
    msgs = " ".join(exc.value.errors["stage"])
    for label in ("预算", "决策人", "金额", "报价日期"):                    # qualify's and proposal's requires
        assert label in msgs
    with pytest.raises(BulkFailed) as exc:                                  # an import straight into won
        t.records.create_many("opportunity", [{"name": "导入", **WON}], rep)
    assert any("预算" in e.message for e in exc.value.row_errors)
    d = t.records.update("opportunity", d["id"], {**WON, **PROPOSED}, rep)
    assert d["stage"] == "won"
    lost = deal(t, rep)                                                     # a deal may be lost at any stage
    assert t.records.update("opportunity", lost["id"], {"stage": "lost", "lost_reason": "预算取消"}, rep)["stage"] == "lost"


# --- point 12: machine-readable criteria errors ------------------------------------------------------

def test_security_a_refused_move_puts_each_unmet_field_under_its_own_key(tenant, u, api):
    t, rep = tenant, u["rep"]
    d = deal(t, rep, amount="10000")
    client = api("rep")
    resp = client.call("POST", "/api/v1/pipelines/sales/move", {"id": d["id"], "stage": "qualify"})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert len(errors["stage"]) == 2
    assert errors["budget"] == ["required to enter 需求确认"] and errors["decision_maker"] == ["required to enter 需求确认"]
    resp = client.call("PATCH", f"/api/v1/opportunity/{d['id']}", {"stage": "won", "version": d["version"]})
    assert resp.status_code == 422
    errors = resp.get_json()["errors"]
    assert set(errors) == {"stage", "budget", "decision_maker", "quote_sent_at", "contract_amount", "delivery_date"}
    assert errors["contract_amount"] == ["required to enter 签约成交"]
    assert errors["budget"] == ["required to enter 需求确认"]
    d = t.records.update("opportunity", d["id"], {"stage": "qualify", **QUALIFIED}, rep)
    resp = client.call("PATCH", f"/api/v1/opportunity/{d['id']}", {"budget": None, "version": d["version"]})
    assert resp.status_code == 422 and set(resp.get_json()["errors"]) == {"stage", "budget"}
