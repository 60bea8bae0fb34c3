"""Features are plugins: a third-party plugin adds a config key, a table, a service, its own hook, a
page, an API route and a CLI verb without touching the core, discovered through the `formwork`
entry-point group and chosen by the tenant's `plugins:` key (issue 12)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import hookimpl
from engine.config import check_config
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "tests" / "plugins" / "feature"
CONFIG = """\
tenant: {name: shop, label: 小店}
plugins: [loyalty]
loyalty: {entity: patron, tiers: {silver: 20, gold: 30}, points_per_record: 10}
entities:
  patron:
    title: name
    fields:
      name: {type: text, required: true}
"""


@pytest.fixture
def installed(monkeypatch):
    """The loyalty plugin installed: its folder (module + dist-info with the entry point) on sys.path."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    return PLUGIN_DIR


def write(tmp_path, text, name="shop.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_plugin_adds_a_config_key_table_service_and_hook(installed, tmp_path, db_url):
    tenant = Tenant.load(write(tmp_path, CONFIG), db_url=db_url)
    assert tenant.model.extensions["loyalty"]["tiers"] == {"silver": 20, "gold": 30}
    assert "fw_loyalty_points" in [t.name for t in tenant.schema.system_tables()]
    migrate_empty(tenant)
    seen = []

    class Listener:
        @hookimpl
        def formwork_loyalty_awarded(self, tenant, entity, record_id, points):
            seen.append((entity, record_id, points))

    tenant.pm.register(Listener())
    patron = tenant.records.create("patron", {"name": "王小明"})
    assert seen == [("patron", patron["id"], 10)]
    assert tenant.service("loyalty").balance(patron["id"]) == 10
    assert tenant.service("loyalty") is tenant.service("loyalty")
    tenant.dispose()


def test_check_knows_a_plugin_key_only_when_the_plugin_is_used(installed, tmp_path):
    model, issues = check_config(write(tmp_path, CONFIG))
    assert issues == [] and "loyalty" in model.extensions
    bad = write(tmp_path, CONFIG.replace("entity: patron, tiers", "entity: patrn, tiers"), "bad.yaml")
    _, issues = check_config(bad)
    assert [(i.location.line, i.message) for i in issues] == [(3, "loyalty: no entity 'patrn'")]
    without = write(tmp_path, CONFIG.replace("plugins: [loyalty]\n", "plugins: []\n"), "without.yaml")
    _, issues = check_config(without)
    assert len(issues) == 1 and issues[0].location.line == 3 and "loyalty" in issues[0].message


def test_an_unknown_plugin_name_is_reported_at_its_line(installed, tmp_path):
    path = write(tmp_path, CONFIG.replace("plugins: [loyalty]", "plugins: [loyalti]"))
    _, issues = check_config(path)
    located = [(i.location.file, i.location.line, i.location.col, i.message) for i in issues]
    assert (str(path), 2, 11, "plugins: 'loyalti' is not an installed Formwork plugin "
                              "(did you mean 'loyalty'?)") in located


def test_without_a_plugins_key_every_installed_plugin_is_used(installed, tmp_path):
    model, issues = check_config(write(tmp_path, CONFIG.replace("plugins: [loyalty]\n", "")))
    assert issues == [] and "loyalty" in model.extensions


def test_a_plugin_page_and_api_route_are_behind_the_apps_sign_in(installed, tmp_path, db_url):
    from web import create_app

    tenant = Tenant.load(write(tmp_path, CONFIG), db_url=db_url)
    migrate_empty(tenant)
    patron = tenant.records.create("patron", {"name": "王小明"})
    tenant.records.create("patron", {"name": "李小红"})
    tenant.users.add("clerk", ["admin"], password="Qz8!parrot-mango-71", display_name="店员")
    token = tenant.users.create_token("clerk", "tests")
    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "k"})
    client = app.test_client()
    assert client.get(f"/api/v1/loyalty/{patron['id']}").status_code == 401
    assert client.get(f"/loyalty/{patron['id']}").status_code == 302       # to the sign-in page
    got = client.get(f"/api/v1/loyalty/{patron['id']}", headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200 and got.get_json() == {"record": patron["id"], "points": 10, "tier": None}
    tenant.dispose()


def test_a_plugin_cli_verb_is_found_through_the_entry_point(installed, tmp_path):
    config = write(tmp_path, CONFIG)
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    tenant = Tenant.load(config, db_url=db)
    migrate_empty(tenant)
    patron = tenant.records.create("patron", {"name": "王小明"})
    tenant.dispose()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), str(ROOT)]), "FORMWORK_DB": db}
    run = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()", "loyalty", str(config),
                          str(patron["id"])], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "10 None"
    listing = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()", "--help"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert "loyalty" in listing.stdout


def test_a_reload_keeps_the_plugins_passed_by_hand(tmp_path):
    from web import create_app

    class Marker:
        @hookimpl
        def formwork_tenant_loaded(self, tenant):
            tenant.marked = True

    config = write(tmp_path, "tenant: {name: shop, label: 小店}\nplugins: []\n"
                             "entities:\n  patron:\n    fields:\n      name: {type: text}\n")
    marker = Marker()
    tenant = Tenant.load(config, db_url=f"sqlite:///{tmp_path / 'r.db'}", plugins=(marker,))
    migrate_empty(tenant)
    assert tenant.extra_plugins == (marker,) and tenant.marked
    app = create_app(tenant, config={"TESTING": True, "SECRET_KEY": "k", "FORMWORK_RELOAD_INTERVAL": 0})
    config.write_text(config.read_text(encoding="utf-8").replace("小店", "大店"), encoding="utf-8")
    app.extensions["formwork_watcher"]._reload(tenant)
    fresh = app.extensions["formwork"].tenant
    assert fresh is not tenant and fresh.model.tenant.label.get("zh") == "大店"
    assert fresh.pm.is_registered(marker) and fresh.marked
    fresh.dispose()


def test_formwork_check_knows_the_keys_of_the_plugins_the_tenant_uses(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), str(ROOT)])}
    good = write(tmp_path, CONFIG)
    run = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()", "check", str(good)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    bad = write(tmp_path, CONFIG.replace("points_per_record: 10", "points_per_record: 0"), "bad.yaml")
    run = subprocess.run([sys.executable, "-c", "from engine.cli import main; main()", "check", str(bad)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1 and run.stdout.startswith(f"{bad}:3:") and "Traceback" not in run.stderr
