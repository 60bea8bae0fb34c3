"""The one permission layer: row filters compiled into every query and field masks on every record.

Until roles carry permissions (the organisation issue), every active user may do everything; the
records service already asks this layer on every read and write path so rules plug in here only.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

ACTIONS = ("read", "create", "update", "delete", "export", "import", "transfer")


class Permissions:
    """Answers what a user may do with an entity, its records and its fields."""

    def __init__(self, tenant):
        self.tenant = tenant

    def can(self, entity, user, action: str) -> bool:
        """May `user` perform `action` on this entity at all (before looking at a record)?"""
        return user is None or getattr(user, "active", True)

    def row_filter(self, entity, table: sa.Table, user, action: str = "read") -> Any | None:
        """A SQL condition limiting rows to the user's scope, or None for no limit."""
        return None

    def field_access(self, entity, user) -> dict[str, str]:
        """{field: "hidden" | "read" | "write"} for every field of the entity."""
        return {name: "write" for name in entity.fields}

    def visible_fields(self, entity, user) -> set[str]:
        return {n for n, a in self.field_access(entity, user).items() if a != "hidden"}

    def mask(self, entity, user, record: dict) -> dict:
        """The record without the fields `user` may not see."""
        hidden = {n for n, a in self.field_access(entity, user).items() if a == "hidden"}
        return {k: v for k, v in record.items() if k not in hidden} if hidden else record
