"""A sales rep's first day, in headless Chromium at desktop and phone widths (R2, R8, R10, R12, R15).

Screenshots of every page land in test-artifacts/browser/<db>-<width>/ (git-ignored) for review.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1280, 375])
def test_r2_r10_r12_first_day_login_customer_search_edit_follow_up(width, browser, live_server, live_tenant,
                                                                    shots_factory, request):
    _user, initial = live_tenant.users.add("li.lei", ["sales_rep"], department="sales", display_name="李雷")
    db = "pg" if "postgresql" in request.node.name else "sqlite"
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="zh-CN",
                                  is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    page.set_default_timeout(15000)
    shot = shots_factory(page, f"{db}-{width}", width)
    try:
        # -- R2: sign in with the initial password, forced to choose a new one
        page.goto(live_server + "/")
        assert "/login" in page.url
        shot("login")
        page.fill("#username", "li.lei")
        page.fill("#password", initial)
        page.click("form button.btn-primary")
        page.wait_for_url(re.compile(r"/password"))
        assert page.locator("text=首次登录需要修改初始密码").is_visible()
        shot("change-password")
        page.fill("#current", initial)
        page.fill("#new", "new-secret-2026")
        page.fill("#confirm", "new-secret-2026")
        page.click("form button.btn-primary")
        page.wait_for_url(live_server + "/")

        # -- R8: the workbench and its one-click "new customer"
        assert page.locator("h1", has_text="李雷").is_visible()
        shot("workbench")
        page.click("a.btn-primary:has-text('新建客户')")
        page.wait_for_url(re.compile(r"/e/customer/new"))
        shot("customer-new")

        # -- R12/R13: a failed submit shows every error inline and keeps what was typed
        page.fill("#name", "杭州云栖信息科技有限公司")
        page.fill("#contact_name", "王总")
        page.fill("#mobile", "12345")
        page.click("form.record-form button.btn-primary")
        page.wait_for_load_state()
        assert page.locator(".alert-error").is_visible()
        assert page.locator("#industry-error").is_visible()            # required select
        assert page.locator("#mobile-error").is_visible()              # bad phone
        assert "真实姓名" in page.locator("#contact_name-error").inner_text()   # R13 real names
        assert page.input_value("#name") == "杭州云栖信息科技有限公司"
        assert page.input_value("#mobile") == "12345"
        shot("customer-errors")
        page.select_option("#industry", "互联网与软件")
        page.select_option("#source", "expo")
        page.fill("#contact_name", "王小明")
        page.fill("#contact_title", "采购经理")
        page.fill("#mobile", "139 1234 5678")
        page.click("form.record-form button.btn-primary")
        page.wait_for_url(re.compile(r"/e/customer/\d+$"))
        customer_url = page.url
        assert page.locator("h1", has_text="杭州云栖信息科技有限公司").is_visible()
        assert page.locator("text=+86-139-1234-5678").first.is_visible()   # stored normalised, shown formatted
        shot("customer-detail")

        # -- R10: quick search from the top bar finds it by name and by phone
        page.fill("#quick-search", "云栖")
        hit = page.locator("#search-results a.hit", has_text="杭州云栖信息科技有限公司")
        hit.wait_for()
        shot("quick-search")
        page.fill("#quick-search", "13912345678")
        page.locator("#search-results a.hit", has_text="杭州云栖信息科技有限公司").click()
        page.wait_for_url(customer_url)

        # -- edit, then see the change in the timeline (R43/R45)
        page.click("a.btn-primary:has-text('编辑')")
        page.wait_for_url(re.compile(r"/edit$"))
        page.fill("#short_name", "云栖科技")
        shot("customer-edit")
        page.click("form.record-form button.btn-primary")
        page.wait_for_url(customer_url)
        timeline = page.locator("#timeline")
        assert timeline.locator("text=修改了").first.is_visible()
        assert timeline.locator(".change-list .new", has_text="云栖科技").is_visible()
        shot("customer-timeline")

        # -- R15: log a follow-up from the customer's page, customer pre-filled
        page.locator("#related-follow_up-customer a.btn", has_text="添加").click()
        page.wait_for_url(re.compile(r"/e/follow_up/new\?customer=\d+"))
        assert page.input_value("#customer") == "杭州云栖信息科技有限公司"
        page.fill("#focus", "确认采购预算和上线时间")
        page.fill("#next_steps", "下周三上门演示")
        page.select_option("#next_action_owner", label="李雷")
        page.fill("#next_contact_at", "2030-01-15T10:00")
        shot("follow-up-new")
        page.click("form.record-form button.btn-primary")
        page.wait_for_url(re.compile(r"/e/follow_up/\d+$"))
        shot("follow-up-detail")
        page.goto(customer_url)
        related = page.locator("#related-follow_up-customer")
        assert related.locator(".count-badge", has_text="1").is_visible()
        shot("customer-with-follow-up")

        # -- the subtable grid: add a line, see the live line total
        live_tenant.records.create("product", {"name": "CRM 标准版", "sku": "CRM-STD", "category": "software",
                                               "price": "1000"}, None)  # set up by the engine itself
        page.goto(live_server + "/e/quote/new")
        row = page.locator("[data-subtable=lines] tbody tr.sub-row").first
        row.locator(".ref-input").fill("CRM")
        row.locator(".ref-option", has_text="CRM 标准版").click()
        row.locator("input[name$='-quantity']").fill("3")
        row.locator("input[name$='-unit_price']").fill("1200")
        # (a locator wait, not wait_for_function: the app's CSP refuses the string eval that needs)
        expect(page.locator("[data-row-formula=line_total]").first).to_contain_text("3,600")
        page.click("button.add-row")
        assert page.locator("[data-subtable=lines] tbody tr.sub-row").count() == 2
        shot("quote-lines")
    finally:
        context.close()
