"""List pages: columns from `layout.list`, typed filter controls, and the query string they read."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from urllib.parse import urlencode

from engine.records.query import SYSTEM_FIELD_TYPES, system_field

from .forms import widget
from .i18n import label

RESERVED = ("q", "sort", "after", "limit")
DEFAULT_LIMIT = 25
MAX_LIMIT = 100


@dataclass
class ListQuery:
    """What a list page was asked for: search text, typed filters, sort, cursor and page size."""

    search: str | None = None
    sort: str | None = None
    after: str | None = None
    limit: int = DEFAULT_LIMIT
    filters: dict = dc_field(default_factory=dict)

    @classmethod
    def from_args(cls, ent, args) -> "ListQuery":
        filters = {}
        for key in args:
            if key in RESERVED:
                continue
            values = [v.strip() for v in args.getlist(key) if v and v.strip()]
            if values:
                filters[key] = ",".join(values)
        try:
            limit = max(1, min(MAX_LIMIT, int(args.get("limit") or DEFAULT_LIMIT)))
        except ValueError:
            limit = DEFAULT_LIMIT
        return cls(search=(args.get("q") or "").strip() or None, sort=args.get("sort") or None,
                   after=args.get("after") or None, limit=limit, filters=filters)

    def params(self, **changes) -> str:
        """The query string for this list with some parameters changed (None removes one)."""
        data = {"q": self.search, "sort": self.sort, "limit": self.limit if self.limit != DEFAULT_LIMIT
                else None, **self.filters}
        data.update(changes)
        return urlencode({k: v for k, v in data.items() if v not in (None, "")})

    @property
    def active(self) -> int:
        return len(self.filters) + (1 if self.search else 0)


def field_for(ent, name: str):
    if name in ent.fields:
        return ent.fields[name]
    if name in SYSTEM_FIELD_TYPES and not ent.is_child:
        return system_field(name)
    return None


def _sortable(types, f) -> bool:
    ftype = types.for_field(f)
    check = getattr(ftype, "sortable_for", None)
    return bool(check(f) if check else ftype.sortable)


def list_columns(ent, types) -> list[dict]:
    """The layout's list columns, else the title and the first few fields."""
    names = list(ent.list_layout or [])
    if not names:
        names = ([ent.title] if ent.title else []) + [
            n for n, f in ent.fields.items() if n != ent.title and f.child is None
            and f.type not in ("textarea", "file")][:4]
    cols = []
    for name in names:
        f = field_for(ent, name)
        if f is None or f.child is not None:
            continue
        cols.append({"name": name, "label": label(f.label) or name, "field": f,
                     "sortable": _sortable(types, f), "numeric": f.type in ("integer", "decimal", "money",
                                                                             "percent")
                     or (f.type == "formula" and f.returns in ("integer", "decimal", "money", "percent"))})
    if ent.title and all(c["name"] != ent.title for c in cols) and ent.title in ent.fields:
        f = ent.fields[ent.title]
        cols.insert(0, {"name": ent.title, "label": label(f.label), "field": f,
                        "sortable": _sortable(types, f), "numeric": False})
    return cols


def filter_controls(ent, query: ListQuery, choices) -> list[dict]:
    """A typed control for each filterable list column: choice, range or reference picker."""
    names = list(ent.list_layout or []) or [n for n in ent.fields]
    if "owner" not in names:
        names.append("owner")
    out = []
    for name in names:
        f = field_for(ent, name)
        if f is None or f.child is not None:
            continue
        kind = widget(f) if name in ent.fields else {"user": "user", "department": "department",
                                                       "datetime": "datetime"}.get(f.type, "")
        text = label(f.label) or name
        if kind in ("select", "user", "department", "boolean"):
            out.append({"kind": "select", "name": name, "label": text, "options": choices.for_field(f),
                        "value": query.filters.get(name, "")})
        elif kind == "multiselect":
            out.append({"kind": "select", "name": f"{name}__contains", "label": text,
                        "options": choices.for_field(f), "value": query.filters.get(f"{name}__contains", "")})
        elif kind in ("date", "datetime", "integer", "decimal", "money", "percent"):
            out.append({"kind": "range", "name": name, "label": text,
                        "input": "date" if kind == "date" else "datetime-local" if kind == "datetime" else "text",
                        "low": query.filters.get(f"{name}__gte", ""), "high": query.filters.get(f"{name}__lte", "")})
        elif kind == "reference":
            out.append({"kind": "reference", "name": name, "label": text, "to": f.to,
                        "value": query.filters.get(name, "")})
    return out


def heading(ent, text: dict, types, record_id=None) -> str:
    """What names a record on a page: its title, else its first list columns (e.g. the customer and
    date of a follow-up) — never a bare number when there is something better."""
    if ent.title and text.get(ent.title):
        return str(text[ent.title])
    parts = []
    for col in list_columns(ent, types):
        value = text.get(col["name"])
        if value and col["name"] not in ("owner", "department") and isinstance(value, str):
            parts.append(value if len(value) <= 40 else value[:39] + "…")
        if len(parts) == 2:
            break
    if parts:
        return " · ".join(parts)
    return f"#{record_id if record_id is not None else text.get('id', '')}"
