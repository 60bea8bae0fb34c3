"""A running app picks up a migrated config change without a restart, and never serves a 500 before."""
from __future__ import annotations

from engine.schema.migrate import migrate
from engine.tenant import Tenant


def test_r50_config_change_served_after_migrate_with_admin_banner_before(tmp_path, db_url, h):
    from web import create_app

    tenant = h.make_tenant(db_url, tmp_path)
    path = tmp_path / "tenant.yaml"
    tenant.users.add("boss", ["admin"], password="chief-secret-1")
    tenant.users.change_password("boss", "chief-secret-1", "chief-secret-2")
    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "x", "FORMWORK_RELOAD_INTERVAL": 0})
    client = app.test_client()
    h.login(client, "boss", "chief-secret-2")
    assert "公司全称" in client.get("/e/customer/new").get_data(as_text=True)

    # a label-only change needs no migration: served at once
    text = path.read_text(encoding="utf-8").replace("公司全称", "企业全称")
    path.write_text(text, encoding="utf-8")
    page = client.get("/e/customer/new").get_data(as_text=True)
    assert "企业全称" in page and "formwork migrate" not in page

    # a new field needs `migrate`: the old config keeps serving, admins see a banner
    text = text.replace("      remark: {type: textarea", "      wechat_id: {type: text, label: 微信号}\n"
                                                         "      remark: {type: textarea")
    path.write_text(text, encoding="utf-8")
    resp = client.get("/e/customer/new")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "微信号" not in page and "formwork migrate" in page
    assert client.get("/e/customer/").status_code == 200

    fresh = Tenant.load(path, db_url=db_url)
    migrate(fresh)
    fresh.dispose()
    page = client.get("/e/customer/new").get_data(as_text=True)
    assert "微信号" in page and "formwork migrate" not in page
    app.extensions["formwork"].tenant.dispose()
    tenant.dispose()


def test_config_with_errors_keeps_serving_the_old_one(tmp_path, sqlite_url, h):
    from web import create_app

    tenant = h.make_tenant(sqlite_url, tmp_path)
    tenant.users.add("boss", ["admin"], password="chief-secret-1")
    tenant.users.change_password("boss", "chief-secret-1", "chief-secret-2")
    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "x", "FORMWORK_RELOAD_INTERVAL": 0})
    client = app.test_client()
    h.login(client, "boss", "chief-secret-2")
    (tmp_path / "tenant.yaml").write_text("tenant: [broken", encoding="utf-8")
    resp = client.get("/e/customer/")
    assert resp.status_code == 200 and "formwork" in resp.get_data(as_text=True)
    assert app.extensions["formwork"].tenant is tenant
    tenant.dispose()
