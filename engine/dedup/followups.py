"""Which records are an entity's follow-ups (R14 shows them beside a duplicate; R18 counts them).

An entity names its activity log with ``follow_ups:`` — ``follow_ups: follow_up`` or
``follow_ups: {entity: follow_up, field: customer, date: followed_on}``. Without the key, an entity
called ``follow_up`` that references it is used (the base template's convention). ``field`` defaults
to the follow-up entity's one reference to this entity; ``date`` to its first required date or
datetime field, else its first date or datetime field, else ``created_at``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa

CONVENTIONAL = "follow_up"
SUMMARY_CHARS = 200


@dataclass(frozen=True)
class FollowUpSource:
    entity: object     # the follow-up Entity
    field: object      # its reference Field to the followed entity
    date: str          # a date/datetime field name, or "created_at"

    @property
    def date_is_datetime(self) -> bool:
        if self.date == "created_at":
            return True
        return self.entity.fields[self.date].type == "datetime"


def _parse(spec) -> tuple[str | None, str | None, str | None]:
    if isinstance(spec, str):
        return spec, None, None
    if isinstance(spec, dict):
        return spec.get("entity"), spec.get("field"), spec.get("date")
    return None, None, None


def reference_fields(follow_entity, target: str) -> list:
    return [f for f in follow_entity.fields.values() if f.type == "reference" and f.to == target]


def default_date_field(follow_entity) -> str:
    dated = [f for f in follow_entity.fields.values() if f.type in ("date", "datetime")]
    required = [f for f in dated if f.required]
    return (required or dated)[0].name if dated else "created_at"


def follow_up_source(model, entity) -> FollowUpSource | None:
    """The follow-ups of `entity`, or None when it has none."""
    spec = (entity.settings or {}).get("follow_ups")
    name, field_name, date_name = _parse(spec)
    if spec is None:
        name = CONVENTIONAL
    fu = model.entities.get(name) if name else None
    if fu is None:
        return None
    refs = reference_fields(fu, entity.name)
    if field_name:
        field = fu.fields.get(field_name)
    else:
        field = refs[0] if len(refs) == 1 else next((f for f in refs if f.required), None)
    if field is None or field not in refs:
        return None
    date_name = date_name or default_date_field(fu)
    if date_name != "created_at" and date_name not in fu.fields:
        return None
    return FollowUpSource(fu, field, date_name)


def latest_follow_ups(tenant, conn, source: FollowUpSource, ids, user, limit: int = 3,
                      locale: str | None = None) -> dict[int, list[dict]] | None:
    """{id: its latest `limit` follow-ups the user may see}; None when the user may not read them."""
    records = tenant.records
    perms = records.permissions
    fu = source.entity
    if not perms.can(fu, user, "read"):
        return None
    t = tenant.schema.table(fu)
    visible = perms.visible_fields(fu, user)
    date_col = t.c[source.date]
    scope = perms.row_filter(fu, t, user, "read")
    out: dict[int, list[dict]] = {}
    owners: set = set()
    for rid in ids:
        stmt = sa.select(t).where(t.c[source.field.name] == rid)
        if scope is not None:
            stmt = stmt.where(scope)
        rows = conn.execute(stmt.order_by(date_col.desc(), t.c.id.desc()).limit(limit)).mappings().all()
        items = []
        for row in rows:
            rec = records._from_row(fu, row)
            owners.add(rec.get("owner"))
            items.append(_item(tenant, fu, source, rec, visible, user, locale))
        out[rid] = items
    names = _user_names(tenant, conn, owners)
    for items in out.values():
        for it in items:
            it["owner_name"] = names.get(it["owner"], "")
    return out


def _item(tenant, fu, source, rec: dict, visible: set, user, locale) -> dict:
    records = tenant.records
    masked = records.permissions.mask(fu, user, rec)
    when = rec.get(source.date) if source.date == "created_at" or source.date in visible else None
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        when_text = when.astimezone(tenant.timezone).isoformat()
    elif isinstance(when, date):
        when_text = when.isoformat()
    else:
        when_text = None
    summary = ""
    for f in fu.fields.values():
        if f.name in visible and f.type in ("textarea", "text") and rec.get(f.name):
            summary = str(rec[f.name])
            break
    if len(summary) > SUMMARY_CHARS:
        summary = summary[:SUMMARY_CHARS - 1] + "…"
    return {"id": rec["id"], "date": when_text, "owner": rec.get("owner"), "summary": summary,
            "record": records.to_json(fu, masked)}


def _user_names(tenant, conn, ids) -> dict:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    u = tenant.schema.system["users"]
    return {r.id: (r.display_name or r.username)
            for r in conn.execute(sa.select(u.c.id, u.c.username, u.c.display_name).where(u.c.id.in_(ids)))}
