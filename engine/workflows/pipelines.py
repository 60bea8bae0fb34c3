"""Pipelines (R5 R6 R26 R27 R31): entry criteria, stage history, stagnation, the board and checklists."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Mapping

import sqlalchemy as sa

from ..errors import BadRequest, NotFound, ValidationFailed
from ..i18n import catalogue_text, message
from ..metadata.model import Entity, Pipeline, Stage
from ..records.prepare import is_empty

TEXTS = {
    "requires": {"zh": "进入“{stage}”前需填写：{field}", "en": "{field} is needed to enter {stage}"},
    "required_for": {"zh": "进入“{stage}”前必填", "en": "required to enter {stage}"},
    "required_in": {"zh": "“{stage}”阶段必填，不能清空", "en": "required in {stage}"},
    "keep_required": {"zh": "“{stage}”阶段需要{field}，不能清空", "en": "{field} is needed in {stage}; it cannot be cleared"},
    "backward": {"zh": "该流程只能向前推进，不能从“{old}”退回“{new}”", "en": "This pipeline only moves forward: not from {old} back to {new}"},
    "reopen": {"zh": "“{old}”是最终阶段，只有{roles}可以重新打开", "en": "{old} is final; only {roles} may reopen it"},
    "unapproved": {"zh": "“{flow}”尚未批准，不能进入“{stage}”", "en": "{flow} is not approved yet, so the record cannot enter {stage}"},
    "check_failed": {"zh": "无法检查“{stage}”的准入条件：{detail}", "en": "Could not check the criteria of {stage}: {detail}"},
}


def text(key: str, locale: str | None, **params) -> str:
    return catalogue_text(TEXTS, key, locale, **params)


def as_aware(value: datetime | None) -> datetime | None:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


@dataclass
class Card:
    record: dict
    title: str
    display: dict
    days_in_stage: int | None
    stagnant: bool


@dataclass
class Column:
    stage: Stage
    count: int
    amount: Decimal | None          # None: the pipeline has no amount the reader may see
    weighted: Decimal | None
    cards: list[Card] = dc_field(default_factory=list)


@dataclass
class Board:
    pipeline: Pipeline
    columns: list[Column]
    amount_visible: bool = True

    @property
    def total_amount(self) -> Decimal | None:
        if not self.amount_visible:
            return None
        return sum((c.amount for c in self.columns if c.stage.outcome is None), Decimal(0))

    @property
    def total_weighted(self) -> Decimal | None:
        if not self.amount_visible:
            return None
        return sum((c.weighted for c in self.columns if c.stage.outcome is None), Decimal(0))


class Pipelines:
    """Everything a pipeline does beyond the stage field's value; reached as `tenant.pipelines`."""

    def __init__(self, tenant):
        self.tenant = tenant
        self.model = tenant.model

    @property
    def history_table(self) -> sa.Table:
        return self.tenant.schema.system["stage_history"]

    def get(self, name: str) -> Pipeline:
        pipe = self.model.pipelines.get(name)
        if pipe is None:
            raise NotFound(f"unknown pipeline '{name}'")
        return pipe

    # --- criteria ---------------------------------------------------------------------------

    def unmet(self, pipe: Pipeline, record: Mapping, old: Mapping | None, locale: str | None,
              loader=None) -> list[str]:
        """Every criterion the write does not meet: entering a stage (and every ordinary stage it skips
        going forward) needs its `requires` filled and its `checks` true; staying in a stage may not clear
        what it requires; `forward_only` refuses moves back."""
        entity = self.model.entities[pipe.entity]
        new = pipe.stage(record.get(pipe.field))
        before = pipe.stage(old.get(pipe.field)) if old is not None else None
        if new is None:
            return []
        out: list[str] = []
        if old is not None and before is not None and new.name == before.name:
            for name in new.requires:
                if not is_empty(old.get(name)) and is_empty(record.get(name)):
                    out.append(text("keep_required", locale, stage=new.label.get(locale),
                                    field=entity.fields[name].label.get(locale)))
            return out
        if pipe.forward_only and before is not None and before.outcome is None and new.outcome is None \
                and new.position < before.position:
            out.append(text("backward", locale, old=before.label.get(locale), new=new.label.get(locale)))
            return out
        for stage in self.gates(pipe, before, new):
            for name in stage.requires:
                if is_empty(record.get(name)):
                    out.append(text("requires", locale, stage=stage.label.get(locale),
                                    field=entity.fields[name].label.get(locale)))
            for check in stage.checks:
                try:
                    ok = check.check.holds(record, loader=loader, now=self.tenant.now(), tz=self.tenant.timezone)
                except Exception as exc:  # noqa: BLE001 - reported, never a crash
                    out.append(text("check_failed", locale, stage=stage.label.get(locale), detail=exc))
                    continue
                if not ok:
                    out.append(check.message.get(locale))
        return out

    def missing(self, pipe: Pipeline, record: Mapping, old: Mapping | None, locale: str | None) -> dict[str, str]:
        """{field: message} for every empty field a stage the write enters (or stays in) requires, so an
        API client knows which fields to fill (the messages under the stage field say it in prose)."""
        new = pipe.stage(record.get(pipe.field))
        before = pipe.stage(old.get(pipe.field)) if old is not None else None
        if new is None:
            return {}
        out: dict[str, str] = {}
        if old is not None and before is not None and new.name == before.name:
            for name in new.requires:
                if not is_empty(old.get(name)) and is_empty(record.get(name)):
                    out[name] = text("required_in", locale, stage=new.label.get(locale))
            return out
        if pipe.forward_only and before is not None and before.outcome is None and new.outcome is None \
                and new.position < before.position:
            return out
        for stage in self.gates(pipe, before, new):
            for name in stage.requires:
                if is_empty(record.get(name)) and name not in out:
                    out[name] = text("required_for", locale, stage=stage.label.get(locale))
        return out

    @staticmethod
    def gates(pipe: Pipeline, before: Stage | None, new: Stage) -> list[Stage]:
        """The stages whose criteria a move into `new` must meet: a forward move through ordinary stages
        (or a record created in a later stage) passes every gate on the way, and so does winning — a
        deal cannot skip the criteria of the stages it never went through by jumping to won. A lost
        outcome (a deal may be lost at any stage), a reopening or a move back checks only its own."""
        if new.outcome == "won" and (before is None or before.outcome is None):
            start = 0 if before is None else before.position + 1
            return [s for s in pipe.stages[start:] if s.outcome is None] + [new]
        if new.outcome is not None:
            return [new]
        if before is None:
            return [s for s in pipe.stages[:new.position + 1] if s.outcome is None]
        if before.outcome is not None or new.position <= before.position:
            return [new]
        return [s for s in pipe.stages[before.position + 1:new.position + 1] if s.outcome is None]

    def may_reopen(self, pipe: Pipeline, user) -> bool:
        perms = self.tenant.records.permissions
        return perms.is_superuser(user) or bool(set(getattr(user, "roles", None) or []) & set(pipe.reopen_roles))

    # --- history ----------------------------------------------------------------------------

    def record_entries(self, conn: sa.Connection, entity: Entity, records: list[dict], user) -> None:
        """New records enter their first stage."""
        now = self.tenant.now()
        rows = []
        for pipe in self.model.pipelines_of(entity.name):
            for rec in records:
                if rec.get(pipe.field) is not None:
                    rows.append({"entity": entity.name, "record_id": rec["id"], "pipeline": pipe.name,
                                 "stage": rec[pipe.field], "entered_at": now, "entered_by": getattr(user, "id", None),
                                 "left_at": None, "left_by": None})
        if rows:
            conn.execute(self.history_table.insert(), rows)

    def record_move(self, conn: sa.Connection, pipe: Pipeline, record: dict, user) -> None:
        """Close the open stage row of the record and open one for its new stage."""
        h = self.history_table
        now = self.tenant.now()
        uid = getattr(user, "id", None)
        conn.execute(h.update().where(h.c.entity == pipe.entity, h.c.record_id == record["id"],
                                      h.c.pipeline == pipe.name, h.c.left_at.is_(None))
                     .values(left_at=now, left_by=uid))
        if record.get(pipe.field) is not None:
            conn.execute(h.insert().values(entity=pipe.entity, record_id=record["id"], pipeline=pipe.name,
                                           stage=record[pipe.field], entered_at=now, entered_by=uid))

    def close_history(self, conn: sa.Connection, entity: Entity, record: dict, user) -> None:
        """A deleted record leaves its stage (the rows stay: cycle times and conversion keep them)."""
        h = self.history_table
        conn.execute(h.update().where(h.c.entity == entity.name, h.c.record_id == record["id"],
                                      h.c.left_at.is_(None))
                     .values(left_at=self.tenant.now(), left_by=getattr(user, "id", None)))

    def history(self, entity_name: str, rid, user=None, locale: str | None = None) -> list[dict]:
        """Every stage a record entered, oldest first, with who/when and the days spent (R27 R31)."""
        self.tenant.records.get(entity_name, rid, user)  # 404 outside the reader's scope
        visible = self.tenant.records.permissions.visible_fields(self.model.entities[entity_name], user)
        h = self.history_table
        with self.tenant.db.connect() as conn:
            rows = conn.execute(sa.select(h).where(h.c.entity == entity_name, h.c.record_id == int(rid))
                                .order_by(h.c.entered_at, h.c.id)).mappings().all()
        names = self.tenant.records.user_names({r["entered_by"] for r in rows} | {r["left_by"] for r in rows})
        now = self.tenant.now()
        out = []
        for r in rows:
            pipe = self.model.pipelines.get(r["pipeline"])
            if pipe is not None and pipe.field not in visible:
                continue  # a stage field hidden from the reader: its moves are too
            stage = pipe.stage(r["stage"]) if pipe else None
            entered, left = as_aware(r["entered_at"]), as_aware(r["left_at"])
            out.append({"pipeline": r["pipeline"], "stage": r["stage"],
                        "stage_label": stage.label.get(locale) if stage else r["stage"],
                        "entered_at": entered.isoformat(), "entered_by": names.get(r["entered_by"]),
                        "left_at": left.isoformat() if left else None, "left_by": names.get(r["left_by"]),
                        "days": round(((left or now) - entered).total_seconds() / 86400, 1)})
        return out

    # --- stagnation (R27) -------------------------------------------------------------------

    def limits(self, pipe: Pipeline, conn: sa.Connection | None = None) -> dict[str, float]:
        """Days after which a record in each ordinary stage counts as stalled."""
        fixed = {s.name: float(s.stagnation_days or pipe.stagnation_days) for s in pipe.stages
                 if s.outcome is None and (s.stagnation_days or pipe.stagnation_days)}
        if not pipe.stagnation_average:
            return fixed
        averages = self.average_days(pipe, conn)
        return {s.name: fixed.get(s.name) or averages[s.name] for s in pipe.stages
                if s.outcome is None and (s.name in fixed or s.name in averages)}

    def average_days(self, pipe: Pipeline, conn: sa.Connection | None = None) -> dict[str, float]:
        """The average days records spent in each stage before leaving it (closed history rows)."""
        h = self.history_table
        if conn is None:
            with self.tenant.db.connect() as c:
                return self.average_days(pipe, c)
        if conn.dialect.name == "postgresql":
            days = sa.func.extract("epoch", h.c.left_at - h.c.entered_at) / 86400.0
        else:
            days = sa.func.julianday(h.c.left_at) - sa.func.julianday(h.c.entered_at)
        rows = conn.execute(sa.select(h.c.stage, sa.func.avg(days)).where(
            h.c.pipeline == pipe.name, h.c.left_at.is_not(None)).group_by(h.c.stage)).all()
        return {stage: float(avg) for stage, avg in rows if avg is not None}

    def stagnant_clause(self, pipe: Pipeline, table: sa.Table, conn: sa.Connection | None = None):
        """A condition on the entity's table: the record has been in its stage past the limit."""
        h = self.history_table
        now = self.tenant.now()
        limits = self.limits(pipe, conn)
        if not limits:
            return sa.false()
        per_stage = [sa.and_(h.c.stage == stage, h.c.entered_at < now - timedelta(days=days))
                     for stage, days in limits.items()]
        open_rows = sa.select(h.c.record_id).where(h.c.pipeline == pipe.name, h.c.entity == pipe.entity,
                                                   h.c.left_at.is_(None), sa.or_(*per_stage))
        return table.c.id.in_(open_rows)

    def stagnation(self, pipe: Pipeline, ids, conn: sa.Connection | None = None) -> dict[int, dict]:
        """{record id: {stage, since, days, limit, stagnant}} for the records' current stage."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        if conn is None:
            with self.tenant.db.connect() as c:
                return self.stagnation(pipe, ids, c)
        h = self.history_table
        limits = self.limits(pipe, conn)
        now = self.tenant.now()
        out = {}
        for i in range(0, len(ids), 500):
            rows = conn.execute(sa.select(h.c.record_id, h.c.stage, h.c.entered_at).where(
                h.c.pipeline == pipe.name, h.c.entity == pipe.entity, h.c.left_at.is_(None),
                h.c.record_id.in_(ids[i:i + 500]))).all()
            for rid, stage, entered in rows:
                entered = as_aware(entered)
                days = (now - entered).total_seconds() / 86400
                limit = limits.get(stage)
                out[rid] = {"stage": stage, "since": entered.isoformat(), "days": int(days),
                            "limit": None if limit is None else round(limit, 1),
                            "stagnant": limit is not None and days > limit}
        return out

    def stagnant_for_owner(self, user, limit: int = 50) -> list[dict]:
        """The user's own stalled records in every pipeline they may read (their inbox)."""
        out = []
        for pipe in self.model.pipelines.values():
            entity = self.model.entities[pipe.entity]
            if not self.tenant.records.permissions.can(entity, user, "read"):
                continue
            page = self.tenant.records.list(pipe.entity, user, filters={"owner": user.id, "stagnant": "1"},
                                            sort="updated_at", limit=limit)
            info = self.stagnation(pipe, [r["id"] for r in page.items])
            for rec in page.items:
                st = info.get(rec["id"]) or {}
                stage = pipe.stage(rec.get(pipe.field))
                out.append({"pipeline": pipe.name, "entity": pipe.entity, "id": rec["id"],
                            "title": self.tenant.records.title_of(entity, rec),
                            "stage": rec.get(pipe.field), "stage_label": stage.label.get(getattr(user, "locale", None)) if stage else "",
                            "days": st.get("days"), "limit": st.get("limit")})
        return out

    def stalled(self, name: str | None = None) -> list[dict]:
        """Every stalled record (engine view, no user scope): pipeline, id, title, stage, owner, days, limit."""
        out = []
        for pipe in [self.get(name)] if name else list(self.model.pipelines.values()):
            entity = self.model.entities[pipe.entity]
            t = self.tenant.schema.table(entity)
            with self.tenant.db.connect() as conn:
                rows = conn.execute(sa.select(t).where(self.stagnant_clause(pipe, t, conn)).order_by(t.c.id)).mappings().all()
                info = self.stagnation(pipe, [r["id"] for r in rows], conn)
            recs = [self.tenant.records._from_row(entity, r) for r in rows]
            for rec in recs:
                st = info.get(rec["id"]) or {}
                out.append({"pipeline": pipe.name, "entity": pipe.entity, "id": rec["id"],
                            "title": self.tenant.records.title_of(entity, rec), "stage": rec.get(pipe.field),
                            "owner": rec.get("owner"), "since": st.get("since"), "days": st.get("days"),
                            "limit": st.get("limit")})
        return out

    def notify_stalled(self, name: str | None = None) -> int:
        """Tell each stalled record's owner once per stay in a stage (run daily by a scheduler or cron)."""
        n = self.tenant.notifications.table
        sent = 0
        with self.tenant.write() as conn:
            for item in self.stalled(name):
                if item["owner"] is None:
                    continue
                since = datetime.fromisoformat(item["since"])
                already = conn.execute(sa.select(n.c.id).where(
                    n.c.user_id == item["owner"], n.c.kind == "stagnant", n.c.entity == item["entity"],
                    n.c.record_id == item["id"], n.c.created_at >= since).limit(1)).first()
                if already:
                    continue
                pipe = self.get(item["pipeline"])
                stage = pipe.stage(item["stage"])
                self.tenant.notifications.notify(conn, [item["owner"]], "stagnant", {
                    "title": item["title"], "stage": dict(stage.label.texts) if stage else item["stage"],
                    "days": item["days"]}, entity=item["entity"], record_id=item["id"])
                sent += 1
        return sent

    # --- the board (R26) --------------------------------------------------------------------

    def board(self, name: str, user=None, filters: Mapping | None = None, search: str | None = None,
              per_column: int = 50, locale: str | None = None) -> Board:
        """Columns per stage with the count, amount and probability-weighted amount of the records the
        user may read, and the first `per_column` cards of each (stalled ones flagged)."""
        pipe = self.get(name)
        svc = self.tenant.records
        entity = svc.entity(pipe.entity)
        svc._deny(entity, user, "read")
        base = {k: v for k, v in (filters or {}).items() if k != pipe.field}
        t, conds = svc._select(entity, user, base, search, svc.ctx(locale))
        col = t.c[pipe.field]
        # A sum over an amount the reader may not see would give it away (one card in a column: exactly).
        amount_shown = bool(pipe.amount) and pipe.amount in svc.permissions.visible_fields(entity, user)
        amount = t.c[pipe.amount] if amount_shown and pipe.amount in t.c else None
        stmt = sa.select(col, sa.func.count(), sa.func.sum(amount) if amount is not None else sa.literal(0))
        with self.tenant.db.connect() as conn:
            totals = {stage: (n, s) for stage, n, s in conn.execute(stmt.where(*conds).group_by(col)).all()}
        columns = []
        for stage in pipe.stages:
            n, total = totals.get(stage.name, (0, 0))
            if not amount_shown and pipe.amount:
                columns.append(Column(stage, n, None, None))
                continue
            total = Decimal(str(total or 0))
            columns.append(Column(stage, n, total, (total * stage.probability / 100).quantize(Decimal("0.01"))))
        for column in columns:
            if not column.count:
                continue
            page = svc.list(pipe.entity, user, filters={**base, pipe.field: column.stage.name}, search=search,
                            sort="-updated_at", limit=per_column, locale=locale)
            info = self.stagnation(pipe, [r["id"] for r in page.items])
            shown = svc.display_many(entity, page.items, locale, user)
            for rec, disp in zip(page.items, shown):
                st = info.get(rec["id"]) or {}
                column.cards.append(Card(rec, svc.title_of(entity, rec), disp, st.get("days"),
                                         bool(st.get("stagnant"))))
        return Board(pipe, columns, amount_visible=amount_shown or not pipe.amount)

    def move(self, name: str, rid, stage: str, user=None, version: int | None = None,
             locale: str | None = None) -> dict:
        """Move a record to `stage` through the records service (criteria, approvals, audit all apply)."""
        pipe = self.get(name)
        if pipe.stage(stage) is None:
            loc = self.tenant.records._locale(user, locale)
            raise ValidationFailed({pipe.field: [message("not_an_option", loc, value=stage)]})
        return self.tenant.records.update(pipe.entity, rid, {pipe.field: stage}, user, version=version,
                                          locale=locale)

    # --- checklists (R6 R26) ----------------------------------------------------------------

    def checklist(self, name: str, rid, user=None, locale: str | None = None) -> list[dict]:
        """The current stage's key actions and deliverables with who ticked each and when."""
        pipe = self.get(name)
        rec = self.tenant.records.get(pipe.entity, rid, user)
        stage = pipe.stage(rec.get(pipe.field))
        if stage is None:
            return []
        c = self.tenant.schema.system["stage_checklist"]
        with self.tenant.db.connect() as conn:
            done = {(r.kind, r.item): r for r in conn.execute(sa.select(c).where(
                c.c.entity == pipe.entity, c.c.record_id == int(rid), c.c.pipeline == pipe.name,
                c.c.stage == stage.name))}
        names = self.tenant.records.user_names({r.done_by for r in done.values()})
        out = []
        for kind, items in (("action", stage.actions), ("deliverable", stage.deliverables)):
            for i, label in enumerate(items):
                row = done.get((kind, i))
                out.append({"kind": kind, "item": i, "label": label.get(locale), "stage": stage.name,
                            "done": row is not None, "done_by": names.get(row.done_by) if row else None,
                            "done_at": as_aware(row.done_at).isoformat() if row else None})
        return out

    def tick(self, name: str, rid, kind: str, item: int, done: bool, user=None, locale: str | None = None) -> list[dict]:
        """Tick (or untick) an item of the record's current stage; needs update rights on the record."""
        pipe = self.get(name)
        svc = self.tenant.records
        entity = svc.entity(pipe.entity)
        svc._deny(entity, user, "update")
        loc = svc._locale(user, locale)
        c = self.tenant.schema.system["stage_checklist"]
        with self.tenant.write() as conn:
            rec = svc._fetch_for(conn, entity, svc_id(rid), user, "update", loc)
            stage = pipe.stage(rec.get(pipe.field))
            items = (stage.actions if kind == "action" else stage.deliverables if kind == "deliverable" else None) \
                if stage else None
            if items is None or not isinstance(item, int) or not 0 <= item < len(items):
                raise BadRequest(f"no checklist item {kind} {item} in the record's current stage")
            key = dict(entity=pipe.entity, record_id=rec["id"], pipeline=pipe.name, stage=stage.name, kind=kind,
                       item=item)
            conn.execute(c.delete().where(*[c.c[k] == v for k, v in key.items()]))
            if done:
                conn.execute(c.insert().values(**key, done_by=getattr(user, "id", None), done_at=self.tenant.now()))
            from ..records.audit import audit_row
            label = items[item].get(loc)
            self.tenant.audit.append(conn, [audit_row(
                pipe.entity, rec["id"], "checklist", {f"{stage.name}:{label}": [not done, done]}, user,
                at=self.tenant.now())])
        return self.checklist(name, rid, user, locale)


