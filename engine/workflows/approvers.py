"""Who approves a step: manager[:n], role:<r>, user:<u> or department:<d>, with escalation when nobody
able to act is left (disabled users) — never a silent skip."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Resolution:
    """The approvers of a step and, when they are not the configured ones, why (for the audit)."""

    user_ids: list[int]
    notes: list[str] = field(default_factory=list)


class Directory:
    """The organisation as approvals see it: users, departments, their managers. Built per decision."""

    def __init__(self, tenant):
        self.users = {u.id: u for u in tenant.users.list(include_inactive=True)}
        self.by_name = {u.username: u for u in self.users.values()}
        depts = tenant.model.config.get("departments") or {}
        self.parents = {d: (spec or {}).get("parent") for d, spec in depts.items()}
        self.config_managers = {d: list((spec or {}).get("managers") or []) for d, spec in depts.items()}
        self.admin_roles = {name for name, spec in (tenant.model.config.get("roles") or {}).items()
                            if (spec or {}).get("all") is True}

    def name(self, uid) -> str:
        u = self.users.get(uid)
        return u.username if u else f"#{uid}"

    def active(self, ids) -> list[int]:
        return [i for i in ids if i in self.users and self.users[i].active]

    def managers_of(self, dept: str) -> list[int]:
        """Every manager of a department, active or not, in a stable order."""
        ids = [u.id for u in self.users.values() if dept in (u.manages or [])]
        for name in self.config_managers.get(dept, []):
            u = self.by_name.get(name)
            if u is not None and u.id not in ids:
                ids.append(u.id)
        return sorted(ids)

    def chain(self, dept: str | None) -> list[str]:
        out: list[str] = []
        while dept and dept not in out:
            out.append(dept)
            dept = self.parents.get(dept)
        return out

    def manager_levels(self, dept: str | None, exclude: set) -> list[tuple[str, list[int]]]:
        """(department, its managers other than `exclude`) going up the tree, departments without any skipped."""
        levels = []
        for d in self.chain(dept):
            ids = [i for i in self.managers_of(d) if i not in exclude]
            if ids:
                levels.append((d, ids))
        return levels

    def admins(self, exclude: set) -> list[int]:
        return sorted(u.id for u in self.users.values()
                      if u.active and u.id not in exclude and set(u.roles or []) & self.admin_roles)

    def resolve(self, approver: str, submitter_id, allow_self: bool = False) -> Resolution:
        kind, _, arg = approver.partition(":")
        submitter = self.users.get(submitter_id)
        exclude = set() if allow_self or submitter_id is None else {submitter_id}
        notes: list[str] = []
        if kind == "manager":
            wanted = int(arg) if arg.isdigit() else 1
            levels = self.manager_levels(getattr(submitter, "department", None), exclude)
            for n, (dept, ids) in enumerate(levels[wanted - 1:], start=wanted):
                active = self.active(ids)
                if active:
                    return Resolution(active, notes)
                notes.append(f"no active manager of {dept} ({', '.join(self.name(i) for i in ids)} disabled): "
                             f"goes to the next manager up")
            return self._admins(exclude, notes, "no manager above the submitter")
        if kind == "role":
            ids = sorted(u.id for u in self.users.values() if arg in (u.roles or []) and u.id not in exclude)
            active = self.active(ids)
            if active:
                return Resolution(active, notes)
            notes.append(f"nobody active has the role {arg}: goes to the submitter's manager")
            return self._up(getattr(submitter, "department", None), exclude, notes)
        if kind == "user":
            u = self.by_name.get(arg)
            if u is not None and u.active and (u.id not in exclude):
                return Resolution([u.id], notes)
            why = "does not exist" if u is None else ("is disabled" if not u.active else "is the submitter")
            notes.append(f"user {arg} {why}: goes to their manager")
            return self._up(u.department if u is not None else getattr(submitter, "department", None),
                            exclude | ({u.id} if u is not None else set()), notes)
        if kind == "department":
            return self._up(arg, exclude, notes)
        return self._admins(exclude, notes, f"unknown approver {approver}")

    def _up(self, dept: str | None, exclude: set, notes: list[str]) -> Resolution:
        for d, ids in self.manager_levels(dept, exclude):
            active = self.active(ids)
            if active:
                return Resolution(active, notes)
            notes.append(f"no active manager of {d}: goes to the next manager up")
        return self._admins(exclude, notes, "no manager found")

    def _admins(self, exclude: set, notes: list[str], why: str) -> Resolution:
        notes.append(f"{why}: goes to the administrators")
        return Resolution(self.admins(exclude) or self.admins(set()), notes)
