"""The one permission layer: row filters compiled into every query and field masks on every record.

Roles come from the tenant config (`roles:`), departments from `departments:`. A user's permissions
are the union of their roles'. `user=None` is the engine itself (CLI without --as, migrations,
demo data): it may do everything. Every read path of the records service asks `row_filter`, every
record that leaves it goes through `mask`, every write asks `can` / `within`.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from functools import cached_property
from typing import Any

import sqlalchemy as sa

from .errors import FormworkError

ACTIONS = ("read", "create", "update", "delete", "export", "import", "transfer")
SCOPED_ACTIONS = ("read", "update", "delete", "export", "transfer")
FLAG_ACTIONS = ("create", "import")
SCOPES = ("none", "own", "department", "department_tree", "all")
ACCESS = ("hidden", "read", "write")
ADMIN_ROLE = "admin"


class PermissionDenied(FormworkError):
    """The user may see the record or entity but not do this with it (HTTP 403)."""


@dataclass(frozen=True)
class Grant:
    """One role's right to one action on one entity: a scope, optionally narrowed by a condition."""

    scope: str
    where: Any = None          # engine.expressions.sql.SqlCondition
    where_expr: Any = None     # the CompiledExpression (for checking a record in Python)


@dataclass
class RoleRules:
    """A role, resolved: grants per entity and action, export limits, field access."""

    name: str
    all: bool = False
    grants: dict[str, dict[str, Grant]] = dc_field(default_factory=dict)
    flags: dict[str, dict[str, bool]] = dc_field(default_factory=dict)
    export_limits: dict[str, int] = dc_field(default_factory=dict)
    fields: dict[str, dict[str, str]] = dc_field(default_factory=dict)


def parse_grant(value) -> tuple[str, str | None]:
    """`own` or {scope: own, where: "…"} → (scope, where source)."""
    if isinstance(value, dict):
        return value.get("scope", "none"), value.get("where")
    if value is True:
        return "all", None
    if value in (False, None):
        return "none", None
    return str(value), None


def build_roles(model, field_types) -> dict[str, RoleRules]:
    """Resolve the config's roles (the config check already validated names and expressions)."""
    from .expressions import compile_expression
    from .expressions.sql import row_condition
    from .records.query import SYSTEM_FIELD_TYPES, system_field

    system_types = {n: system_field(n) for n in SYSTEM_FIELD_TYPES}
    roles: dict[str, RoleRules] = {ADMIN_ROLE: RoleRules(ADMIN_ROLE, all=True)}
    for name, spec in (model.config.get("roles") or {}).items():
        spec = spec or {}
        rules = RoleRules(name, all=bool(spec.get("all")))
        for ent_name, actions in (spec.get("entities") or {}).items():
            entity = model.entities.get(ent_name)
            if entity is None:
                continue
            for action, value in (actions or {}).items():
                if action == "export_limit":
                    rules.export_limits[ent_name] = int(value)
                elif action in FLAG_ACTIONS:
                    rules.flags.setdefault(ent_name, {})[action] = bool(value)
                elif action in SCOPED_ACTIONS:
                    scope, where = parse_grant(value)
                    cond = expr = None
                    if where:
                        expr = compile_expression(where, entity=entity, model=model)
                        cond = row_condition(expr, entity, field_types, system_types)
                    rules.grants.setdefault(ent_name, {})[action] = Grant(scope, cond, expr)
        for key, access in (spec.get("fields") or {}).items():
            ent_name, _, field_name = str(key).partition(".")
            rules.fields.setdefault(ent_name, {})[field_name] = access
        roles[name] = rules
    return roles


def department_parents(model) -> dict[str, str | None]:
    return {name: (spec or {}).get("parent") for name, spec in (model.config.get("departments") or {}).items()}


