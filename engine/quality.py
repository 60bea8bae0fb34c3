"""Data quality as live figures (R18, R36): per entity, per department and per owner.

For each entity with a ``quality:`` block (see docs/config-format.md):

- completeness — filled key-field values / (records × key fields), in %; also per field and the
  number of records with every key field filled;
- followed up — the share of records with at least one follow-up (``follow_ups:``) dated within the
  last ``followed_up_days`` days, in %;
- unowned — records with no owner, or an owner whose account is disabled or gone (R35, R44).

Each figure is compared with its threshold (``completeness_min``, ``followed_up_min``,
``unowned_max``) when one is given: pass or fail, for the whole entity and for every group.
Everything is computed in SQL from the live tables, within the user's read scope.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from .dedup.check import department_label
from .dedup.followups import follow_up_source
from .i18n import language

SYSTEM_KEY_FIELDS = ("owner", "department")


@dataclass
class Check:
    name: str                  # completeness | followed_up | unowned
    value: float | int | None
    threshold: float | int | None
    passed: bool | None        # None: no threshold (or nothing to measure)
    comparison: str            # ">=" or "<="

    def to_json(self) -> dict:
        return {"name": self.name, "value": self.value, "threshold": self.threshold, "passed": self.passed,
                "comparison": self.comparison}


@dataclass
class Group:
    key: str | int | None       # department name / owner id / None for the whole entity
    label: str
    records: int = 0
    filled: int = 0             # filled key-field values
    complete_records: int = 0
    followed_up: int = 0
    unowned: int = 0
    by_field: dict[str, int] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        results = [c.passed for c in self.checks if c.passed is not None]
        return None if not results else all(results)

    def to_json(self) -> dict:
        return {"key": self.key, "label": self.label, "records": self.records,
                "complete_records": self.complete_records, "followed_up_records": self.followed_up,
                "unowned_records": self.unowned, "fields": self.by_field, "passed": self.passed,
                "checks": [c.to_json() for c in self.checks]}


@dataclass
class EntityQuality:
    entity: str
    label: str
    key_fields: list[str]
    followed_up_days: int | None
    overall: Group
    by_department: list[Group]
    by_user: list[Group]

    @property
    def passed(self) -> bool | None:
        return self.overall.passed

    def to_json(self) -> dict:
        return {"entity": self.entity, "label": self.label, "key_fields": self.key_fields,
                "followed_up_days": self.followed_up_days, "passed": self.passed, "overall": self.overall.to_json(),
                "by_department": [g.to_json() for g in self.by_department],
                "by_user": [g.to_json() for g in self.by_user]}


def quality_entities(model) -> list:
    return [e for e in model.entities.values() if isinstance((e.settings or {}).get("quality"), dict)]


def quality_report(tenant, entity_names: list[str] | None = None, user=None, now: datetime | None = None,
                   locale: str | None = None) -> list[EntityQuality]:
    """The figures of every entity with a `quality:` block (or of `entity_names`), as `user` may see."""
    model = tenant.model
    entities = quality_entities(model)
    if entity_names:
        entities = [model.entity(n) for n in entity_names]
    now = now or tenant.now()
    locale = locale or getattr(user, "locale", None) or model.tenant.locale
    with tenant.db.connect() as conn:
        return [_entity_quality(tenant, conn, e, user, now, locale) for e in entities]


def _filled(col):
    if isinstance(col.type, (sa.String, sa.Text)):
        return sa.and_(col.isnot(None), col != "")
    return col.isnot(None)


def _entity_quality(tenant, conn, entity, user, now: datetime, locale: str) -> EntityQuality:
    settings = (entity.settings or {}).get("quality") or {}
    perms = tenant.records.permissions
    t = tenant.schema.table(entity)
    key_fields = [f for f in settings.get("key_fields") or []
                  if f in SYSTEM_KEY_FIELDS or (f in entity.fields and f in t.c)]
    days = settings.get("followed_up_days")
    source = follow_up_source(tenant.model, entity)
    conds = []
    if not perms.can(entity, user, "read"):
        conds.append(sa.false())
    else:
        scope = perms.row_filter(entity, t, user, "read")
        if scope is not None:
            conds.append(scope)
    one, zero = sa.literal(1), sa.literal(0)
    cols = [t.c.department.label("g_department"), t.c.owner.label("g_owner"), sa.func.count().label("n")]
    for i, name in enumerate(key_fields):
        cols.append(sa.func.sum(sa.case((_filled(t.c[name]), one), else_=zero)).label(f"f{i}"))
    if key_fields:
        every = sa.and_(*[_filled(t.c[name]) for name in key_fields])
        cols.append(sa.func.sum(sa.case((every, one), else_=zero)).label("complete"))
    if days and source is not None:
        ft = tenant.schema.table(source.entity)
        date_col = ft.c[source.date]
        if source.date_is_datetime:
            cutoff = now - timedelta(days=int(days))
        else:
            cutoff = (now.astimezone(tenant.timezone).date() - timedelta(days=int(days)))
        recent = sa.exists(sa.select(ft.c.id).where(ft.c[source.field.name] == t.c.id, date_col >= cutoff))
        cols.append(sa.func.sum(sa.case((recent, one), else_=zero)).label("followed"))
    users = tenant.schema.system["users"]
    active_owner = sa.exists(sa.select(users.c.id).where(users.c.id == t.c.owner, users.c.active.is_(True)))
    cols.append(sa.func.sum(sa.case((sa.not_(active_owner), one), else_=zero)).label("unowned"))
    stmt = sa.select(*cols).select_from(t).where(*conds).group_by(t.c.department, t.c.owner)
    rows = conn.execute(stmt).mappings().all()

    overall = Group(None, entity.label.get(locale))
    depts: dict = {}
    owners: dict = {}
    for row in rows:
        for group in (overall,
                      depts.setdefault(row["g_department"], Group(row["g_department"], "")),
                      owners.setdefault(row["g_owner"], Group(row["g_owner"], ""))):
            group.records += row["n"]
            for i, name in enumerate(key_fields):
                v = int(row[f"f{i}"] or 0)
                group.filled += v
                group.by_field[name] = group.by_field.get(name, 0) + v
            if key_fields:
                group.complete_records += int(row["complete"] or 0)
            if "followed" in row:
                group.followed_up += int(row["followed"] or 0)
            group.unowned += int(row["unowned"] or 0)
    names = _user_names(conn, users, [k for k in owners if k is not None])
    none_label = "（无）" if language(locale) == "zh" else "(none)"
    for key, g in depts.items():
        g.label = department_label(tenant, key, locale) if key else none_label
    for key, g in owners.items():
        g.label = names.get(key, f"#{key}") if key is not None else none_label
    for g in [overall, *depts.values(), *owners.values()]:
        _checks(g, settings, key_fields, days and source is not None, whole=g is overall)
    return EntityQuality(entity.name, entity.label.get(locale), key_fields, days if source else None, overall,
                         sorted(depts.values(), key=lambda g: (g.key is None, str(g.label))),
                         sorted(owners.values(), key=lambda g: (g.key is None, str(g.label))))


def _pct(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(100.0 * part / whole, 1)


def _checks(g: Group, settings: dict, key_fields: list[str], followed: bool, whole: bool) -> None:
    if key_fields:
        value = _pct(g.filled, g.records * len(key_fields))
        threshold = settings.get("completeness_min")
        g.checks.append(Check("completeness", value, threshold,
                              None if threshold is None or value is None else value >= threshold, ">="))
    if followed:
        value = _pct(g.followed_up, g.records)
        threshold = settings.get("followed_up_min")
        g.checks.append(Check("followed_up", value, threshold,
                              None if threshold is None or value is None else value >= threshold, ">="))
    threshold = settings.get("unowned_max")
    g.checks.append(Check("unowned", g.unowned, threshold,
                          None if threshold is None or not whole else g.unowned <= threshold, "<="))


def _user_names(conn, users, ids) -> dict:
    if not ids:
        return {}
    return {r.id: (r.display_name or r.username) for r in
            conn.execute(sa.select(users.c.id, users.c.username, users.c.display_name).where(users.c.id.in_(ids)))}
