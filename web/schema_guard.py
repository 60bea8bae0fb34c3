"""The check that a database's schema matches the tenant config before the app serves it."""
from __future__ import annotations

from engine.errors import SchemaMismatch


def schema_problem(tenant) -> str | None:
    """A message when the database needs `formwork migrate`, else None."""
    try:
        from engine.schema.migrate import check_schema
    except ImportError:  # pragma: no cover - the engine always ships it
        return None
    try:
        check_schema(tenant)
    except SchemaMismatch as exc:
        return str(exc) or "the database schema does not match the config: run `formwork plan`"
    return None
