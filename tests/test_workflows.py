"""Pipelines and approvals in the engine on SQLite and PostgreSQL (R4 R5 R6 R26 R27 R28 R31)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.errors import Conflict, Locked, NotFound, ValidationFailed
from engine.permissions import PermissionDenied
from engine.schema.migrate import migrate
from engine.clock import FrozenClock
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).parent / "data"
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)


@pytest.fixture
def crm(db_url):
    t = Tenant.load(DATA / "pipeline.yaml", db_url=db_url)
    migrate_empty(t)
    t.clock = FrozenClock(T0)
    users = {}
    for name, roles, dept, manages in [("rep", ["sales_rep"], "sales_east", []),
                                       ("rep2", ["sales_rep"], "sales_east", []),
                                       ("east_mgr", ["sales_manager"], "sales_east", ["sales_east"]),
                                       ("boss", ["sales_manager"], "sales", ["sales"]),
                                       ("fin", ["finance"], "finance", []),
                                       ("ceo", ["executive"], "board", []),
                                       ("board1", ["executive"], "board", ["board"]),
                                       ("board2", ["executive"], "board", ["board"]),
                                       ("root", ["admin"], None, [])]:
        users[name] = t.users.add(name, roles, department=dept, manages=manages, password="initial-pass-1")[0]
    yield t, users
    t.dispose()


def deal(t, user, **values):
    return t.records.create("opportunity", {"name": "测试商机", **values}, user)


QUALIFIED = {"budget": "100000", "decision_maker": "王建国"}
PROPOSED = {**QUALIFIED, "amount": "80000", "quote_sent_at": "2026-03-01"}


# --- R5 R6: stages, probability, entry criteria ------------------------------------------------------

def test_r5_stage_field_is_created_and_probability_reaches_formulas(crm):
    t, u = crm
    assert t.model.entities["opportunity"].fields["stage"].type == "stage"
    d = deal(t, u["rep"], amount="50000")
    assert d["stage"] == "contact" and d["weighted"] == Decimal("5000.00")
    d = t.records.update("opportunity", d["id"], {"stage": "qualify", **QUALIFIED}, u["rep"])
    assert d["weighted"] == Decimal("15000.00")


def test_r6_entering_a_stage_reports_every_unmet_criterion(crm):
    t, u = crm
    d = deal(t, u["rep"])
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("opportunity", d["id"], {"stage": "qualify"}, u["rep"])
    msgs = exc.value.errors["stage"]
    assert len(msgs) == 2 and any("预算" in m for m in msgs) and any("决策人" in m for m in msgs)
    assert t.records.get("opportunity", d["id"])["stage"] == "contact"  # nothing changed


def test_r6_jumping_forward_passes_every_gate_on_the_way(crm):
    t, u = crm
    d = deal(t, u["rep"])
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("opportunity", d["id"], {"stage": "negotiation", "discount": "35"}, u["rep"])
    msgs = exc.value.errors["stage"]
    # qualify's two fields, proposal's two, and negotiation's check
    assert len(msgs) == 5 and "折扣超过30%需先审批" in msgs
    d = t.records.update("opportunity", d["id"], {"stage": "negotiation", **PROPOSED, "discount": "10"}, u["rep"])
    assert d["stage"] == "negotiation"


def test_r6_backward_moves_are_allowed_but_required_values_stay(crm):
    t, u = crm
    d = deal(t, u["rep"], stage="proposal", **PROPOSED)
    d = t.records.update("opportunity", d["id"], {"stage": "qualify"}, u["rep"])
    assert d["stage"] == "qualify"
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("opportunity", d["id"], {"budget": ""}, u["rep"])
    assert "预算" in exc.value.errors["stage"][0]


def test_r6_forward_only_refuses_moving_back(tmp_path, db_url):
    text = (DATA / "pipeline.yaml").read_text(encoding="utf-8").replace("    stagnation_days: 14\n",
                                                                       "    stagnation_days: 14\n    forward_only: true\n")
    (tmp_path / "fo.yaml").write_text(text, encoding="utf-8")
    t = Tenant.load(tmp_path / "fo.yaml", db_url=db_url)
    migrate(t)
    d = t.records.create("opportunity", {"name": "x", "stage": "proposal", **PROPOSED})
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("opportunity", d["id"], {"stage": "contact"})
    assert "只能向前" in exc.value.errors["stage"][0]
    assert t.records.update("opportunity", d["id"], {"stage": "lost", "lost_reason": "预算取消"})["stage"] == "lost"
    t.dispose()


def test_r31_lost_needs_a_reason_and_won_is_final_unless_reopened_by_an_allowed_role(crm):
    t, u = crm
    d = deal(t, u["rep"])
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("opportunity", d["id"], {"stage": "lost"}, u["rep"])
    assert "丢单原因" in exc.value.errors["stage"][0]
    d = t.records.update("opportunity", d["id"], {"stage": "won", "contract_amount": "90000",
                                                  "delivery_date": "2026-05-01", **PROPOSED}, u["rep"])
    with pytest.raises(ValidationFailed) as exc:
        t.records.update("opportunity", d["id"], {"stage": "negotiation"}, u["rep"])
    assert "重新打开" in exc.value.errors["stage"][0]
    assert t.records.update("opportunity", d["id"], {"stage": "negotiation"}, u["root"])["stage"] == "negotiation"


def test_r6_criteria_hold_on_import_and_bulk_edit(crm):
    t, u = crm
    from engine.records.service import BulkFailed

    with pytest.raises(BulkFailed) as exc:
        t.records.create_many("opportunity", [{"name": "a", "stage": "won"}, {"name": "b"}], u["rep"])
    assert {e.row for e in exc.value.row_errors} == {1}   # won's criteria and those of every stage before it
    assert {e.field for e in exc.value.row_errors} >= {"stage", "contract_amount", "delivery_date", "budget"}
    a, b = deal(t, u["rep"]), deal(t, u["rep"], **QUALIFIED)
    with pytest.raises(ValidationFailed):
        t.records.update_many("opportunity", [b["id"], a["id"]], {"stage": "qualify"}, u["rep"])
    assert t.records.get("opportunity", b["id"])["stage"] == "contact"  # all or nothing


# --- stage history and stagnation (R27) ---------------------------------------------------------------

def test_r27_stage_history_records_every_entry_and_exit(crm):
    t, u = crm
    d = deal(t, u["rep"])
    t.clock.advance(days=3)
    t.records.update("opportunity", d["id"], {"stage": "qualify", **QUALIFIED}, u["rep"])
    t.clock.advance(days=2)
    t.records.update("opportunity", d["id"], {"stage": "contact"}, u["east_mgr"])
    hist = t.pipelines.history("opportunity", d["id"])
    assert [(h["stage"], h["days"], h["entered_by"], h["left_by"]) for h in hist] == [
        ("contact", 3.0, "rep", "rep"), ("qualify", 2.0, "rep", "east_mgr"), ("contact", 0.0, "east_mgr", None)]
    assert hist[0]["entered_at"] == T0.isoformat()


def test_r27_stagnation_flags_deals_past_the_limit_with_a_frozen_clock(crm):
    t, u = crm
    old = deal(t, u["rep"], name="老商机")
    t.clock.advance(days=10)
    fresh = deal(t, u["rep"], name="新商机")
    moved = deal(t, u["rep"], name="刚推进")
    t.clock.advance(days=5)  # old: 15 days in contact, fresh 5
    t.records.update("opportunity", moved["id"], {"stage": "qualify", **QUALIFIED}, u["rep"])
    names = lambda page: sorted(r["name"] for r in page.items)  # noqa: E731
    assert names(t.records.list("opportunity", u["rep"], filters={"stagnant": "1"})) == ["老商机"]
    assert names(t.records.list("opportunity", u["rep"], filters={"stagnant": "0"})) == ["刚推进", "新商机"]
    assert names(t.records.list("opportunity", u["rep2"], filters={"stagnant": "1"})) == []  # scope still applies
    info = t.pipelines.stagnation(t.model.pipelines["sales"], [old["id"], fresh["id"]])
    assert info[old["id"]]["stagnant"] and info[old["id"]]["days"] == 15 and not info[fresh["id"]]["stagnant"]
    board = t.pipelines.board("sales", u["rep"])
    contact = board.columns[0]
    assert contact.count == 2 and [c.stagnant for c in contact.cards if c.title == "老商机"] == [True]
    assert [s["title"] for s in t.pipelines.stagnant_for_owner(u["rep"])] == ["老商机"]


def test_r27_average_mode_flags_deals_longer_than_the_stage_average(tmp_path, db_url):
    text = (DATA / "pipeline.yaml").read_text(encoding="utf-8").replace("stagnation_days: 14", "stagnation_days: average")
    (tmp_path / "avg.yaml").write_text(text, encoding="utf-8")
    t = Tenant.load(tmp_path / "avg.yaml", db_url=db_url)
    migrate(t)
    t.clock = FrozenClock(T0)
    quick = [t.records.create("opportunity", {"name": f"q{i}"}) for i in range(2)]
    slow = t.records.create("opportunity", {"name": "慢"})
    t.clock.advance(days=4)
    for q in quick:
        t.records.update("opportunity", q["id"], {"stage": "qualify", **QUALIFIED})  # average in contact: 4 days
    t.clock.advance(days=1)
    assert [r["name"] for r in t.records.list("opportunity", filters={"stagnant": "1"}).items] == ["慢"]
    assert t.pipelines.limits(t.model.pipelines["sales"]) == {"contact": pytest.approx(4.0)}
    t.dispose()


def test_r26_board_counts_amounts_and_weighted_amounts_per_stage(crm):
    t, u = crm
    deal(t, u["rep"], amount="10000")
    deal(t, u["rep"], amount="30000")
    deal(t, u["rep"], stage="proposal", **PROPOSED)
    deal(t, u["rep2"], amount="99999")  # not visible to rep
    board = t.pipelines.board("sales", u["rep"])
    by = {c.stage.name: c for c in board.columns}
    assert (by["contact"].count, by["contact"].amount, by["contact"].weighted) == (2, Decimal("40000"), Decimal("4000.00"))
    assert (by["proposal"].count, by["proposal"].weighted) == (1, Decimal("40000.00"))
    assert board.total_weighted == Decimal("44000.00")


def test_r26_checklist_of_key_actions_and_deliverables(crm):
    t, u = crm
    d = deal(t, u["rep"], stage="qualify", **QUALIFIED)
    items = t.pipelines.checklist("sales", d["id"], u["rep"])
    assert [(i["kind"], i["label"]) for i in items] == [("action", "确认预算"), ("action", "识别决策人"),
                                                        ("action", "了解采购流程"), ("deliverable", "需求调研表")]
    items = t.pipelines.tick("sales", d["id"], "action", 1, True, u["rep"])
    assert [i["done"] for i in items] == [False, True, False, False] and items[1]["done_by"] == "rep"
    with pytest.raises(NotFound):    # another rep's deal: not even visible
        t.pipelines.tick("sales", d["id"], "action", 0, True, u["rep2"])


# --- R4 approvals --------------------------------------------------------------------------------------

def waiting(t, user):
    return [a["id"] for a in t.approvals.list(user, mine=True)]


def test_r4_discount_over_20_goes_to_the_manager_then_the_ceo(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="25")
    assert d["discount_status"] == "pending"
    [a] = t.approvals.for_record("opportunity", d["id"], u["rep"])
    assert [s["status"] for s in a["steps"]] == ["active", "waiting", "waiting"]
    assert [x["name"] for x in a["steps"][0]["approvers"]] == ["east_mgr"]
    assert waiting(t, u["east_mgr"]) == [a["id"]] and waiting(t, u["boss"]) == []
    assert any(n["approval_id"] == a["id"] for n in t.notifications.list(u["east_mgr"]))
    a = t.approvals.approve(a["id"], u["east_mgr"], "同意")
    assert [s["status"] for s in a["steps"]] == ["approved", "skipped", "active"]   # finance only over 30%
    assert waiting(t, u["ceo"]) == [a["id"]]
    a = t.approvals.approve(a["id"], u["ceo"], "")
    assert a["status"] == "approved"
    assert t.records.get("opportunity", d["id"])["discount_status"] == "approved"
    assert "批准" in t.notifications.list(u["rep"])[0]["text"]


def test_r4_discount_over_30_also_needs_finance(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="35")
    [a] = t.approvals.for_record("opportunity", d["id"])
    t.approvals.approve(a["id"], u["east_mgr"])
    assert waiting(t, u["fin"]) == [a["id"]]
    t.approvals.approve(a["id"], u["fin"])
    assert t.approvals.approve(a["id"], u["ceo"])["status"] == "approved"


def test_r4_an_all_step_needs_every_approver(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="2000000")
    [a] = t.approvals.for_record("opportunity", d["id"])
    assert a["flow"] == "big_deal" and sorted(x["name"] for x in a["steps"][0]["approvers"]) == ["board1", "board2"]
    a = t.approvals.approve(a["id"], u["board1"])
    assert a["status"] == "pending" and waiting(t, u["board1"]) == [] and waiting(t, u["board2"]) == [a["id"]]
    assert t.approvals.approve(a["id"], u["board2"])["status"] == "approved"


def test_r4_reject_returns_it_to_the_submitter_who_may_resubmit(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    with pytest.raises(ValidationFailed):
        t.approvals.reject(a["id"], u["east_mgr"], "")       # a reason is required
    a = t.approvals.reject(a["id"], u["east_mgr"], "折扣太高")
    assert a["status"] == "rejected" and t.records.get("opportunity", d["id"])["discount_status"] == "rejected"
    assert "折扣太高" in t.notifications.list(u["rep"])[0]["text"]
    # the lock lifts: the submitter changes the discount, which starts a new approval by itself
    d = t.records.update("opportunity", d["id"], {"discount": "22"}, u["rep"])
    latest = t.approvals.for_record("opportunity", d["id"])[0]
    assert latest["status"] == "pending" and latest["id"] != a["id"]
    # …or resubmits as it is
    t.approvals.withdraw(latest["id"], u["rep"])
    again = t.approvals.resubmit(latest["id"], u["rep"], "请再看看")
    assert again["status"] == "pending" and waiting(t, u["east_mgr"]) == [again["id"]]
    with pytest.raises(Conflict):
        t.approvals.resubmit(a["id"], u["rep"])                 # an older one cannot be revived


def test_r4_the_submitter_may_withdraw_only_their_own(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    with pytest.raises(PermissionDenied):
        t.approvals.withdraw(a["id"], u["east_mgr"])
    a = t.approvals.withdraw(a["id"], u["rep"])
    assert a["status"] == "withdrawn" and waiting(t, u["east_mgr"]) == []
    assert t.records.update("opportunity", d["id"], {"amount": "90000"}, u["rep"])["amount"] == Decimal("90000")


def test_r4_self_approval_is_refused(crm):
    t, u = crm
    d = deal(t, u["east_mgr"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    assert [x["name"] for x in a["steps"][0]["approvers"]] == ["boss"]   # the manager above, not themself
    with pytest.raises(PermissionDenied) as exc:
        t.approvals.approve(a["id"], u["east_mgr"])
    assert "自己" in str(exc.value)
    with pytest.raises(PermissionDenied):
        t.approvals.approve(a["id"], u["rep"])   # not an approver at all


def test_r4_locked_fields_are_refused_while_pending(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="25")
    with pytest.raises(Locked) as exc:
        t.records.update("opportunity", d["id"], {"discount": "15"}, u["rep"])
    assert "折扣" in str(exc.value) and exc.value.fields == ["discount"]
    with pytest.raises(Locked):
        t.records.update("opportunity", d["id"], {"amount": "1"}, u["root"])        # admins too
    with pytest.raises(Locked):
        t.records.delete("opportunity", d["id"], u["root"])
    assert t.records.update("opportunity", d["id"], {"name": "改个名字"}, u["rep"])["name"] == "改个名字"
    got = t.records.get("opportunity", d["id"])
    assert (got["discount"], got["amount"]) == (Decimal("25"), Decimal("100000"))


def test_r4_changing_a_locked_field_after_approval_starts_a_new_approval(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    t.approvals.approve(a["id"], u["east_mgr"])
    t.approvals.approve(a["id"], u["ceo"])
    d = t.records.update("opportunity", d["id"], {"discount": "28"}, u["rep"])
    assert d["discount_status"] == "pending"
    assert [x["status"] for x in t.approvals.for_record("opportunity", d["id"])] == ["pending", "approved"]
    d2 = deal(t, u["rep"], amount="100000", discount="21")
    [b] = t.approvals.for_record("opportunity", d2["id"])
    t.approvals.approve(b["id"], u["east_mgr"]); t.approvals.approve(b["id"], u["ceo"])  # noqa: E702
    t.records.update("opportunity", d2["id"], {"name": "只改名称"}, u["rep"])         # not locked: no new approval
    assert len(t.approvals.for_record("opportunity", d2["id"])) == 1


def test_r4_a_double_clicked_approve_performs_one_transition(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    results = []

    def click():
        try:
            results.append(t.approvals.approve(a["id"], u["east_mgr"])["status"])
        except Conflict as exc:
            results.append(f"conflict: {exc}")

    threads = [threading.Thread(target=click) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(r.startswith("conflict") for r in results) == [False, True, True, True]
    got = t.approvals.get(a["id"])
    assert [s["status"] for s in got["steps"]] == ["approved", "skipped", "active"]
    assert len(got["steps"][0]["decisions"]) == 1


def test_r4_bypass_attempts_are_refused_and_change_nothing(crm):
    t, u = crm
    from engine.records.service import BulkFailed

    d = deal(t, u["rep"], amount="100000", discount="35", stage="negotiation", **{
        k: v for k, v in PROPOSED.items() if k != "amount"}) if False else None
    d = deal(t, u["rep"], amount="100000", discount="25")
    for attempt in ({"discount_status": "approved"}, {"discount_status": ""}):
        with pytest.raises(ValidationFailed) as exc:
            t.records.update("opportunity", d["id"], attempt, u["root"])   # direct PATCH of the status, even by admin
        assert "不能直接修改" in exc.value.errors["discount_status"][0]
    with pytest.raises(ValidationFailed):
        t.records.update_many("opportunity", [d["id"]], {"discount_status": "approved"}, u["rep"])
    won = {"stage": "won", "contract_amount": "100000", "delivery_date": "2026-06-01", **QUALIFIED,
           "quote_sent_at": "2026-03-01"}
    with pytest.raises(ValidationFailed) as exc:
        t.records.update_many("opportunity", [d["id"]], won, u["rep"])    # cannot close on an unapproved discount
    assert "折扣审批" in exc.value.errors["stage"][0]
    with pytest.raises(BulkFailed) as exc:
        t.records.create_many("opportunity", [{"name": "导入", "discount_status": "approved"},
                                              {"name": "导入成交", "discount": "40", **won}], u["rep"])
    assert sorted({e.row for e in exc.value.row_errors}) == [1, 2]
    got = t.records.get("opportunity", d["id"])
    assert (got["discount_status"], got["stage"], got["version"]) == ("pending", "contact", d["version"])
    assert t.records.count("opportunity") == 1
    [a] = t.approvals.for_record("opportunity", d["id"])
    assert a["status"] == "pending" and a["steps"][0]["decisions"] == []


def test_r4_a_disabled_manager_escalates_to_the_next_manager_up_and_says_so(crm):
    t, u = crm
    t.users.disable("east_mgr")
    d = deal(t, u["rep"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    assert [x["name"] for x in a["steps"][0]["approvers"]] == ["boss"]
    assert "east_mgr" in a["steps"][0]["note"]
    notes = [h.get("note") or "" for h in t.records.history("opportunity", d["id"])]
    assert any("east_mgr" in n for n in notes)


def test_r4_nobody_above_goes_to_the_admins_never_a_silent_skip(crm):
    t, u = crm
    t.users.disable("east_mgr")
    t.users.disable("boss")
    d = deal(t, u["rep"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    assert [x["name"] for x in a["steps"][0]["approvers"]] == ["root"] and a["steps"][0]["status"] == "active"


def test_r4_approvers_may_read_the_record_they_decide(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="35")
    [a] = t.approvals.for_record("opportunity", d["id"])
    t.approvals.approve(a["id"], u["east_mgr"])
    assert t.records.get("opportunity", d["id"], u["fin"])["name"] == "测试商机"
    assert t.approvals.get(a["id"], u["fin"])["can"]["approve"] is True


# --- R28 ask for help ----------------------------------------------------------------------------------

def test_r28_ask_for_help_creates_a_task_for_the_helper(crm):
    t, u = crm
    d = deal(t, u["rep"])
    task = t.tasks.ask_for_help("opportunity", d["id"], u["rep"], "user:fin", "请帮忙核算报价")
    assert task["status"] == "open" and task["record_id"] == d["id"]
    assert [x["id"] for x in t.tasks.list(u["fin"])] == [task["id"]]
    assert t.notifications.unread_count(u["fin"]) == 1
    assert t.records.get("opportunity", d["id"], u["fin"])["id"] == d["id"]   # the helper can see the deal
    with pytest.raises(PermissionDenied):
        t.tasks.complete(task["id"], u["rep"])
    assert t.tasks.complete(task["id"], u["fin"])["status"] == "done"
    role_task = t.tasks.ask_for_help("opportunity", d["id"], u["rep"], "role:executive", "需要高层支持")
    assert role_task["id"] in [x["id"] for x in t.tasks.list(u["board2"])]
    with pytest.raises(ValidationFailed):
        t.tasks.ask_for_help("opportunity", d["id"], u["rep"], "user:nobody", "x")


def test_r50_records_that_predate_the_pipeline_enter_their_stage_on_migrate(crm):
    t, u = crm
    a = deal(t, u["rep"])
    t.clock.advance(days=20)
    h = t.schema.system["stage_history"]
    with t.write() as conn:
        conn.execute(h.delete())                      # as if the pipeline had just been configured
    migrate(t)
    migrate(t)                                        # idempotent
    rows = t.pipelines.history("opportunity", a["id"])
    assert [(r["stage"], r["entered_at"]) for r in rows] == [("contact", T0.isoformat())]
    assert [r["name"] for r in t.records.list("opportunity", filters={"stagnant": "1"}).items] == ["测试商机"]


def test_r44_an_approver_who_leaves_mid_approval_hands_it_to_the_next_manager_up(crm):
    t, u = crm
    d = deal(t, u["rep"], amount="100000", discount="25")
    [a] = t.approvals.for_record("opportunity", d["id"])
    assert waiting(t, u["east_mgr"]) == [a["id"]]
    t.users.disable("east_mgr")
    assert waiting(t, u["boss"]) == [a["id"]]
    step = t.approvals.get(a["id"])["steps"][0]
    assert [x["name"] for x in step["approvers"]] == ["boss"] and "east_mgr was disabled" in step["note"]
    assert t.approvals.approve(a["id"], u["boss"])["steps"][0]["status"] == "approved"


def test_r27_stalled_command_lists_and_notifies_each_owner_once(crm, tmp_path):
    from click.testing import CliRunner

    from engine.cli.workflow_cmds import approvals, stalled

    t, u = crm
    deal(t, u["rep"], name="停滞商机")
    deal(t, u["rep"], name="另一个", amount="100000", discount="25")
    t.clock.advance(days=15)
    with t.write() as conn:   # the CLI runs on the real clock: age the history instead
        h = t.schema.system["stage_history"]
        for rid, at in conn.execute(sa.select(h.c.id, h.c.entered_at)).all():
            conn.execute(h.update().where(h.c.id == rid).values(entered_at=at - timedelta(days=400)))
    runner = CliRunner()
    args = [str(DATA / "pipeline.yaml"), "--db", t.db_url]
    first = runner.invoke(stalled, args + ["--notify"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "停滞商机" in first.output and "2 stalled record(s)" in first.output and "notified 2" in first.output
    assert "notified 0" in runner.invoke(stalled, args + ["--notify"]).output
    assert [n["kind"] for n in t.notifications.list(u["rep"])].count("stagnant") == 2
    out = runner.invoke(approvals, args + ["--as", "east_mgr", "--mine"]).output
    assert "折扣审批" in out and "1 approval(s)" in out


BAD_WORKFLOWS = """\
tenant: {name: bad}
roles:
  finance: {label: 财务}
