"""Browser fixtures: the app on a local port over a migrated sample tenant, and headless Chromium."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.dbtemplates import migrate_empty

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"


@pytest.fixture
def live_tenant(db_url):
    """sample_tenant.yaml migrated onto a fresh database."""
    from engine.tenant import Tenant

    tenant = Tenant.load(ROOT / "sample_tenant.yaml", db_url=db_url)
    migrate_empty(tenant)
    yield tenant
    tenant.dispose()


@pytest.fixture
def live_server(live_tenant):
    """The web app served by werkzeug on 127.0.0.1 with a free port; yields its base URL."""
    from werkzeug.serving import make_server

    from web import create_app

    app = create_app(live_tenant, config={"SECRET_KEY": "browser-tests", "FORMWORK_RELOAD_INTERVAL": -1})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


class Shots:
    """Saves a numbered full-page screenshot of each page visited and checks nothing overflows."""

    def __init__(self, page, folder: Path, width: int):
        self.page = page
        self.folder = folder
        self.width = width
        self.n = 0
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()

    def __call__(self, name: str) -> Path:
        self.n += 1
        self.page.wait_for_load_state("networkidle")
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name}: the page is {overflow}px wider than the {self.width}px viewport"
        return path


@pytest.fixture
def shots_factory():
    def make(page, label: str, width: int) -> Shots:
        return Shots(page, ARTIFACTS / label, width)

    return make
