"""What the signed-in user may do, asked of the engine's one permission layer (never decided here)."""
from __future__ import annotations

from flask import g
from flask_login import current_user

from .context import records


def _perms():
    svc = records()
    return svc.permissions if svc is not None else None


def user():
    return getattr(current_user, "user", None)


def can(ent, action: str) -> bool:
    """May the current user perform `action` on entity `ent` at all?"""
    perms = _perms()
    if perms is None or user() is None:
        return False
    cache = g.setdefault("fw_can", {})
    key = (ent.name, action)
    if key not in cache:
        cache[key] = bool(perms.can(ent, user(), action))
    return cache[key]


def can_on(ent, action: str, record: dict) -> bool:
    """May the current user perform `action` on this record (entity right and record scope)?"""
    perms = _perms()
    if not can(ent, action):
        return False
    try:
        return bool(perms.within(ent, user(), action, record))
    except Exception:  # noqa: BLE001 - when unsure, show the button; the engine still decides
        return True


def field_access(ent) -> dict[str, str]:
    """{field: hidden | read | write} for the current user."""
    perms = _perms()
    if perms is None or user() is None:
        return {n: "hidden" for n in ent.fields}
    cache = g.setdefault("fw_access", {})
    if ent.table_name not in cache:
        cache[ent.table_name] = perms.field_access(ent, user())
    return cache[ent.table_name]


def readable_entities(model) -> list:
    return [e for e in model.entities.values() if can(e, "read")]
