"""In-app notifications for the people who must act; e-mail and other channels through the
`formwork_notifications_send` hook."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

import sqlalchemy as sa

from ..i18n import catalogue_text, language
from ..ids import as_id

# kind → text per language; {params} come from the row's JSON params.
TEXTS = {
    "approval_waiting": {"zh": "待您审批：{flow}（{title}）", "en": "Waiting for your approval: {flow} ({title})"},
    "approval_approved": {"zh": "已批准：{flow}（{title}）", "en": "Approved: {flow} ({title})"},
    "approval_rejected": {"zh": "已驳回：{flow}（{title}）{comment}", "en": "Rejected: {flow} ({title}) {comment}"},
    "approval_withdrawn": {"zh": "已撤回：{flow}（{title}）", "en": "Withdrawn: {flow} ({title})"},
    "help_requested": {"zh": "{by} 请求协助：{title}", "en": "{by} asks for your help: {title}"},
    "help_done": {"zh": "{by} 已完成协助：{title}", "en": "{by} has helped: {title}"},
    "stagnant": {"zh": "商机停滞：{title} 已在“{stage}”停留 {days} 天", "en": "Stalled: {title} has been in {stage} for {days} days"},
}


def render(kind: str, params: dict, locale: str | None) -> str:
    lang = language(locale)
    localized = {k: (v.get(lang) or v.get("en") or next(iter(v.values()), "")) if isinstance(v, dict) else v
                 for k, v in params.items()}
    return catalogue_text(TEXTS, kind, locale, **localized).strip()


class Notifications:
    """Writes notifications inside the caller's transaction and reads a user's list."""

    def __init__(self, tenant):
        self.tenant = tenant

    @property
    def table(self) -> sa.Table:
        return self.tenant.schema.system["notifications"]

    def notify(self, conn: sa.Connection, user_ids: Iterable[int], kind: str, params: dict,
               entity: str | None = None, record_id: int | None = None, approval_id: int | None = None,
               task_id: int | None = None) -> list[dict]:
        """One notification per user (each user once); the send hook runs in the same transaction, so a
        channel plugin should queue rather than send."""
        now = self.tenant.now()
        uids = list(dict.fromkeys(u for u in user_ids if u is not None))
        recipients = self._recipients(conn, uids) if entity and "title" in params else {}
        rows, sent = [], []
        for uid in uids:
            mine = self.for_reader(recipients.get(uid), params, entity, record_id)
            rows.append({"user_id": uid, "kind": kind, "params": json.dumps(mine, ensure_ascii=False, default=str),
                         "entity": entity, "record_id": record_id, "approval_id": approval_id,
                         "task_id": task_id, "created_at": now, "read_at": None})
            sent.append(mine)
        if rows:
            conn.execute(self.table.insert(), rows)
            self.tenant.pm.hook.formwork_notifications_send(
                tenant=self.tenant, notifications=[{**r, "params": p} for r, p in zip(rows, sent)], connection=conn)
        return rows

    def _recipients(self, conn: sa.Connection, uids: list[int]) -> dict:
        users = self.tenant.users
        t = users.users_t
        return {r.id: users._row_to_user(r) for r in conn.execute(sa.select(t).where(t.c.id.in_(uids or [0])))}

    def for_reader(self, user, params: dict, entity: str | None, record_id: int | None) -> dict:
        """The params as `user` may read them: the title of a record whose title field is hidden from
        them becomes "<entity> #id" (each recipient gets their own text, e-mail channels included)."""
        ent = self.tenant.model.entities.get(entity) if entity else None
        if user is None or ent is None or not ent.title or "title" not in params:
            return params
        perms = self.tenant.records.permissions
        if ent.title in perms.visible_fields(ent, user):
            return params
        return {**params, "title": {lang: f"{text} #{record_id}" for lang, text in ent.label.texts}}

    def list(self, user, unread_only: bool = False, limit: int = 50, locale: str | None = None) -> list[dict]:
        t = self.table
        stmt = sa.select(t).where(t.c.user_id == user.id)
        if unread_only:
            stmt = stmt.where(t.c.read_at.is_(None))
        stmt = stmt.order_by(t.c.id.desc()).limit(limit)
        loc = locale or getattr(user, "locale", None) or self.tenant.model.tenant.locale
        with self.tenant.db.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [self._json(r, loc, user) for r in rows]

    def unread_count(self, user) -> int:
        t = self.table
        with self.tenant.db.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t).where(
                t.c.user_id == user.id, t.c.read_at.is_(None))).scalar_one()

    def mark_read(self, user, ids: Iterable[int] | None = None) -> int:
        """Mark the user's notifications read (all of them when `ids` is None)."""
        t = self.table
        stmt = t.update().where(t.c.user_id == user.id, t.c.read_at.is_(None))
        if ids is not None:
            stmt = stmt.where(t.c.id.in_([i for i in map(as_id, ids) if i is not None]))
        with self.tenant.write() as conn:
            return conn.execute(stmt.values(read_at=self.tenant.now())).rowcount

    def _json(self, row, locale: str, user) -> dict:
        # Checked again on reading: the reader's roles may have changed since it was sent.
        params = self.for_reader(user, json.loads(row["params"] or "{}"), row["entity"], row["record_id"])
        at = row["created_at"]
        return {"id": row["id"], "kind": row["kind"], "text": render(row["kind"], params, locale),
                "entity": row["entity"], "record_id": row["record_id"], "approval_id": row["approval_id"],
                "task_id": row["task_id"], "created_at": at.isoformat() if isinstance(at, datetime) else at,
                "read": row["read_at"] is not None}
