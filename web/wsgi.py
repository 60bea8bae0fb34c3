"""WSGI entry point for production servers: `gunicorn 'web.wsgi:app'` with FORMWORK_CONFIG set."""
from __future__ import annotations

import os

from . import create_app


def build():
    config = os.environ.get("FORMWORK_CONFIG")
    if not config:
        raise RuntimeError("set FORMWORK_CONFIG to the tenant YAML (and FORMWORK_DB to its database)")
    return create_app(config, db_url=os.environ.get("FORMWORK_DB") or None)


app = build() if os.environ.get("FORMWORK_CONFIG") else None
