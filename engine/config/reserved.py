"""Names a tenant may not use for entities and fields: only those that would really clash.

Every identifier reaches SQL through SQLAlchemy, which quotes reserved words on SQLite and
PostgreSQL, so SQL's reserved words (`order`, `from`, `user`, `date`, `position` …) are fine names.
Expressions write a name that is a Python keyword (`from`, `in`, `class`) in backticks: `from`.
What is left: the system fields of the record itself (a column of that name already exists),
`__` (subtable tables are named parent__field), a trailing `_`, the `fw_` prefix of
Formwork's own tables, and the few entity names the JSON API uses for its own routes
(`/api/v1/search`, `/api/v1/tasks` …), whose records list would otherwise be unreachable.
"""
from __future__ import annotations

from ..metadata.model import CHILD_SYSTEM_FIELDS, SYSTEM_FIELDS

SYSTEM_TABLE_PREFIX = "fw_"
MAX_TABLE_NAME = 63  # PostgreSQL's identifier limit
# /api/v1/<name> routes of the API itself: an entity of that name could not be listed at /api/v1/<entity>.
API_ROUTE_NAMES = ("search", "approvals", "pipelines", "tasks", "notifications")


def name_problem(name: str, kind: str) -> str | None:
    """Why `name` cannot name an entity, a field or a subtable's field (`kind`: "entity", "field",
    "child_field"), or None when it can."""
    low = name.lower()
    system = CHILD_SYSTEM_FIELDS if kind == "child_field" else SYSTEM_FIELDS if kind == "field" else ()
    if low in system:
        return (f"'{name}' is a system field every {'row' if kind == 'child_field' else 'record'} "
                f"already has; choose another name")
    if "__" in name:
        return f"'{name}' contains '__', which Formwork keeps for subtable tables"
    if name.endswith("_"):
        return f"'{name}' ends with '_'; choose another name"
    if kind == "entity" and low.startswith(SYSTEM_TABLE_PREFIX):
        return f"entity names may not start with '{SYSTEM_TABLE_PREFIX}' (Formwork's own tables)"
    if kind == "entity" and low in API_ROUTE_NAMES:
        return (f"'{name}' is the JSON API's own route /api/v1/{low}, so its records could not be listed "
                f"there; choose another entity name (e.g. {low}_list or a singular such as "
                f"{low.rstrip('s') if low.endswith('s') else low + '_entry'})")
    return None
