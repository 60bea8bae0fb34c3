"""Gap-free autonumber counters: incremented inside the record's own transaction."""
from __future__ import annotations

import sqlalchemy as sa


def next_values(conn: sa.Connection, table: sa.Table, name: str, count: int = 1) -> list[int]:
    """Reserve `count` consecutive numbers of counter `name`; rolled back with the transaction.

    The UPDATE takes a row lock (PostgreSQL) or the write lock (SQLite, BEGIN IMMEDIATE), so
    concurrent writers queue and numbers never repeat or skip.
    """
    from sqlalchemy.dialects import postgresql, sqlite  # (postgresql imports each driver's dialect)

    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    conn.execute(insert.values(name=name, value=0).on_conflict_do_nothing(index_elements=["name"]))
    last = conn.execute(table.update().where(table.c.name == name).values(value=table.c.value + count)
                        .returning(table.c.value)).scalar_one()
    return list(range(last - count + 1, last + 1))
