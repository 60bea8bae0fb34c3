"""Sessions and logins (issue #11): sessions bound to the tenant's database and the user's credential
version, a login throttle that holds under concurrency, the password rule, no password in a cookie."""
from __future__ import annotations

import os
import re
import threading
import uuid

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner

from engine.users import PasswordPolicyError, UserStore

SECRET = "one-secret-for-both-tenants"
PG_ADMIN_URL = os.environ.get("FORMWORK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")  # as tests/conftest.py


@pytest.fixture
def other_db_url(db_url, tmp_path):
    """A second, separate database of the same kind as `db_url` (another SQLite file or PG schema)."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    schema = f"fwt_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in PG_ADMIN_URL else "?"
        yield f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def twin(other_db_url, tmp_path, h):
    """A second tenant with the same config (so the same name) on its own database."""
    (tmp_path / "twin").mkdir()
    t = h.make_tenant(other_db_url, tmp_path / "twin")
    yield t
    t.dispose()


def _ready(tenant, username, h, roles=("sales",)):
    tenant.users.add(username, list(roles), password="initial-pass-1")
    tenant.users.change_password(username, "initial-pass-1", h.PASSWORD)


def _app(tenant):
    from web import create_app

    return create_app(tenant, config={"TESTING": True, "SECRET_KEY": SECRET})


def _session_cookie(client, app):
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value if cookie else None


# ------------------------------------------------------------------------------------------ tenants

def test_security_session_cookie_of_one_tenant_is_refused_by_another(tenant, twin, h):
    _ready(tenant, "li.lei", h)
    _ready(twin, "li.lei", h)  # same username, same id, same secret key: only the tenant differs
    app_a, app_b = _app(tenant), _app(twin)
    ca = app_a.test_client()
    assert h.login(ca, "li.lei").status_code == 302
    assert ca.get("/").status_code == 200
    stolen = _session_cookie(ca, app_a)
    assert stolen
    cb = app_b.test_client()
    cb.set_cookie(app_b.config["SESSION_COOKIE_NAME"], stolen)
    resp = cb.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    # the twin's own users still sign in normally
    cb2 = app_b.test_client()
    assert h.login(cb2, "li.lei").status_code == 302 and cb2.get("/").status_code == 200


def test_security_api_token_of_one_tenant_is_refused_by_another(tenant, twin, h):
    _ready(tenant, "li.lei", h)
    _ready(twin, "li.lei", h)
    token = tenant.users.create_token("li.lei")
    auth = {"Authorization": f"Bearer {token}"}
    assert _app(tenant).test_client().get("/api/v1/", headers=auth).status_code == 200
    assert _app(twin).test_client().get("/api/v1/", headers=auth).status_code == 401


def test_security_each_database_gets_its_own_tenant_id(tenant, twin):
    assert tenant.instance_id and twin.instance_id and tenant.instance_id != twin.instance_id
    from engine.schema.migrate import migrate

    before = tenant.instance_id
    migrate(tenant)  # a later migrate keeps the id, so sessions survive upgrades
    assert tenant.instance_id == before
    from engine.tenant import Tenant

    again = Tenant.load(tenant.config_path, db_url=tenant.db_url)
    try:
        assert again.instance_id == before
    finally:
        again.dispose()


# ------------------------------------------------------------------------------------------ credential version

def test_security_admin_password_reset_ends_sessions_and_tokens(tenant, h):
    _ready(tenant, "li.lei", h)
    app = _app(tenant)
    user_client = app.test_client()
    h.login(user_client, "li.lei")
    assert user_client.get("/").status_code == 200
    token = tenant.users.create_token("li.lei")
    tenant.users.reset_password("li.lei")
    assert user_client.get("/").status_code == 302
    resp = app.test_client().get("/api/v1/", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401
    # a cookie saved before a password change is not accepted again afterwards
    tenant.users.reset_password("li.lei", "interim-pass-77")
    tenant.users.change_password("li.lei", "interim-pass-77", "another-pass-1")
    fresh = app.test_client()
    h.login(fresh, "li.lei", "another-pass-1")
    cookie = _session_cookie(fresh, app)
    assert fresh.get("/").status_code == 200
    tenant.users.change_password("li.lei", "another-pass-1", "yet-another-pass-2")
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    assert replay.get("/").status_code == 302


# ------------------------------------------------------------------------------------------ throttle

class CountingHasher(PasswordHasher):
    """argon2 with cheap parameters that counts password verifications."""

    def __init__(self):
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verifications = 0
        self._lock = threading.Lock()

    def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        with self._lock:
            self.verifications += 1
        return super().verify(hash, password)


def test_security_concurrent_logins_are_throttled_atomically(tenant):
    hasher = CountingHasher()
    store = UserStore(tenant, hasher=hasher)
    tenant.__dict__["users"] = store
    store.add("a", ["sales"], password="right-password")
    store._dummy()  # build the dummy hash before counting
    hasher.verifications = 0
    attempts = 40
    barrier = threading.Barrier(attempts)
    results, errors = [], []

    def attempt(i):
        try:
            barrier.wait()
            results.append(store.authenticate("a", f"wrong-{i}", ip=f"198.51.100.{i}"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == attempts
    assert hasher.verifications <= store.max_failures_per_user
    assert sum(r.reason == "invalid" for r in results) == hasher.verifications
    assert sum(r.reason == "throttled" for r in results) == attempts - hasher.verifications
    # the right password is refused too until the window passes
    assert store.authenticate("a", "right-password").reason == "throttled"


def test_security_throttle_ends_after_the_window_and_success_resets_it(tenant):
    store = tenant.users
    store.add("a", ["sales"], password="right-password")
    start = tenant.now()
    tenant.clock = lambda: start
    for _i in range(store.max_failures_per_user):
        assert store.authenticate("a", "bad-password", ip="192.0.2.1").reason == "invalid"
    assert store.authenticate("a", "right-password", ip="192.0.2.1").reason == "throttled"
    assert store.is_throttled("a", None)
    tenant.clock = lambda: start + store.failure_window * 1.1
    assert not store.is_throttled("a", None)
    assert store.authenticate("a", "right-password", ip="192.0.2.1").ok
    # a success wipes the user's count: four more failures do not lock the account
    for _i in range(store.max_failures_per_user - 1):
        store.authenticate("a", "bad-password", ip="192.0.2.2")
    assert store.authenticate("a", "right-password", ip="192.0.2.2").ok
    # the attempt counted before each check is given back on success: an office behind one
    # address is not locked out by its own successful logins
    for _i in range(store.max_failures_per_ip + 5):
        assert store.authenticate("a", "right-password", ip="203.0.113.7").ok
    assert not store.is_throttled("someone", "203.0.113.7")


# ------------------------------------------------------------------------------------------ password rule

WEAK = {
    "short": "Xk9#q2Lm!",             # under the minimum length (10)
    "common": "password123",          # on zxcvbn's common-password lists
    "username": "li.lei-2024!x",      # strong-looking but built on the username
    "tenant": "webtest-crm-2026!",    # built on the tenant's name (tests/web/crm.yaml)
}


@pytest.mark.parametrize("kind", sorted(WEAK))
def test_security_weak_passwords_are_refused_by_the_store(tenant, kind):
    weak = WEAK[kind]
    store = tenant.users
    with pytest.raises(PasswordPolicyError):
        store.add("li.lei", ["sales"], password=weak)
    store.add("li.lei", ["sales"], password="initial-pass-1", display_name="李雷")
    with pytest.raises(PasswordPolicyError):
        store.change_password("li.lei", "initial-pass-1", weak)
    with pytest.raises(PasswordPolicyError):
        store.reset_password("li.lei", weak)
    assert store.authenticate("li.lei", "initial-pass-1").ok


def test_security_password_rule_names_the_rule(tenant):
    store = tenant.users
    store.add("li.lei", ["sales"], password="initial-pass-1", display_name="Lei Li")
    for weak, words in [("Xk9#q2Lm!", "at least"), ("password123", "common"), ("li.lei-2024!x", "username"),
                        ("Lei Li 2024 !!", "name"), ("webtest-crm-2026!", "tenant"), ("Acme-CRM-2026!", "tenant")]:
        with pytest.raises(PasswordPolicyError) as info:
            store.change_password("li.lei", "initial-pass-1", weak)
        assert words in str(info.value), (weak, str(info.value))


def test_security_generated_passwords_pass_the_rule(tenant):
    _user, generated = tenant.users.add("li.lei", ["sales"])
    tenant.users.check_new_password(generated, username="li.lei")
    _user, again = tenant.users.reset_password("li.lei")
    tenant.users.check_new_password(again, username="li.lei")


def test_security_weak_passwords_are_refused_by_the_cli(tenant, h):
    from engine.cli import build_cli

    runner, cli = CliRunner(), build_cli()

    def run(verb, *args):
        return runner.invoke(cli, ["user", verb, str(tenant.config_path), *args, "--db", tenant.db_url])

    for weak in WEAK.values():
        result = run("add", "li.lei", "--role", "sales", "--password", weak)
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "password" in result.output
    assert tenant.users.by_username("li.lei") is None
    tenant.users.add("li.lei", ["sales"], password="initial-pass-1")
    for weak in WEAK.values():
        result = run("reset-password", "li.lei", "--password", weak)
        assert result.exit_code == 1 and "password" in result.output, result.output
    assert tenant.users.authenticate("li.lei", "initial-pass-1").ok


def test_security_weak_passwords_are_refused_by_the_web(tenant, h):
    _ready(tenant, "li.lei", h)
    _ready(tenant, "root", h, roles=("admin",))
    app = _app(tenant)
    user = app.test_client()
    h.login(user, "li.lei")
    for weak in WEAK.values():
        page = user.get("/password").get_data(as_text=True)
        resp = user.post("/password", data={"csrf_token": h.csrf_from(page), "current": h.PASSWORD,
                                            "new": weak, "confirm": weak})
        assert resp.status_code == 422, weak
    assert tenant.users.authenticate("li.lei", h.PASSWORD).ok
    admin = app.test_client()
    h.login(admin, "root")
    for weak in WEAK.values():
        page = admin.get("/admin/users").get_data(as_text=True)
        admin.post("/admin/users", data={"csrf_token": h.csrf_from(page), "username": "li.lei2",
                                         "roles": "sales", "password": weak.replace("li.lei", "li.lei2")})
        assert tenant.users.by_username("li.lei2") is None, weak


# ------------------------------------------------------------------------------------------ no password in cookies

def _cookie_texts(resp, app) -> list[str]:
    """Every Set-Cookie header, and the decoded content of the session cookie among them."""
    texts = []
    name = app.config["SESSION_COOKIE_NAME"]
    serializer = app.session_interface.get_signing_serializer(app)
    for header in resp.headers.getlist("Set-Cookie"):
        texts.append(header)
        match = re.match(rf"{re.escape(name)}=([^;]+)", header)
        if match and match.group(1):
            texts.append(repr(serializer.loads(match.group(1))))
    return texts


def _verifies(tenant, username, candidate) -> bool:
    store = tenant.users
    with tenant.db.connect() as conn:
        stored = conn.execute(sa.select(store.users_t.c.password_hash)
                              .where(store.users_t.c.username == username)).scalar_one()
    return store._verify(stored, candidate)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9_\-]{12,}", text))


def test_security_no_password_in_flash_or_cookie(tenant, h):
    _ready(tenant, "root", h, roles=("admin",))
    app = _app(tenant)
    admin = app.test_client()
    h.login(admin, "root")
    page = admin.get("/admin/users").get_data(as_text=True)
    created = admin.post("/admin/users", data={"csrf_token": h.csrf_from(page), "username": "han.mei",
                                               "roles": "sales"})
    assert tenant.users.by_username("han.mei") is not None
    page = admin.get("/admin/users").get_data(as_text=True)
    reset = admin.post("/admin/users/han.mei/reset-password", data={"csrf_token": h.csrf_from(page)})
    after = admin.get("/admin/users")
    for resp in (created, reset, after):
        for text in _cookie_texts(resp, app):
            assert not any(_verifies(tenant, "han.mei", w) for w in _words(text)), text
        assert "no-store" in resp.headers.get("Cache-Control", "") or resp is after
    with admin.session_transaction() as sess:
        assert not any(_verifies(tenant, "han.mei", w) for w in _words(repr(dict(sess))))
    # the new password is shown once, in the body of the answer to the reset
    shown = re.search(r'class="once-password"[^>]*>([^<]+)<', reset.get_data(as_text=True))
    assert reset.status_code == 200 and shown and _verifies(tenant, "han.mei", shown.group(1).strip())
    assert shown.group(1).strip() not in after.get_data(as_text=True)
