"""The app shell: layout, navigation from the model, workbench (R8), quick search box (R10), errors."""
from __future__ import annotations



def test_r8_workbench_has_quick_actions_and_my_records(signed_in, h):
    html = signed_in.get("/").get_data(as_text=True)
    assert "李雷" in html
    assert 'href="/e/customer/new"' in html and "新建客户" in html
    assert 'href="/e/follow_up/new"' in html and "记录跟进" in html
    assert "我的客户" in html and "我的跟进记录" in html
    assert html.count("btn-primary") == 1  # one obvious primary action


def test_layout_has_nav_search_and_user_menu(signed_in, h):
    html = signed_in.get("/").get_data(as_text=True)
    assert 'href="/e/customer/"' in html and 'href="/e/follow_up/"' in html
    assert 'id="quick-search"' in html and 'hx-get="/search"' in html
    assert 'name="viewport"' in html and "menu-toggle" in html
    assert "/static/js/htmx.min.js" in html and "/static/css/formwork.css" in html
    assert "//cdn" not in html and "unpkg" not in html


def test_static_assets_are_vendored(client, h):
    assert client.get("/static/js/htmx.min.js").status_code == 200
    css = client.get("/static/css/formwork.css").get_data(as_text=True)
    assert "Noto Sans CJK SC" in css and "PingFang SC" in css and "Microsoft YaHei" in css


def test_unknown_page_and_entity_are_404(signed_in, h):
    resp = signed_in.get("/nope")
    assert resp.status_code == 404 and "页面不存在" in resp.get_data(as_text=True)
    assert signed_in.get("/e/nope/").status_code == 404


def test_healthz_is_public(client, h):
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_two_tenants_in_one_process(db_url, tmp_path, h):
    from web import create_app

    beta = """
tenant: {name: beta, label: Beta Corp, locale: en_US, timezone: UTC, currency: USD}
entities:
  account:
    label: {zh: 客户, en: Account}
    title: name
    fields:
      name: {type: text, label: Name, required: true}
"""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = h.make_tenant(db_url, tmp_path / "a")
    second = h.make_tenant(f"sqlite:///{tmp_path / 'beta.db'}", tmp_path / "b", beta)
    try:
        a = create_app(first, config={"TESTING": True, "SECRET_KEY": "a"})
        b = create_app(second, config={"TESTING": True, "SECRET_KEY": "b"})
        assert "艾克美科技" in a.test_client().get("/login").get_data(as_text=True)
        html = b.test_client().get("/login").get_data(as_text=True)
        assert "Sign in to Beta Corp" in html and 'lang="en"' in html
        first.users.add("only.in.a", ["admin"])
        assert second.users.by_username("only.in.a") is None
        second.users.add("bob", ["admin"], password="second-secret-1")
        second.users.change_password("bob", "second-secret-1", "second-secret-2")
        cb = b.test_client()
        h.login(cb, "bob", "second-secret-2")
        page = cb.get("/").get_data(as_text=True)
        assert "My Account" in page and 'href="/e/account/new"' in page and "客户" not in page
    finally:
        first.dispose()
        second.dispose()


def test_unexpected_errors_get_a_friendly_page(tenant, h, monkeypatch):
    from web import create_app

    app = create_app(tenant, config={"SECRET_KEY": "x", "PROPAGATE_EXCEPTIONS": False})
    tenant.users.add("boss", ["admin"], password="chief-secret-1")
    tenant.users.change_password("boss", "chief-secret-1", "chief-secret-2")
    client = app.test_client()
    h.login(client, "boss", "chief-secret-2")
    monkeypatch.setattr("web.home.my_records", lambda model: 1 / 0)
    resp = client.get("/")
    assert resp.status_code == 500 and "出错了" in resp.get_data(as_text=True)
