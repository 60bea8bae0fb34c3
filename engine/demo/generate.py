"""Realistic demo data for every entity, written through the records service (so every rule holds)."""
from __future__ import annotations

import random
from datetime import timedelta

import sqlalchemy as sa
from faker import Faker

from ..errors import DuplicatesFound, ValidationFailed
from ..metadata.model import Entity

ATTEMPTS = 8


def entity_order(model) -> list[Entity]:
    """Entities so that a referenced entity comes before the ones referring to it (cycles broken)."""
    deps = {}
    for ent in model.entities.values():
        targets = set()
        for e in [ent, *[f.child for f in ent.subtables()]]:
            targets |= {f.to for f in e.fields.values() if f.to and f.to != ent.name}
        deps[ent.name] = targets
    order, done = [], set()

    def visit(name, stack):
        if name in done or name in stack:
            return
        for d in sorted(deps.get(name, ())):
            visit(d, stack | {name})
        done.add(name)
        order.append(model.entities[name])

    for name in model.entities:
        visit(name, frozenset())
    return order


class DemoGenerator:
    """Makes values per field type (the types' own demo_value), references to existing records."""

    def __init__(self, tenant, seed: int | None = None):
        self.tenant = tenant
        locale = "zh_CN" if tenant.model.tenant.locale.lower().startswith("zh") else "en_US"
        self.faker = Faker(locale)
        self.random = random.Random(seed)
        if seed is not None:
            self.faker.seed_instance(seed)
        self.ctx = tenant.field_context()
        self.ids: dict[str, list[int]] = {}
        self.user_ids = self._user_ids()

    def _user_ids(self) -> list[int]:
        users = self.tenant.schema.system["users"]
        with self.tenant.db.connect() as conn:
            return [r[0] for r in conn.execute(sa.select(users.c.id).where(users.c.active.is_(True)))]

    def existing_ids(self, entity_name: str) -> list[int]:
        if entity_name not in self.ids:
            t = self.tenant.schema.table(entity_name)
            with self.tenant.db.connect() as conn:
                self.ids[entity_name] = [r[0] for r in conn.execute(sa.select(t.c.id).limit(5000))]
        return self.ids[entity_name]

    def values(self, entity: Entity, only: set[str] | None = None, late: bool = False) -> dict:
        out = {}
        for f in entity.fields.values():
            if only is not None and f.name not in only:
                continue
            ftype = self.tenant.field_types.for_field(f)
            if ftype.computed or f.settings.get("approval"):   # an approval's status is the flow's to set
                continue
            if f.child is not None:
                out[f.name] = [self.values(f.child) for _ in range(self.random.randint(1, 4))]
            elif ftype.links_to == "record":
                ids = self.existing_ids(f.to)
                if ids and (f.required or self.random.random() < 0.8):
                    out[f.name] = self.random.choice(ids)
            elif ftype.links_to == "user":
                if self.user_ids:
                    out[f.name] = self.random.choice(self.user_ids)
            elif ftype.temporal and not _is_birthday(f):
                out[f.name] = self.when(f, late)
            else:
                v = ftype.demo_value(f, self.faker, self.ctx)
                if v is not None:
                    out[f.name] = ftype.to_json(f, v)
        if not entity.is_child and self.user_ids:
            out["owner"] = self.random.choice(self.user_ids)
        return out

    def when(self, field, late: bool) -> str:
        """A date near today: ahead for next/due/until-like fields, behind otherwise.

        `late` (after failed attempts) keeps past-like values at today, so rules such as
        "not before the customer was created" hold for records the demo has just created.
        """
        future = _looks_ahead(field)
        days = self.random.randint(1, 60) if future else (0 if late else -self.random.randint(0, 180))
        moment = self.tenant.now() + timedelta(days=days, minutes=self.random.randint(1, 600) if future else 0)
        if field.type == "date":
            return moment.astimezone(self.ctx.timezone).date().isoformat()
        return moment.isoformat()

    def create(self, entity: Entity) -> int | None:
        values = self.values(entity)
        for attempt in range(ATTEMPTS):
            try:
                # faker's names repeat; after a few redraws a near-duplicate is kept, as in real data
                rec = self.tenant.records.create(entity.name, values, confirm_duplicates=attempt >= 3)
            except DuplicatesFound:
                values = self.values(entity)
                continue
            except ValidationFailed as exc:
                bad = {k.split(".")[0] for k in exc.errors}
                if "_record" in bad:
                    bad = set(entity.fields)  # a record rule failed: draw everything again
                values.update(self.values(entity, only=bad, late=attempt >= ATTEMPTS // 2))
                continue
            self.ids.setdefault(entity.name, []).append(rec["id"])
            return rec["id"]
        return None


FUTURE_WORDS = ("next", "until", "due", "expire", "expiry", "deadline", "delivery", "close", "reevaluate",
                "end", "下次", "截止", "到期", "有效期", "交付", "预计")


def _looks_ahead(field) -> bool:
    text = f"{field.name} {field.label.get('zh')} {field.label.get('en')}".lower()
    return any(w in text for w in FUTURE_WORDS)


def _is_birthday(field) -> bool:
    return "birth" in field.name or "生日" in field.label.get("zh")


def demo_users(tenant, faker: Faker) -> int:
    """A few colleagues per role (records need owners and user fields) when the tenant has almost none."""
    if len([u for u in tenant.users.list(include_inactive=False)]) > 1:
        return 0
    roles = [r for r in (tenant.model.config.get("roles") or {}) if r != "admin"] or ["admin"]
    departments = list((tenant.model.config.get("departments") or {}).keys()) or [None]
    made = 0
    for i, role in enumerate(roles[:5]):
        username = f"demo_{role}"
        if tenant.users.by_username(username) is None:
            dept = _department_for(role, departments, i)
            # a manager role manages its department, so approvals have someone to go to
            tenant.users.add(username, [role], department=dept, display_name=faker.name(),
                             manages=[dept] if dept and "manager" in role else [])
            made += 1
    return made


def _department_for(role: str, departments: list, i: int):
    """The department a role's name points to (sales_rep → sales, finance → finance), else round robin."""
    stem = role.split("_")[0]
    for d in departments:
        if d in (role, stem):
            return d
    return departments[i % len(departments)]


def generate_demo(tenant, size: int = 20, seed: int | None = None) -> dict[str, int]:
    """Create up to `size` records per entity; returns how many were created per entity."""
    probe = DemoGenerator(tenant, seed)
    users = demo_users(tenant, probe.faker)
    gen = DemoGenerator(tenant, seed) if users else probe
    counts = {"users": users} if users else {}
    for entity in entity_order(tenant.model):
        gen.existing_ids(entity.name)
        made = sum(1 for _ in range(size) if gen.create(entity) is not None)
        counts[entity.name] = made
    return counts
