"""The tenant's database identity: a random id written once by migrate, to which sessions are bound."""
from __future__ import annotations

import secrets

import sqlalchemy as sa

INSTANCE_ID = "instance_id"


def read_instance_id(conn, table: sa.Table) -> str | None:
    """The database's tenant id, or None before a migrate of this version has run."""
    if not sa.inspect(conn).has_table(table.name):
        return None
    return conn.execute(sa.select(table.c.value).where(table.c.name == INSTANCE_ID)).scalar_one_or_none()


def ensure_instance_id(conn, table: sa.Table) -> str:
    """Write a fresh random id unless the database has one; a later migrate never changes it, so
    sessions survive upgrades while two databases (even of same-named tenants) never share one."""
    current = read_instance_id(conn, table)
    if current:
        return current
    value = secrets.token_hex(16)
    conn.execute(table.insert().values(name=INSTANCE_ID, value=value))
    return value