class Permissions:
    """Answers what a user may do with an entity, its records and its fields."""

    def __init__(self, tenant):
        self.tenant = tenant

    @cached_property
    def roles(self) -> dict[str, RoleRules]:
        return build_roles(self.tenant.model, self.tenant.field_types)

    @cached_property
    def parents(self) -> dict[str, str | None]:
        return department_parents(self.tenant.model)

    def subtree(self, department: str | None) -> set[str]:
        """A department and every department below it."""
        if not department:
            return set()
        out = {department}
        changed = True
        while changed:
            changed = False
            for d, parent in self.parents.items():
                if parent in out and d not in out:
                    out.add(d)
                    changed = True
        return out

    def managed_departments(self, user) -> set[str]:
        out: set[str] = set()
        for d in getattr(user, "manages", None) or []:
            out |= self.subtree(d)
        return out

    # -- who is unrestricted -------------------------------------------------------------------

    def _user_roles(self, user) -> list[RoleRules]:
        return [self.roles[r] for r in getattr(user, "roles", None) or [] if r in self.roles]

    def is_superuser(self, user) -> bool:
        """The engine itself, or a user with an `all: true` role (admin)."""
        if user is None:
            return True
        return getattr(user, "active", True) and any(r.all for r in self._user_roles(user))

    def _grants(self, entity, user, action: str) -> list[Grant]:
        ent = entity.parent or entity if getattr(entity, "parent", None) else entity
        out = []
        for role in self._user_roles(user):
            g = role.grants.get(ent.name, {}).get(action)
            if g is not None and g.scope != "none":
                out.append(g)
        return out

    # -- entity level --------------------------------------------------------------------------

    def can(self, entity, user, action: str) -> bool:
        """May `user` perform `action` on this entity at all (before looking at a record)?"""
        if user is not None and not getattr(user, "active", True):
            return False
        if self.is_superuser(user):
            return True
        if action in FLAG_ACTIONS:
            return any(r.flags.get(entity.name, {}).get(action) for r in self._user_roles(user))
        return bool(self._grants(entity, user, action))

    # -- row level -----------------------------------------------------------------------------

    def row_filter(self, entity, table: sa.Table, user, action: str = "read") -> Any | None:
        """A SQL condition limiting rows to the user's scope for `action`, or None for no limit."""
        if self.is_superuser(user):
            return None
        if user is not None and not getattr(user, "active", True):
            return sa.false()
        ors = []
        ctx = self.tenant.field_context()
        for g in self._grants(entity, user, action):
            cond = self._scope_clause(entity, table, user, g.scope, action)
            if g.where is not None:
                cond = sa.and_(cond, g.where.clause(table, ctx, self.tenant.now())) if cond is not None else g.where.clause(table, ctx, self.tenant.now())
            if cond is None:  # scope all, no condition
                return None
            ors.append(cond)
        return sa.or_(*ors) if ors else sa.false()

    def _scope_clause(self, entity, table, user, scope: str, action: str):
        if scope == "all":
            return None
        shared = self._shared_clause(entity, table, user, action)
        if scope == "own":
            mine = table.c.owner == user.id
        elif scope == "department":
            mine = table.c.department == user.department if user.department else sa.false()
        elif scope == "department_tree":
            depts = self.subtree(user.department) | self.managed_departments(user)
            mine = sa.or_(table.c.department.in_(sorted(depts)), table.c.owner == user.id) if depts \
                else table.c.owner == user.id
        else:
            return sa.false()
        return sa.or_(mine, shared)

    def _shared_clause(self, entity, table, user, action: str):
        """Records shared with the user or their department (R34): read, or write for changes."""
        shares = self.tenant.schema.system["shares"]
        who = [shares.c.user_id == user.id]
        if user.department:
            who.append(shares.c.department == user.department)
        cond = [shares.c.entity == entity.name, sa.or_(*who)]
        if action in ("update",):
            cond.append(shares.c.access == "write")
        elif action not in ("read", "export"):
            return sa.false()
        return table.c.id.in_(sa.select(shares.c.record_id).where(*cond))

    def within(self, entity, user, action: str, record: dict, connection=None) -> bool:
        """Would `record` (e.g. a new one, or one after an update) be in the user's scope for `action`?"""
        if self.is_superuser(user):
            return True
        if user is not None and not getattr(user, "active", True):
            return False
        shared = None
        for g in self._grants(entity, user, action):
            if not self._record_in_scope(user, g.scope, record):
                if g.scope == "all" or record.get("id") is None:
                    continue
                if shared is None:
                    shared = self._is_shared(entity, user, record["id"], action, connection)
                if not shared:
                    continue
            if g.where_expr is not None and not g.where_expr.matches(record, tz=self.tenant.timezone):
                continue
            return True
        return False

    def _is_shared(self, entity, user, record_id: int, action: str, connection=None) -> bool:
        t = sa.table(entity.table_name, sa.column("id"))
        stmt = sa.select(t.c.id).where(t.c.id == record_id, self._shared_clause(entity, t, user, action))
        if connection is not None:
            return connection.execute(stmt).first() is not None
        with self.tenant.db.connect() as conn:
            return conn.execute(stmt).first() is not None

    def _record_in_scope(self, user, scope: str, record: dict) -> bool:
        if scope == "all":
            return True
        if scope == "own":
            return record.get("owner") == user.id
        if scope == "department":
            return bool(user.department) and record.get("department") == user.department
        if scope == "department_tree":
            depts = self.subtree(user.department) | self.managed_departments(user)
            return record.get("department") in depts or record.get("owner") == user.id
        return False

    def placeable_departments(self, entity, user) -> set | None:
        """The departments `user` may put a record of `entity` in (None: any). A record placed outside
        them would leave the view of the managers above the writer, so it follows the widest scope of
        the user's update grants (read grants for a role that may only create): their own department,
        plus the tree below it and the departments they manage for department_tree, any for all."""
        if self.is_superuser(user):
            return None
        grants = self._grants(entity, user, "update") or self._grants(entity, user, "read")
        scopes = {g.scope for g in grants}
        if "all" in scopes:
            return None
        out: set = {user.department} if user.department else {None}
        if "department_tree" in scopes:
            out |= self.subtree(user.department) | self.managed_departments(user)
        return out

    # -- field level ---------------------------------------------------------------------------

    def field_access(self, entity, user) -> dict[str, str]:
        """{field: "hidden" | "read" | "write"}: the most generous of the user's roles.

        A formula that reads a hidden field (directly, through other formulas, a subtable or a dotted
        reference path) is hidden too: its value would give the hidden one away.
        """
        if self.is_superuser(user):
            return {name: "write" for name in entity.fields}
        roles = self._user_roles(user)
        key = tuple(sorted({r.name for r in roles}))
        resolved = self._access_by_roles.get(key)
        if resolved is None:
            resolved = self._access_by_roles[key] = self._resolve_access(roles)
        found = resolved.get(entity.table_name)
        return dict(found) if found is not None and found.keys() == entity.fields.keys() \
            else self._base_access(entity, roles)

    @cached_property
    def _access_by_roles(self) -> dict[tuple, dict[str, dict[str, str]]]:
        """{role names: {table name: field access}}, worked out once per set of roles (the model is fixed)."""
        return {}

    def _base_access(self, entity, roles: list[RoleRules]) -> dict[str, str]:
        """Field access from the roles' grants and `fields:` overrides alone (no formula propagation)."""
        top = entity
        while getattr(top, "parent", None) is not None:
            top = top.parent
        out = {name: "hidden" for name in entity.fields}
        for role in roles:
            grants = role.grants.get(top.name, {})
            if not any(g.scope != "none" for g in grants.values()) and not role.flags.get(top.name):
                continue
            base = "write" if ("update" in grants and grants["update"].scope != "none") or \
                role.flags.get(top.name, {}).get("create") else "read"
            overrides = role.fields.get(top.name, {}) if top is entity else {}
            for name in entity.fields:
                access = overrides.get(name, base)
                if ACCESS.index(access) > ACCESS.index(out[name]):
                    out[name] = access
        return out

    def _resolve_access(self, roles: list[RoleRules]) -> dict[str, dict[str, str]]:
        """Every entity's field access for these roles, formulas over hidden fields hidden as well.

        Hiding only ever grows, so repeating until nothing changes reaches formulas of formulas and
        paths across entities (which may refer to each other) without ordering them.
        """
        model = self.tenant.model
        entities = list(model.all_entities())
        access = {e.table_name: self._base_access(e, roles) for e in entities}
        formulas = [(e, f) for e in entities for f in e.fields.values() if getattr(f, "expr", None) is not None]
        changed = True
        while changed:
            changed = False
            for ent, f in formulas:
                if access[ent.table_name][f.name] != "hidden" and self._reads_hidden(ent, f.expr, access):
                    access[ent.table_name][f.name] = "hidden"
                    changed = True
        return access

    def _reads_hidden(self, entity, expr, access: dict[str, dict[str, str]]) -> bool:
        """Does the compiled expression read a field hidden in `access` (names and dotted paths)?"""
        own = access.get(entity.table_name, {})
        if any(own.get(name) == "hidden" for name in getattr(expr, "names", ())):
            return True
        for path in getattr(expr, "paths", ()):
            current = entity
            for seg in path:
                if current is None:
                    break
                if access.get(current.table_name, {}).get(seg) == "hidden":
                    return True
                fld = current.fields.get(seg)
                if fld is None:          # a system field: never hidden
                    break
                if fld.type == "reference" and getattr(fld, "to", None):
                    current = self.tenant.model.entities.get(fld.to)
                elif getattr(fld, "child", None) is not None:
                    current = fld.child
                else:                    # e.g. stage.probability: the stage's settings, not a field
                    break
        return False

    def visible_fields(self, entity, user) -> set[str]:
        return {n for n, a in self.field_access(entity, user).items() if a != "hidden"}

    def mask(self, entity, user, record: dict) -> dict:
        """The record without the fields `user` may not see (subtable rows masked too)."""
        access = self.field_access(entity, user)
        hidden = {n for n, a in access.items() if a == "hidden"}
        out = {k: v for k, v in record.items() if k not in hidden} if hidden else dict(record)
        for f in entity.subtables():
            if f.name in out and out[f.name]:
                out[f.name] = [self.mask(f.child, user, r) for r in out[f.name]]
        return out

    def visible_changes(self, entity, user, changes: dict) -> dict:
        """An audit entry's {field: [old, new]} as `user` may see it: only visible and system fields,
        subtable rows masked like records."""
        access = self.field_access(entity, user)
        keep = {n for n, a in access.items() if a != "hidden"} | set(entity.system_fields)
        out = {}
        for key, pair in (changes or {}).items():
            name = key.split(".")[0]
            if name not in keep:
                continue
            sub = entity.fields.get(name)
            if sub is not None and sub.child is not None and isinstance(pair, list) and not self.is_superuser(user):
                pair = [[self.mask(sub.child, user, r) if isinstance(r, dict) else r for r in side]
                        if isinstance(side, list) else side for side in pair]
            out[key] = pair
        return out

    def touches_only_hidden(self, entity, user, changes: dict) -> bool:
        """Did a change write hidden fields and nothing `user` may see? (Then even its time is a secret.)"""
        if not changes or self.is_superuser(user):
            return False
        access = self.field_access(entity, user)
        hidden = any(access.get(key.split(".")[0]) == "hidden" for key in changes)
        return hidden and not self.visible_changes(entity, user, changes)

    def shown_title(self, entity, user, record_id, title: str, locale: str | None = None) -> str:
        """A record's title stored elsewhere (a task, an approval) as `user` may see it: "<entity> #id"
        when the title field is hidden from them."""
        if user is None or not entity.title or entity.title in self.visible_fields(entity, user):
            return title
        return f"{entity.label.get(locale)} #{record_id}"

    # -- export --------------------------------------------------------------------------------

    def export_limit(self, entity, user) -> int | None:
        """The most rows one export may hold (None: no limit)."""
        if self.is_superuser(user):
            return None
        limits = []
        for role in self._user_roles(user):
            g = role.grants.get(entity.name, {}).get("export")
            if g is not None and g.scope != "none":
                if entity.name not in role.export_limits:
                    return None
                limits.append(role.export_limits[entity.name])
        return max(limits) if limits else 0

    def log_export(self, entity, user, filters: dict, row_count: int, channel: str, connection=None) -> None:
        import json

        table = self.tenant.schema.system["exports"]
        row = {"at": self.tenant.now(), "user_id": getattr(user, "id", None),
               "username": getattr(user, "username", None) or "system", "entity": entity.name,
               "filters": json.dumps(filters or {}, ensure_ascii=False, default=str), "row_count": row_count,
               "channel": channel}
        if connection is not None:
            connection.execute(table.insert().values(row))
        else:
            with self.tenant.write() as conn:
                conn.execute(table.insert().values(row))

    # -- review --------------------------------------------------------------------------------

    def matrix(self, role_names: list[str] | None = None) -> list[dict]:
        """Who-can-see-what rows: role × entity → each action's scope, plus non-default field access."""
        rows = []
        for name, role in self.roles.items():
            if role_names and name not in role_names:
                continue
            for entity in self.tenant.model.entities.values():
                if role.all:
                    actions = {a: "all" for a in ACTIONS}
                else:
                    grants = role.grants.get(entity.name, {})
                    actions = {}
                    for a in ACTIONS:
                        if a in FLAG_ACTIONS:
                            actions[a] = "yes" if role.flags.get(entity.name, {}).get(a) else "no"
                        else:
                            g = grants.get(a)
                            actions[a] = "none" if g is None else g.scope + (f" where {g.where_expr.source}"
                                                                             if g.where_expr is not None else "")
                    if entity.name in role.export_limits:
                        actions["export"] += f" (max {role.export_limits[entity.name]})"
                fields = {} if role.all else {f: a for f, a in role.fields.get(entity.name, {}).items()}
                rows.append({"role": name, "entity": entity.name, "actions": actions, "fields": fields})
        return rows
