"""Web fixtures: a small tenant on each test database, an app over it, and signed-in clients."""
from __future__ import annotations

import re

import pluggy
import pytest
import sqlalchemy as sa

from engine import hookspecs
from engine.fields import FieldTypeRegistry
from engine.metadata import Entity, Field, Label, TenantInfo, TenantModel
from engine.tenant import Tenant

PASSWORD = "correct-horse-9"

CONFIG = {
    "tenant": {"name": "acme", "label": "艾克美科技", "locale": "zh_CN"},
    "roles": {"sales": {"label": "销售"}, "manager": {"label": "经理"}},
    "departments": {"销售部": {}, "华东组": {}},
}


def _field(name, type_, label, **kw):
    return Field(name=name, type=type_, label=Label.of(label), **kw)


def small_model(config=None) -> TenantModel:
    """A hand-built model (no YAML loader needed): customers and their follow-ups."""
    config = config or CONFIG
    customer = Entity("customer", Label.of({"zh": "客户", "en": "Customer"}), {
        "name": _field("name", "text", "公司全称", required=True),
        "phone": _field("phone", "phone", "电话"),
    }, title="name", list_layout=["name", "phone"])
    followup = Entity("followup", Label.of({"zh": "跟进记录", "en": "Follow-up"}), {
        "customer": _field("customer", "reference", "客户", to="customer", required=True),
        "summary": _field("summary", "textarea", "本次沟通重点"),
    }, title="summary")
    info = config["tenant"]
    return TenantModel(tenant=TenantInfo(info["name"], Label.of(info["label"]), locale=info["locale"]),
                       dictionaries={}, entities={"customer": customer, "followup": followup},
                       config=config, files=[], fingerprint="test")


def _field_types() -> FieldTypeRegistry:
    """The built-in field types: from the plugin when it exists, else straight from engine.fields."""
    try:
        from engine.plugins import make_plugin_manager

        return FieldTypeRegistry.from_plugins(make_plugin_manager())
    except ImportError:
        import importlib
        import pkgutil

        import engine.fields as pkg
        from engine.fields.base import FieldType

        found = []
        for info in pkgutil.iter_modules(pkg.__path__):
            mod = importlib.import_module(f"engine.fields.{info.name}")
            found += [v() for v in vars(mod).values()
                      if isinstance(v, type) and issubclass(v, FieldType) and v.name
                      and v.__module__ == mod.__name__ and not v.__name__.startswith("_")]
        return FieldTypeRegistry(found)


def make_tenant(db_url: str, config=None) -> Tenant:
    pm = pluggy.PluginManager("formwork")
    pm.add_hookspecs(hookspecs)
    tenant = Tenant(small_model(config), db_url, pm, _field_types(), {})
    from engine.schema.migrate import migrate

    migrate(tenant)
    return tenant


@pytest.fixture
def tenant(db_url):
    t = make_tenant(db_url)
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


@pytest.fixture
def h():
    return Helpers


@pytest.fixture
def ready_user(tenant):
    """A sales user who has already changed the initial password."""
    tenant.users.add("li.lei", ["sales"], department="销售部", password="initial-pass-1",
                     display_name="李雷")
    tenant.users.change_password("li.lei", "initial-pass-1", PASSWORD)
    return tenant.users.by_username("li.lei")


@pytest.fixture
def signed_in(client, ready_user):
    resp = login(client, "li.lei")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client
