"""Stored files that no record needs any more: those of a failed write, a replaced value, a deleted record."""
from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa

from ..fields.storage import StoredFile
from ..metadata.model import Entity


def file_keys(entity: Entity, record: dict | None) -> set[str]:
    """The storage keys a record's file fields (its subtable rows' included) point at."""
    keys: set[str] = set()
    if not record:
        return keys
    for f in entity.fields.values():
        value = record.get(f.name)
        if f.type == "file" and isinstance(value, StoredFile):
            keys.add(value.key)
        elif f.child is not None:
            for row in value or []:
                keys |= file_keys(f.child, row)
    return keys


def referenced(tenant, conn: sa.Connection, keys: set[str]) -> set[str]:
    """Which of `keys` some record still points at (a reference may be copied to another record)."""
    found: set[str] = set()
    for ent in tenant.model.all_entities():
        for f in ent.fields.values():
            if f.type != "file" or not keys - found:
                continue
            col = tenant.schema.table(ent).c[f.column]
            # The column holds "key|size|type|name" (or a bare key); keys are [0-9a-f.a-z] only,
            # so they are safe inside a LIKE pattern.
            wanted = sorted(keys - found)
            cond = sa.or_(col.in_(wanted), *(col.like(f"{k}|%") for k in wanted))
            for (ref,) in conn.execute(sa.select(col).where(cond)):
                found.add(str(ref).split("|", 1)[0])
    return found


def discard_unreferenced(tenant, keys: Iterable[str]) -> None:
    """Delete the stored objects among `keys` that no record points at; call after the commit."""
    keys = set(keys)
    if not keys:
        return
    with tenant.db.connect() as conn:
        keys -= referenced(tenant, conn, keys)
    for key in keys:
        tenant.storage.delete(key)
