"""The duplicate prompt in headless Chromium (R14): a rep types a company that nearly matches one
they already follow, sees the match with its latest follow-ups, confirms "not a duplicate" and saves.

Screenshots land in test-artifacts/browser/dedup-<db>-<width>/ (git-ignored) for review."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

pytestmark = pytest.mark.browser
PASSWORD = "new-secret-2026"
EXISTING = "北京星河科技有限公司"
TYPED = "星河科技(北京)有限公司"


def live_tz(tenant):
    return tenant.timezone


def _seed(tenant):
    user, initial = tenant.users.add("li.lei", ["sales_rep"], department="sales", display_name="李雷")
    tenant.users.change_password("li.lei", initial, PASSWORD)
    user = tenant.users.by_username("li.lei")
    svc = tenant.records
    rec = svc.create("customer", {"name": EXISTING, "industry": "互联网与软件", "source": "expo",
                                  "contact_name": "张伟", "contact_title": "总经理", "mobile": "13800138000"},
                     user, locale="zh_CN")
    now = datetime.now(timezone.utc)
    for i, focus in enumerate(["首次拜访，介绍产品", "发送报价单，客户要求折扣", "确认采购流程，下周签约"]):
        day = now + timedelta(minutes=i)
        svc.create("follow_up", {"customer": rec["id"], "channel": "visit", "focus": focus,
                                 "followed_on": now.astimezone(live_tz(tenant)).date().isoformat(),
                                 "next_steps": "继续跟进",
                                 "next_action_owner": user.id,
                                 "next_contact_at": (day + timedelta(days=7)).isoformat()}, user, locale="zh_CN")
    return rec


@pytest.mark.parametrize("width", [1280, 375])
def test_r14_duplicate_prompt_then_save_anyway(width, browser, live_server, live_tenant, shots_factory, request):
    existing = _seed(live_tenant)
    db = "pg" if "postgresql" in request.node.name else "sqlite"
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN",
                                  is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    page.set_default_timeout(15000)
    shot = shots_factory(page, f"dedup-{db}-{width}", width)
    try:
        page.goto(live_server + "/login")
        page.fill("#username", "li.lei")
        page.fill("#password", PASSWORD)
        page.click("form button.btn-primary")
        page.wait_for_url(live_server + "/")
        page.goto(live_server + "/e/customer/new")
        page.fill("#name", TYPED)
        page.select_option("#industry", "互联网与软件")
        page.select_option("#source", "expo")
        page.fill("#contact_name", "王小明")
        page.fill("#contact_title", "采购经理")
        page.fill("#mobile", "139 1234 5678")
        page.click("form.record-form button.btn-primary:not([name])")
        page.wait_for_load_state()

        panel = page.locator(".dup-panel")
        assert panel.is_visible()
        assert "可能已存在" in panel.inner_text()
        match = panel.locator("a.dup-title", has_text=EXISTING)
        assert match.is_visible()
        assert match.get_attribute("href").endswith(f"/e/customer/{existing['id']}")
        assert re.fullmatch(r"\d+%", panel.locator(".dup-score").first.inner_text().strip())
        text = panel.inner_text()
        assert "李雷" in text and "确认采购流程，下周签约" in text and "首次拜访，介绍产品" in text
        assert page.input_value("#name") == TYPED                    # everything typed is kept
        assert page.input_value("#contact_name") == "王小明"
        shot("duplicate-prompt")

        page.click("button[name=confirm_duplicates]")
        page.wait_for_url(re.compile(r"/e/customer/\d+$"))
        assert page.locator("h1", has_text=TYPED).is_visible()
        assert not page.url.endswith(f"/e/customer/{existing['id']}")
        shot("saved-anyway")
        assert live_tenant.records.count("customer", None) == 2
    finally:
        context.close()
