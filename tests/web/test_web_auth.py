"""Login, the first-login password change (R2), logout, sessions ending on disable (R44), languages."""
from __future__ import annotations


def test_pages_need_login(client, h):
    resp = client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    resp = client.get("/search?q=x")
    assert resp.status_code == 302


def test_login_page_renders_in_tenant_language(client, h):
    html = client.get("/login").get_data(as_text=True)
    assert "登录 艾克美科技" in html and 'lang="zh-CN"' in html
    assert 'name="csrf_token"' in html


def test_r2_initial_password_must_be_changed_at_first_login(client, tenant, h):
    _user, initial = tenant.users.add("han.mei", ["sales"], display_name="韩梅梅")
    resp = h.login(client, "han.mei", initial)
    assert resp.status_code == 302 and "/password" in resp.headers["Location"]
    # every other page sends the user back to the password form
    resp = client.get("/")
    assert resp.status_code == 302 and "/password" in resp.headers["Location"]
    page = client.get("/password").get_data(as_text=True)
    assert "首次登录需要修改初始密码" in page
    token = h.csrf_from(page)
    # mismatched confirmation, too short, unchanged: inline errors, 422
    resp = client.post("/password", data={"csrf_token": token, "current": initial, "new": "new-pass-123",
                                          "confirm": "other-pass-123"})
    assert resp.status_code == 422 and "两次输入的密码不一致" in resp.get_data(as_text=True)
    resp = client.post("/password", data={"csrf_token": token, "current": initial, "new": "short",
                                          "confirm": "short"})
    assert resp.status_code == 422 and "密码至少需要 10 个字符" in resp.get_data(as_text=True)
    resp = client.post("/password", data={"csrf_token": token, "current": "wrong-one", "new": "new-pass-123",
                                          "confirm": "new-pass-123"})
    assert resp.status_code == 422 and "当前密码不正确" in resp.get_data(as_text=True)
    resp = client.post("/password", data={"csrf_token": token, "current": initial, "new": "new-pass-123",
                                          "confirm": "new-pass-123"})
    assert resp.status_code == 302
    assert client.get("/").status_code == 200
    assert not tenant.users.by_username("han.mei").must_change_password


def test_wrong_password_and_unknown_user_get_the_same_page(client, tenant, h, monkeypatch):
    from itsdangerous import TimestampSigner

    tenant.users.add("a", ["sales"], password="right-password")
    # A CSRF token embeds the second it was signed in, so two pages differ only when they straddle
    # a second boundary (the old flakiness). Every signature gets the next second here, so the
    # pages always differ in their token and the comparison must normalise it.
    seconds = iter(range(1_900_000_000, 1_900_010_000))
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: next(seconds))
    wrong = h.login(client, "a", "bad-password")
    unknown = h.login(client, "nobody", "bad-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.get_data(as_text=True)

    def normalised(resp):  # every copy of the page's CSRF token, in whatever markup it sits
        html = resp.get_data(as_text=True)
        return html.replace(h.csrf_from(html), "<csrf>")

    assert h.csrf_from(wrong.get_data(as_text=True)) != h.csrf_from(unknown.get_data(as_text=True))
    assert normalised(wrong).replace('value="a"', 'value="nobody"') == normalised(unknown)


def test_login_throttled_after_five_failures(client, tenant, h):
    tenant.users.add("a", ["sales"], password="right-password")
    for _i in range(5):
        assert h.login(client, "a", "bad-password").status_code == 401
    resp = h.login(client, "a", "right-password")
    assert resp.status_code == 429 and "失败次数过多" in resp.get_data(as_text=True)


def test_login_requires_csrf(client, ready_user, h):
    resp = client.post("/login", data={"username": "li.lei", "password": h.PASSWORD})
    assert resp.status_code in (302, 400)
    assert client.get("/").status_code == 302  # not signed in


def test_open_redirect_is_refused(client, ready_user, h):
    page = client.get("/login?next=https://evil.example/").get_data(as_text=True)
    resp = client.post("/login?next=https://evil.example/",
                       data={"username": "li.lei", "password": h.PASSWORD, "csrf_token": h.csrf_from(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    client.post("/logout", data={"csrf_token": h.csrf_from(client.get("/").get_data(as_text=True))})
    page = client.get("/login?next=/search%3Fq%3Dx").get_data(as_text=True)
    resp = client.post("/login?next=/search%3Fq%3Dx",
                       data={"username": "li.lei", "password": h.PASSWORD, "csrf_token": h.csrf_from(page)})
    assert resp.headers["Location"] == "/search?q=x"


def test_logout_is_a_csrf_protected_post(signed_in, h):
    assert signed_in.get("/logout").status_code == 405
    assert signed_in.post("/logout").status_code in (302, 400)
    assert signed_in.get("/").status_code == 200  # a forged logout did nothing
    token = h.csrf_from(signed_in.get("/").get_data(as_text=True))
    resp = signed_in.post("/logout", data={"csrf_token": token})
    assert resp.status_code == 302
    assert signed_in.get("/").status_code == 302


def test_r44_disabled_user_session_ends_on_next_request(signed_in, tenant, h):
    assert signed_in.get("/").status_code == 200
    tenant.users.disable("li.lei")
    resp = signed_in.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    page = signed_in.get(resp.headers["Location"]).get_data(as_text=True)
    assert "会话已结束" in page


def test_password_change_ends_other_sessions(app, tenant, ready_user, h):
    first, second = app.test_client(), app.test_client()
    h.login(first, "li.lei")
    h.login(second, "li.lei")
    page = first.get("/password").get_data(as_text=True)
    resp = first.post("/password", data={"csrf_token": h.csrf_from(page), "current": h.PASSWORD,
                                         "new": "another-pass-1", "confirm": "another-pass-1"})
    assert resp.status_code == 302
    assert first.get("/").status_code == 200
    assert second.get("/").status_code == 302


def test_language_switch_is_kept_in_session_and_user(signed_in, tenant, h):
    page = signed_in.get("/").get_data(as_text=True)
    assert "工作台" in page
    resp = signed_in.post("/language", data={"lang": "en", "next": "/", "csrf_token": h.csrf_from(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    page = signed_in.get("/").get_data(as_text=True)
    assert "Workbench" in page and 'lang="en"' in page and "Customer" in page
    assert tenant.users.by_username("li.lei").locale == "en"


def test_language_switch_on_login_page(client, h):
    page = client.get("/login").get_data(as_text=True)
    client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": h.csrf_from(page)})
    assert "Sign in to" in client.get("/login").get_data(as_text=True)


def test_login_throttle_per_ip_behind_a_trusted_proxy(tenant, h):
    from web import create_app

    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "x", "FORMWORK_TRUSTED_PROXIES": 1})
    tenant.users.add("a", ["sales"], password="right-password")
    store = tenant.users
    for i in range(store.max_failures_per_ip):
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        client.post("/login", data={"username": f"guess{i}", "password": "x", "csrf_token": h.csrf_from(page)},
                    headers={"X-Forwarded-For": "203.0.113.9"})
    assert store.is_throttled("a", "203.0.113.9") and not store.is_throttled("a", "127.0.0.1")