def start_history(tenant, conn: sa.Connection, schema) -> int:
    """Records that are in a stage but have no open history row (they predate the pipeline, or the
    stage field was added by this migration) enter it as of their last change, so stagnation and
    cycle times count them. Idempotent: run by every `formwork migrate`."""
    h = schema.system["stage_history"]
    added = 0
    for pipe in tenant.model.pipelines.values():
        t = schema.tables.get(pipe.entity)
        if t is None or pipe.field not in t.c:
            continue
        has_open = sa.select(h.c.record_id).where(h.c.pipeline == pipe.name, h.c.entity == pipe.entity,
                                                 h.c.left_at.is_(None))
        rows = conn.execute(sa.select(t.c.id, t.c[pipe.field], t.c.updated_at, t.c.updated_by).where(
            t.c[pipe.field].is_not(None), t.c.id.not_in(has_open))).all()
        if rows:
            conn.execute(h.insert(), [{"entity": pipe.entity, "record_id": rid, "pipeline": pipe.name,
                                       "stage": stage, "entered_at": at, "entered_by": by, "left_at": None,
                                       "left_by": None} for rid, stage, at, by in rows])
            added += len(rows)
    return added


def svc_id(rid) -> int:
    try:
        return int(rid)
    except (TypeError, ValueError):
        raise NotFound("not found") from None
