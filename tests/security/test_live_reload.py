"""Issue #11.10: a config change (a field removed) migrated while writers run is switched in
atomically: no request fails, and every create after the switch succeeds."""
from __future__ import annotations

import threading
import time

import pytest

from engine.schema.migrate import migrate
from engine.tenant import Tenant

WRITERS = 3


@pytest.fixture
def served(tmp_path, db_url, h):
    """An app over the web test tenant that checks the config on every request, and a rep's token."""
    from web import create_app

    tenant = h.make_tenant(db_url, tmp_path)
    tenant.users.add("rep", ["sales"], password="initial-pass-1")
    tenant.users.change_password("rep", "initial-pass-1", h.PASSWORD)
    token = tenant.users.create_token("rep")
    app = create_app(tenant, config={"SECRET_KEY": "x", "FORMWORK_RELOAD_INTERVAL": 0})
    yield app, token, tmp_path / "tenant.yaml", db_url
    app.extensions["formwork"].tenant.dispose()
    tenant.dispose()


def _writer(app, token, tag, stop, results):
    client = app.test_client()
    n = 0
    while not stop.is_set():
        n += 1
        resp = client.post("/api/v1/customer", json={"name": f"{tag}-{n}", "industry": "制造业"},
                           headers={"Authorization": f"Bearer {token}"})
        results.append((time.monotonic(), resp.status_code, resp.get_data(as_text=True)[:300]))


def test_security_field_removed_and_migrated_under_load_never_fails_a_request(served):
    app, token, path, db_url = served
    state = app.extensions["formwork"]
    old = state.tenant
    stop = threading.Event()
    results: list = []
    threads = [threading.Thread(target=_writer, args=(app, token, f"w{i}", stop, results))
               for i in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        text = path.read_text(encoding="utf-8")
        path.write_text("\n".join(line for line in text.splitlines()
                                  if not line.lstrip().startswith("remark:")) + "\n", encoding="utf-8")
        fresh = Tenant.load(path, db_url=db_url)
        migrate(fresh)
        fresh.dispose()
        deadline = time.monotonic() + 20
        while state.tenant is old and time.monotonic() < deadline:
            time.sleep(0.05)
        switched = time.monotonic()
        time.sleep(0.8)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert state.tenant is not old, "the migrated config was never switched in"
    assert "remark" not in state.tenant.model.entities["customer"].fields
    failures = [r for r in results if r[1] >= 500]
    assert not failures, f"{len(failures)} of {len(results)} creates failed: {failures[:3]}"
    after = [r for r in results if r[0] > switched]
    assert after and all(r[1] == 201 for r in after), after[:3]
    client = app.test_client()
    resp = client.post("/api/v1/customer", json={"name": "after-switch", "industry": "制造业"},
                       headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 201 and "remark" not in resp.get_json()