entities:
  opportunity:
    fields:
      name: {type: text}
      amount: {type: money}
      level: {type: select, options: [A, B]}
pipelines:
  sales:
    entity: opportunity
    field: level
    stages:
      - {name: contact, probability: 10, requires: [budgt]}
      - {name: won, probability: 100, outcome: won, checks: [{check: "amount >", message: x}]}
  other:
    entity: opportunty
    stages: [{name: a, probability: 1}, {name: b, probability: 2}]
approvals:
  discount:
    entity: opportunity
    when: "discont > 20"
    lock: [amount, discount]
    steps:
      - {approver: "role:finanse"}
      - {approver: "boss"}
"""


def test_r4_r6_check_reports_pipeline_and_approval_mistakes_at_file_line_col(tmp_path):
    from engine.config.build import check_config, default_plugins

    path = tmp_path / "bad.yaml"
    path.write_text(BAD_WORKFLOWS, encoding="utf-8")
    _model, issues = check_config(path, *default_plugins())
    got = sorted((i.location.line, i.message) for i in issues)
    lines = [line for line, _ in got]
    text = "\n".join(m for _, m in got)
    assert "opportunity.level is select; a pipeline's field must be of type stage" in text and 13 in lines
    assert "requires: 'budgt' is not a field of opportunity" in text and 15 in lines
    assert "check:" in text and 16 in lines                                  # the broken expression
    assert "unknown entity 'opportunty' (did you mean 'opportunity'?)" in text and 18 in lines
    assert "unknown field 'discont'" in text and 23 in lines
    assert "lock: 'discount' is not a field of opportunity" in text and 24 in lines
    assert "unknown role 'finanse' (did you mean 'finance'?)" in text and 26 in lines
    assert "approver: 'boss' is not one of manager, manager:<levels up>, role:<role>" in text and 27 in lines
    assert all(i.location.file.endswith("bad.yaml") and i.location.col > 0 for i in issues)
