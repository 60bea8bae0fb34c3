"""The attacks Formwork refuses: security tests reuse the web fixtures (tenant, app, client, h)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

# tests/web is not a package: load its conftest under its own name and re-export its fixtures.
_spec = importlib.util.spec_from_file_location(
    "formwork_tests_web_fixtures", Path(__file__).resolve().parent.parent / "web" / "conftest.py")
_web = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_web)

tenant = _web.tenant
app = _web.app
client = _web.client
h = _web.h
Helpers = _web.Helpers
