"""Web fixtures: a small tenant on each test database, an app over it, and signed-in clients."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from argon2 import PasswordHasher

from engine.users import UserStore
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

PASSWORD = "correct-horse-9"
HERE = Path(__file__).resolve().parent
CRM = HERE / "crm.yaml"


def make_tenant(db_url: str, workdir: Path, config_text: str | None = None) -> Tenant:
    """Copy a tenant config into `workdir` (so instance/ files land there), load it onto an empty
    database and migrate it (as `formwork migrate` does)."""
    path = Path(workdir) / "tenant.yaml"
    path.write_text(config_text if config_text is not None else CRM.read_text(encoding="utf-8"),
                    encoding="utf-8")
    tenant = Tenant.load(path, db_url=db_url)
    # Cheap argon2 parameters keep the suite fast; production uses argon2-cffi's defaults.
    tenant.__dict__["users"] = UserStore(tenant, hasher=PasswordHasher(time_cost=1, memory_cost=1024,
                                                                       parallelism=1))
    migrate_empty(tenant)
    return tenant


@pytest.fixture
def tenant(db_url, tmp_path):
    t = make_tenant(db_url, tmp_path)
    yield t
    t.dispose()


@pytest.fixture
def app(tenant):
    from web import create_app

    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "test-secret"})
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, username, password=PASSWORD, follow=False):
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       follow_redirects=follow)


class Helpers:
    """Helpers for web tests, handed out by the `h` fixture (tests/web is not a package)."""

    PASSWORD = PASSWORD
    csrf_from = staticmethod(csrf_from)
    login = staticmethod(login)
    make_tenant = staticmethod(make_tenant)
    CRM = CRM


@pytest.fixture
def h():
    return Helpers


@pytest.fixture
def ready_user(tenant):
    """A sales user who has already changed the initial password."""
    tenant.users.add("li.lei", ["sales"], department="sales", password="initial-pass-1",
                     display_name="李雷")
    tenant.users.change_password("li.lei", "initial-pass-1", PASSWORD)
    return tenant.users.by_username("li.lei")


@pytest.fixture
def signed_in(client, ready_user):
    resp = login(client, "li.lei")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client
