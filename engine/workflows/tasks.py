"""Help requests (R28): "ask for help" on a record makes a task for a user or a role, linked to the
record, in their inbox; the helper may read the record."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ..errors import NotFound, ValidationFailed
from ..i18n import catalogue_text
from ..ids import as_id
from ..permissions import PermissionDenied
from ..records.audit import audit_row

TEXTS = {
    "to": {"zh": "请选择协助人（用户或角色）", "en": "Choose who should help (a user or a role)"},
    "no_user": {"zh": "用户不存在或已停用：{value}", "en": "No active user {value}"},
    "no_role": {"zh": "没有在职人员拥有该角色：{value}", "en": "Nobody active has the role {value}"},
    "note": {"zh": "请说明需要什么帮助", "en": "Say what help you need"},
    "not_yours": {"zh": "这不是分配给您的任务", "en": "This task is not assigned to you"},
}


def text(key: str, locale: str | None, **params) -> str:
    return catalogue_text(TEXTS, key, locale, **params)


class Tasks:
    """Tasks people are asked to do; reached as `tenant.tasks`."""

    def __init__(self, tenant):
        self.tenant = tenant

    @property
    def table(self) -> sa.Table:
        return self.tenant.schema.system["tasks"]

    def ask_for_help(self, entity_name: str, rid, user, to: str, note: str, locale: str | None = None) -> dict:
        """`to` is "user:<username>" or "role:<role>"; the record must be readable by the asker."""
        svc = self.tenant.records
        loc = svc._locale(user, locale)
        entity = svc.entity(entity_name)
        record = svc.get(entity_name, rid, user)
        kind, _, name = (to or "").partition(":")
        if not (note or "").strip():
            raise ValidationFailed({"note": [text("note", loc)]})
        users = [u for u in self.tenant.users.list(include_inactive=False)]
        if kind == "user":
            target = next((u for u in users if u.username == name), None)
            if target is None:
                raise ValidationFailed({"to": [text("no_user", loc, value=name)]})
            helpers, role = [target.id], None
        elif kind == "role":
            helpers, role = [u.id for u in users if name in (u.roles or []) and u.id != getattr(user, "id", None)], name
            if not helpers:
                raise ValidationFailed({"to": [text("no_role", loc, value=name)]})
        else:
            raise ValidationFailed({"to": [text("to", loc)]})
        title = svc.title_of(entity, record)
        now = self.tenant.now()
        with self.tenant.write() as conn:
            tid = conn.execute(self.table.insert().values(
                kind="help", title=title[:300], note=note.strip(), assignee_id=helpers[0] if role is None else None,
                assignee_role=role, entity=entity.name, record_id=record["id"], status="open",
                created_by=getattr(user, "id", None), created_at=now).returning(self.table.c.id)).scalar_one()
            sh = self.tenant.schema.system["shares"]
            have = {r[0] for r in conn.execute(sa.select(sh.c.user_id).where(
                sh.c.entity == entity.name, sh.c.record_id == record["id"], sh.c.user_id.in_(helpers)))}
            rows = [{"entity": entity.name, "record_id": record["id"], "user_id": h, "department": None,
                     "access": "read", "created_by": getattr(user, "id", None), "created_at": now}
                    for h in helpers if h not in have]
            if rows:
                conn.execute(sh.insert(), rows)
            self.tenant.audit.append(conn, [audit_row(
                entity.name, record["id"], "help", {}, user, note=f"{to}: {note.strip()}", at=now)])
            self.tenant.notifications.notify(conn, helpers, "help_requested",
                                             {"by": getattr(user, "name", "") or "", "title": title},
                                             entity=entity.name, record_id=record["id"], task_id=tid)
        return self.get(tid, user)

    def _visible(self, user):
        t = self.table
        conds = [t.c.assignee_id == user.id, t.c.created_by == user.id]
        roles = list(getattr(user, "roles", None) or [])
        if roles:
            conds.append(t.c.assignee_role.in_(roles))
        return sa.or_(*conds)

    def list(self, user, open_only: bool = True, assigned: bool = True, limit: int = 100) -> list[dict]:
        """Tasks for the user (assigned to them or their roles); with assigned=False, also the ones they asked for."""
        t = self.table
        roles = list(getattr(user, "roles", None) or [])
        cond = sa.or_(t.c.assignee_id == user.id, t.c.assignee_role.in_(roles or [""])) if assigned else self._visible(user)
        stmt = sa.select(t).where(cond)
        if open_only:
            stmt = stmt.where(t.c.status == "open")
        with self.tenant.db.connect() as conn:
            rows = conn.execute(stmt.order_by(t.c.id.desc()).limit(limit)).mappings().all()
        return self._json(rows, user)

    def get(self, tid, user=None) -> dict:
        t = self.table
        with self.tenant.db.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == (as_id(tid) or 0))).mappings().first()
        if row is None or (user is not None and not self._may_see(row, user)):
            raise NotFound("no such task")
        return self._json([row], user)[0]

    @staticmethod
    def _may_see(row, user) -> bool:
        return user.id in (row["assignee_id"], row["created_by"]) or (row["assignee_role"] in (user.roles or []))

    def complete(self, tid, user, locale: str | None = None) -> dict:
        loc = locale or getattr(user, "locale", None) or self.tenant.model.tenant.locale
        t = self.table
        with self.tenant.write() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == (as_id(tid) or 0))).mappings().first()
            if row is None or not self._may_see(row, user):
                raise NotFound("no such task")
            if user.id != row["assignee_id"] and row["assignee_role"] not in (user.roles or []):
                raise PermissionDenied(text("not_yours", loc))
            if row["status"] != "done":
                now = self.tenant.now()
                conn.execute(t.update().where(t.c.id == row["id"]).values(status="done", done_by=user.id, done_at=now))
                if row["entity"]:
                    self.tenant.audit.append(conn, [audit_row(
                        row["entity"], row["record_id"], "help_done", {}, user, note=row["note"], at=now)])
                self.tenant.notifications.notify(conn, [row["created_by"]], "help_done",
                                                 {"by": user.name, "title": row["title"]}, entity=row["entity"],
                                                 record_id=row["record_id"], task_id=row["id"])
        return self.get(tid, user)

    def _json(self, rows, user=None) -> list[dict]:
        names = self.tenant.records.user_names({r["assignee_id"] for r in rows} | {r["created_by"] for r in rows}
                                               | {r["done_by"] for r in rows})
        perms, entities = self.tenant.records.permissions, self.tenant.model.entities
        loc = getattr(user, "locale", None)

        def title(r):  # the record's title as it was asked about, unless the reader may not see it
            ent = entities.get(r["entity"]) if r["entity"] else None
            return r["title"] if ent is None else perms.shown_title(ent, user, r["record_id"], r["title"], loc)

        def iso(v):
            return v.isoformat() if isinstance(v, datetime) else v

        return [{"id": r["id"], "kind": r["kind"], "title": title(r), "note": r["note"], "status": r["status"],
                 "assignee": {"id": r["assignee_id"], "name": names.get(r["assignee_id"])} if r["assignee_id"] else None,
                 "assignee_role": r["assignee_role"], "entity": r["entity"], "record_id": r["record_id"],
                 "created_by": {"id": r["created_by"], "name": names.get(r["created_by"])},
                 "created_at": iso(r["created_at"]), "done_by": names.get(r["done_by"]), "done_at": iso(r["done_at"])}
                for r in rows]
