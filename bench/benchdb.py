"""The benchmarks' databases: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa

PG_URL = os.environ.get("FORMWORK_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def database(kind: str, sqlite_path: Path) -> tuple[str, callable]:
    """A database URL (SQLite at `sqlite_path`, or a new PostgreSQL schema) and a function removing it."""
    if kind == "sqlite":
        return f"sqlite:///{sqlite_path}", lambda: None
    schema = f"fwbench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop():
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop
