"""The approval engine (R4): instances and steps stored and decided here, never by a record field.

A write that makes a flow's `when` true (or changes a locked field of a record whose values were
approved) saves the record and starts an approval; while it is pending the locked fields are frozen.
Approvers decide one step at a time; a reject returns it to the submitter, who may change the record
and resubmit; the submitter may withdraw. The flow's `status_field`, if any, is written only here.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from ..errors import Conflict, Locked, NotFound, ValidationFailed
from ..i18n import catalogue_text, language
from ..ids import as_id
from ..metadata.model import ApprovalFlow, Entity
from ..permissions import PermissionDenied
from ..records.audit import audit_row
from .approvers import Directory
from .pipelines import as_aware

OPEN = "pending"
STATUS_TEXT = {
    "pending": {"zh": "审批中", "en": "Pending"}, "approved": {"zh": "已批准", "en": "Approved"},
    "rejected": {"zh": "已驳回", "en": "Rejected"}, "withdrawn": {"zh": "已撤回", "en": "Withdrawn"},
    "waiting": {"zh": "未开始", "en": "Waiting"}, "active": {"zh": "审批中", "en": "In progress"},
    "skipped": {"zh": "已跳过", "en": "Skipped"}, "cancelled": {"zh": "已取消", "en": "Cancelled"},
}
TEXTS = {
    "locked": {"zh": "“{flow}”审批中，{fields}已锁定，不能修改", "en": "{fields}: locked while {flow} is pending"},
    "final": {"zh": "“{stage}”是最终阶段，{fields}决定审批，不能再修改（需先重新打开）",
              "en": "{fields}: the record is in the final stage {stage}; what its approvals depend on cannot "
                    "change unless it is reopened first"},
    "locked_delete": {"zh": "“{flow}”审批中，不能删除该记录", "en": "The record cannot be deleted while {flow} is pending"},
    "status_field": {"zh": "由“{flow}”审批流程设置，不能直接修改", "en": "Set by the {flow} approval flow; it cannot be changed directly"},
    "decided": {"zh": "该审批已处理（{status}），无需重复操作", "en": "This approval was already decided ({status})"},
    "not_approver": {"zh": "您不是当前步骤的审批人", "en": "You are not an approver of the current step"},
    "self": {"zh": "不能审批自己提交的申请", "en": "You cannot approve your own request"},
    "already": {"zh": "您已审批过此步骤", "en": "You have already decided this step"},
    "not_submitter": {"zh": "只有提交人可以{action}", "en": "Only the submitter may {action}"},
    "not_open": {"zh": "只有被驳回或已撤回的审批可以重新提交", "en": "Only a rejected or withdrawn approval can be resubmitted"},
    "newer": {"zh": "该记录已有更新的审批", "en": "The record has a newer approval"},
    "not_needed": {"zh": "记录已不满足审批条件，无需重新提交", "en": "The record no longer needs this approval"},
    "comment_required": {"zh": "驳回时请填写意见", "en": "Give a reason when rejecting"},
}
EVENT_TEXT = {
    "submitted": {"zh": "提交审批", "en": "submitted"}, "step_approved": {"zh": "通过", "en": "approved step"},
    "approved": {"zh": "审批通过", "en": "approved"}, "rejected": {"zh": "驳回", "en": "rejected"},
    "withdrawn": {"zh": "撤回", "en": "withdrawn"}, "resubmitted": {"zh": "重新提交", "en": "resubmitted"},
    "skipped": {"zh": "跳过", "en": "skipped"}, "escalated": {"zh": "转交", "en": "escalated"},
}


def text(key: str, locale: str | None, **params) -> str:
    return catalogue_text(TEXTS, key, locale, **params)


def label(table: dict, key: str, locale: str | None) -> str:
    return catalogue_text(table, key, locale)


class Approvals:
    """Approval flows of a tenant; reached as `tenant.approvals`."""

    def __init__(self, tenant):
        self.tenant = tenant
        self.model = tenant.model

    def _t(self, name: str) -> sa.Table:
        return self.tenant.schema.system[name]

    def flow(self, name: str) -> ApprovalFlow:
        flow = self.model.approvals.get(name)
        if flow is None:
            raise NotFound(f"unknown approval flow '{name}'")
        return flow

    def _loc(self, user, locale=None) -> str:
        return locale or getattr(user, "locale", None) or self.model.tenant.locale

    def _holds(self, flow: ApprovalFlow, record: dict, conn) -> bool:
        if flow.when is None:
            return False
        loader = self.tenant.records._loader(conn)
        return flow.when.matches(record, loader=loader, now=self.tenant.now(), tz=self.tenant.timezone)

    def _snapshot(self, flow: ApprovalFlow, record: dict) -> dict:
        entity = self.model.entities[flow.entity]
        types = self.tenant.field_types
        return {f: types.for_field(entity.fields[f]).to_json(entity.fields[f], record.get(f)) for f in flow.lock}

    # --- what the records service asks (inside its write transaction) -----------------------

    def latest(self, conn, flow: ApprovalFlow, rid: int):
        a = self._t("approvals")
        return conn.execute(sa.select(a).where(a.c.flow == flow.name, a.c.entity == flow.entity,
                                               a.c.record_id == rid).order_by(a.c.id.desc()).limit(1)).mappings().first()

    def pending(self, conn, entity_name: str, rid: int) -> list:
        a = self._t("approvals")
        return conn.execute(sa.select(a).where(a.c.entity == entity_name, a.c.record_id == rid,
                                               a.c.status == OPEN)).mappings().all()

    def check_locks(self, conn, entity: Entity, record: dict, old: dict, loc: str) -> None:
        """Refuse (423) a change to a field that a pending approval of the record has frozen."""
        for row in self.pending(conn, entity.name, old["id"]):
            flow = self.model.approvals.get(row["flow"])
            if flow is None:
                continue
            changed = [f for f in flow.lock if record.get(f) != old.get(f)]
            if changed:
                names = "、".join(entity.fields[f].label.get(loc) for f in changed) if language(loc) == "zh" \
                    else ", ".join(entity.fields[f].label.get(loc) for f in changed)
                raise Locked(text("locked", loc, flow=flow.label.get(loc), fields=names), changed, row["id"])

    def when_fields(self, entity: Entity) -> list[str]:
        """The fields some approval flow's `when` reads, directly or through formulas, in field order."""
        wanted: set[str] = set()
        todo = [n for flow in self.model.approvals_of(entity.name) if flow.when is not None
                for n in flow.when.names]
        while todo:
            name = todo.pop()
            if name in wanted or name not in entity.fields:
                continue
            wanted.add(name)
            expr = getattr(entity.fields[name], "expr", None)
            todo.extend(getattr(expr, "names", None) or ())
        return [n for n in entity.fields if n in wanted]

    def check_final(self, entity: Entity, record: dict, old: dict, loc: str) -> None:
        """Refuse (423) a change to what an approval's `when` depends on while the record stays in a
        won/lost stage: a won deal whose discount rose after winning would otherwise stay won with
        the approval withdrawn. Reopening (a reopen_roles user moving it out) comes first."""
        for pipe in self.model.pipelines_of(entity.name):
            before = pipe.stage(old.get(pipe.field))
            if before is None or before.outcome is None or record.get(pipe.field) != before.name:
                continue
            types = self.tenant.field_types
            changed = [f for f in self.when_fields(entity) if record.get(f) != old.get(f)
                       and not types.for_field(entity.fields[f]).computed]
            if changed:
                sep = "、" if language(loc) == "zh" else ", "
                names = sep.join(entity.fields[f].label.get(loc) for f in changed)
                raise Locked(text("final", loc, stage=before.label.get(loc), fields=names), changed, None)

    def check_delete(self, conn, entity: Entity, record: dict, loc: str) -> None:
        for row in self.pending(conn, entity.name, record["id"]):
            flow = self.model.approvals.get(row["flow"])
            raise Locked(text("locked_delete", loc, flow=flow.label.get(loc) if flow else row["flow"]),
                         [], row["id"])

    def status_field_errors(self, entity: Entity, record: dict, old: dict | None, loc: str) -> dict:
        """Nobody writes a flow's status field but the flow: not a form, the API, an import or a bulk edit."""
        errors = {}
        for flow in self.model.approvals_of(entity.name):
            f = flow.status_field
            if f and record.get(f) != (old.get(f) if old is not None else None):
                errors[f] = [text("status_field", loc, flow=flow.label.get(loc))]
        return errors

    def unsettled(self, conn, entity: Entity, record: dict) -> list[ApprovalFlow]:
        """Flows whose condition holds for the record but whose current locked values are not approved."""
        out = []
        for flow in self.model.approvals_of(entity.name):
            if not self._holds(flow, record, conn):
                continue
            latest = self.latest(conn, flow, record["id"]) if record.get("id") is not None else None
            if latest is None or latest["status"] != "approved" or \
                    json.loads(latest["snapshot"]) != self._snapshot(flow, record):
                out.append(flow)
        return out

    def on_write(self, conn, entity: Entity, record: dict, old: dict | None, user) -> None:
        """Start the approvals a create or update calls for (the write is already stored)."""
        for flow in self.model.approvals_of(entity.name):
            if not self._holds(flow, record, conn):
                continue
            latest = self.latest(conn, flow, record["id"])
            if latest is not None and latest["status"] == OPEN:
                continue
            if old is not None:
                changed = any(record.get(f) != old.get(f) for f in flow.lock)
                if self._holds(flow, old, conn) and not changed:
                    continue
                if latest is not None and latest["status"] == "approved" and \
                        json.loads(latest["snapshot"]) == self._snapshot(flow, record):
                    continue
            self.start(conn, flow, record, user)

    # --- the state machine ------------------------------------------------------------------

    def start(self, conn, flow: ApprovalFlow, record: dict, user, event: str = "submitted",
              comment: str = "") -> int:
        a, s = self._t("approvals"), self._t("approval_steps")
        now = self.tenant.now()
        entity = self.model.entities[flow.entity]
        aid = conn.execute(a.insert().values(
            flow=flow.name, entity=flow.entity, record_id=record["id"], status=OPEN, step=None,
            # the engine itself (imports by a script, demo data) submits on behalf of the record's owner
            submitted_by=getattr(user, "id", None) or record.get("owner"), submitted_at=now,
            snapshot=json.dumps(self._snapshot(flow, record), ensure_ascii=False, default=str),
            title=self.tenant.records.title_of(entity, record)[:300], version=1).returning(a.c.id)).scalar_one()
        conn.execute(s.insert(), [{"approval_id": aid, "position": st.position, "approver": st.approver,
                                   "mode": st.mode, "approvers": "[]", "status": "waiting"} for st in flow.steps])
        self._set_status(conn, flow, record, OPEN, user, bump=False)
        self._audit(conn, flow, record["id"], user, event, comment=comment)
        self._advance(conn, flow, aid, record, 0, user, Directory(self.tenant))
        self._changed(conn, flow, aid, event, user)
        return aid

    def _advance(self, conn, flow: ApprovalFlow, aid: int, record: dict, position: int, user, directory) -> None:
        """Activate the next step that applies (resolving its approvers), or finish the approval."""
        a, s = self._t("approvals"), self._t("approval_steps")
        now = self.tenant.now()
        inst = conn.execute(sa.select(a).where(a.c.id == aid)).mappings().one()
        loader = self.tenant.records._loader(conn)
        for step in flow.steps[position:]:
            where = (s.c.approval_id == aid, s.c.position == step.position)
            if step.when is not None and not step.when.matches(record, loader=loader, now=now, tz=self.tenant.timezone):
                note = f"condition not met: {step.when.source}"
                conn.execute(s.update().where(*where).values(status="skipped", note=note, decided_at=now))
                self._audit(conn, flow, record["id"], None, "skipped", step=step.position, comment=note)
                continue
            res = directory.resolve(step.approver, inst["submitted_by"], step.allow_self)
            note = "; ".join(res.notes) or None
            conn.execute(s.update().where(*where).values(status="active", approvers=json.dumps(res.user_ids),
                                                         note=note, started_at=now))
            conn.execute(a.update().where(a.c.id == aid).values(step=step.position))
            if note:
                self._audit(conn, flow, record["id"], None, "escalated", step=step.position, comment=note)
            self._grant_read(conn, flow, record["id"], res.user_ids)
            self.tenant.notifications.notify(conn, res.user_ids, "approval_waiting",
                                             {"flow": dict(flow.label.texts), "title": inst["title"]},
                                             entity=flow.entity, record_id=record["id"], approval_id=aid)
            return
        conn.execute(a.update().where(a.c.id == aid).values(status="approved", step=None, decided_at=now))
        self._set_status(conn, flow, record, "approved", user)
        self._audit(conn, flow, record["id"], user, "approved")
        self.tenant.notifications.notify(conn, [inst["submitted_by"]], "approval_approved",
                                         {"flow": dict(flow.label.texts), "title": inst["title"]},
                                         entity=flow.entity, record_id=record["id"], approval_id=aid)
        self._changed(conn, flow, aid, "approved", user)

    def _grant_read(self, conn, flow: ApprovalFlow, rid: int, user_ids: list[int]) -> None:
        """Approvers may read the record they decide on, whatever their role's scope."""
        sh = self._t("shares")
        have = {r[0] for r in conn.execute(sa.select(sh.c.user_id).where(
            sh.c.entity == flow.entity, sh.c.record_id == rid, sh.c.user_id.in_(user_ids)))}
        rows = [{"entity": flow.entity, "record_id": rid, "user_id": uid, "department": None, "access": "read",
                 "created_by": None, "created_at": self.tenant.now()} for uid in user_ids if uid not in have]
        if rows:
            conn.execute(sh.insert(), rows)

    def _set_status(self, conn, flow: ApprovalFlow, record: dict, value: str, user, bump: bool = True) -> None:
        """Write the flow's status field. Inside the write that started the approval it is part of that
        write (same version); a later decision is a change of its own (new version, audited)."""
        f = flow.status_field
        if not f:
            return
        entity = self.model.entities[flow.entity]
        t = self.tenant.schema.table(entity)
        values: dict[str, Any] = {f: value}
        if bump:
            values.update(version=t.c.version + 1, updated_at=self.tenant.now())
        old = conn.execute(sa.select(t.c[f]).where(t.c.id == record["id"])).scalar()
        conn.execute(t.update().where(t.c.id == record["id"]).values(values))
        record[f] = value
        if bump and "version" in record:
            record["version"] = conn.execute(sa.select(t.c.version).where(t.c.id == record["id"])).scalar()
        if old != value:
            self.tenant.audit.append(conn, [audit_row(flow.entity, record["id"], "approval", {f: [old, value]},
                                                           user, at=self.tenant.now())])

    def _audit(self, conn, flow: ApprovalFlow, rid: int, user, event: str, step: int | None = None,
               comment: str = "") -> None:
        """Every step of every approval is on the record's timeline (R43)."""
        step_label = ""
        if step is not None:
            st = flow.steps[step]
            step_label = f" #{step + 1} " + (st.label.get() if st.label else st.approver)
        note = f"{flow.label.get()}{step_label}: {label(EVENT_TEXT, event, None)}" + (f" — {comment}" if comment else "")
        self.tenant.audit.append(conn, [audit_row(flow.entity, rid, "approval", {}, user, note=note,
                                                       at=self.tenant.now())])

    def _changed(self, conn, flow, aid: int, event: str, user) -> None:
        row = dict(conn.execute(sa.select(self._t("approvals")).where(self._t("approvals").c.id == aid)).mappings().one())
        self.tenant.pm.hook.formwork_approvals_changed(tenant=self.tenant, flow=flow, approval=row, event=event,
                                                       user=user, connection=conn)

    def reroute_from(self, departed) -> int:
        """Active steps left without an active approver by a disabled user go to the next manager up
        from that user (then the administrators), and the record's timeline says so."""
        a, s = self._t("approvals"), self._t("approval_steps")
        moved = 0
        with self.tenant.write() as conn:
            directory = Directory(self.tenant)
            rows = conn.execute(sa.select(s, a.c.flow, a.c.record_id, a.c.submitted_by, a.c.title).join(
                a, a.c.id == s.c.approval_id).where(a.c.status == OPEN, s.c.status == "active")).mappings().all()
            for row in rows:
                approvers = json.loads(row["approvers"])
                if departed.id not in approvers or directory.active(approvers):
                    continue
                flow = self.model.approvals.get(row["flow"])
                if flow is None:
                    continue
                exclude = set() if flow.steps[row["position"]].allow_self else {row["submitted_by"]}
                res = directory._up(departed.department, exclude | {departed.id}, [
                    f"{departed.username} was disabled: goes to the next manager up"])
                note = "; ".join(filter(None, [row["note"], *res.notes]))
                conn.execute(s.update().where(s.c.id == row["id"]).values(approvers=json.dumps(res.user_ids), note=note))
                self._audit(conn, flow, row["record_id"], None, "escalated", step=row["position"],
                            comment="; ".join(res.notes))
                self._grant_read(conn, flow, row["record_id"], res.user_ids)
                self.tenant.notifications.notify(conn, res.user_ids, "approval_waiting",
                                                 {"flow": dict(flow.label.texts), "title": row["title"]},
                                                 entity=flow.entity, record_id=row["record_id"],
                                                 approval_id=row["approval_id"])
                moved += 1
        return moved

    # --- decisions --------------------------------------------------------------------------

    def _open(self, conn, aid, loc: str):
        a = self._t("approvals")
        aid = as_id(aid)
        if aid is None:
            raise NotFound("no such approval")
        stmt = sa.select(a).where(a.c.id == aid)
        if conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        inst = conn.execute(stmt).mappings().first()
        if inst is None or inst["flow"] not in self.model.approvals:
            raise NotFound("no such approval")
        return inst, self.model.approvals[inst["flow"]]

    def _record(self, conn, flow: ApprovalFlow, rid: int) -> dict:
        rec = self.tenant.records._fetch(conn, self.model.entities[flow.entity], rid)
        if rec is None:
            raise NotFound("the record of this approval no longer exists")
        return rec

    def _bump(self, conn, inst) -> None:
        a = self._t("approvals")
        res = conn.execute(a.update().where(a.c.id == inst["id"], a.c.version == inst["version"])
                           .values(version=inst["version"] + 1))
        if res.rowcount != 1:
            raise Conflict(text("decided", None, status="?"))

    def _active_step(self, conn, inst) -> dict:
        s = self._t("approval_steps")
        return dict(conn.execute(sa.select(s).where(s.c.approval_id == inst["id"],
                                                    s.c.position == inst["step"])).mappings().one())

    def _decide_checks(self, conn, inst, flow, user, loc):
        """The active step, if `user` may decide it now; a repeated click is a conflict, not a second vote."""
        if inst["status"] != OPEN:
            raise Conflict(text("decided", loc, status=label(STATUS_TEXT, inst["status"], loc)))
        step = self._active_step(conn, inst)
        uid = getattr(user, "id", None)
        d = self._t("approval_decisions")
        mine = {r[0] for r in conn.execute(sa.select(d.c.position).where(d.c.approval_id == inst["id"],
                                                                         d.c.user_id == uid))}
        if step["position"] in mine:
            raise Conflict(text("already", loc))
        if uid is not None and uid == inst["submitted_by"] and not flow.steps[step["position"]].allow_self:
            raise PermissionDenied(text("self", loc))
        if uid not in json.loads(step["approvers"]):
            if mine:
                raise Conflict(text("already", loc))
            raise PermissionDenied(text("not_approver", loc))
        return step

    def _record_decision(self, conn, inst, step, user, decision: str, comment: str, loc: str) -> None:
        d = self._t("approval_decisions")
        try:
            conn.execute(d.insert().values(approval_id=inst["id"], position=step["position"], user_id=user.id,
                                           decision=decision, comment=comment or "", at=self.tenant.now()))
        except sa.exc.IntegrityError:
            raise Conflict(text("already", loc)) from None

    def approve(self, aid, user, comment: str = "", locale: str | None = None) -> dict:
        loc = self._loc(user, locale)
        with self.tenant.write() as conn:
            inst, flow = self._open(conn, aid, loc)
            step = self._decide_checks(conn, inst, flow, user, loc)
            self._record_decision(conn, inst, step, user, "approve", comment, loc)
            self._bump(conn, inst)
            record = self._record(conn, flow, inst["record_id"])
            self._audit(conn, flow, record["id"], user, "step_approved", step=step["position"], comment=comment)
            s, d = self._t("approval_steps"), self._t("approval_decisions")
            approvers = set(json.loads(step["approvers"]))
            agreed = {r[0] for r in conn.execute(sa.select(d.c.user_id).where(
                d.c.approval_id == inst["id"], d.c.position == step["position"], d.c.decision == "approve"))}
            if step["mode"] == "any" or approvers <= agreed:
                conn.execute(s.update().where(s.c.id == step["id"]).values(status="approved",
                                                                          decided_at=self.tenant.now()))
                self._advance(conn, flow, inst["id"], record, step["position"] + 1, user, Directory(self.tenant))
            self._changed(conn, flow, inst["id"], "step_approved", user)
        return self.get(inst["id"], user, loc)

    def reject(self, aid, user, comment: str = "", locale: str | None = None) -> dict:
        loc = self._loc(user, locale)
        if not (comment or "").strip():
            raise ValidationFailed({"comment": [text("comment_required", loc)]})
        with self.tenant.write() as conn:
            inst, flow = self._open(conn, aid, loc)
            step = self._decide_checks(conn, inst, flow, user, loc)
            self._record_decision(conn, inst, step, user, "reject", comment, loc)
            self._bump(conn, inst)
            self._finish(conn, inst, flow, user, "rejected", comment, step_status="rejected")
        return self.get(inst["id"], user, loc)

    def withdraw(self, aid, user, comment: str = "", locale: str | None = None) -> dict:
        loc = self._loc(user, locale)
        with self.tenant.write() as conn:
            inst, flow = self._open(conn, aid, loc)
            if inst["status"] != OPEN:
                raise Conflict(text("decided", loc, status=label(STATUS_TEXT, inst["status"], loc)))
            if getattr(user, "id", None) != inst["submitted_by"]:
                raise PermissionDenied(text("not_submitter", loc, action=label(EVENT_TEXT, "withdrawn", loc)))
            self._bump(conn, inst)
            self._finish(conn, inst, flow, user, "withdrawn", comment, step_status="cancelled")
        return self.get(inst["id"], user, loc)

    def _finish(self, conn, inst, flow, user, status: str, comment: str, step_status: str) -> None:
        a, s = self._t("approvals"), self._t("approval_steps")
        now = self.tenant.now()
        step = self._active_step(conn, inst)
        conn.execute(s.update().where(s.c.id == step["id"]).values(status=step_status, decided_at=now))
        conn.execute(s.update().where(s.c.approval_id == inst["id"], s.c.status == "waiting").values(status="cancelled"))
        conn.execute(a.update().where(a.c.id == inst["id"]).values(status=status, step=None, decided_at=now))
        record = self._record(conn, flow, inst["record_id"])
        self._set_status(conn, flow, record, status, user)
        self._audit(conn, flow, record["id"], user, status, step=step["position"], comment=comment)
        notify = [inst["submitted_by"]] if status == "rejected" else json.loads(step["approvers"])
        self.tenant.notifications.notify(conn, notify, f"approval_{status}",
                                         {"flow": dict(flow.label.texts), "title": inst["title"], "comment": comment},
                                         entity=flow.entity, record_id=record["id"], approval_id=inst["id"])
        self._changed(conn, flow, inst["id"], status, user)

    def resubmit(self, aid, user, comment: str = "", locale: str | None = None) -> dict:
        """Start the flow again for a rejected or withdrawn approval (the record as it is now)."""
        loc = self._loc(user, locale)
        with self.tenant.write() as conn:
            inst, flow = self._open(conn, aid, loc)
            if inst["status"] not in ("rejected", "withdrawn"):
                raise Conflict(text("not_open", loc))
            entity = self.model.entities[flow.entity]
            record = self.tenant.records._fetch_for(conn, entity, inst["record_id"], user, "update", loc)
            if getattr(user, "id", None) not in (inst["submitted_by"], record.get("owner")):
                raise PermissionDenied(text("not_submitter", loc, action=label(EVENT_TEXT, "resubmitted", loc)))
            latest = self.latest(conn, flow, record["id"])
            if latest["id"] != inst["id"]:
                raise Conflict(text("newer", loc))
            if not self._holds(flow, record, conn):
                raise ValidationFailed({"_record": [text("not_needed", loc)]})
            self._bump(conn, inst)
            new_id = self.start(conn, flow, record, user, event="resubmitted", comment=comment)
            t = self.tenant.schema.table(entity)
            conn.execute(t.update().where(t.c.id == record["id"]).values(version=t.c.version + 1,
                                                                         updated_at=self.tenant.now()))
        return self.get(new_id, user, loc)

    # --- reading ----------------------------------------------------------------------------

    def get(self, aid, user=None, locale: str | None = None) -> dict:
        loc = self._loc(user, locale)
        with self.tenant.db.connect() as conn:
            inst, flow = self._open(conn, aid, loc)
            if not self._may_see(conn, inst, user):
                raise NotFound("no such approval")
            return self._json(conn, [inst], user, loc)[0]

    def _may_see(self, conn, inst, user) -> bool:
        if user is None or self.tenant.records.permissions.is_superuser(user):
            return True
        if user.id == inst["submitted_by"]:
            return True
        s = self._t("approval_steps")
        for (approvers,) in conn.execute(sa.select(s.c.approvers).where(s.c.approval_id == inst["id"])):
            if user.id in json.loads(approvers):
                return True
        entity = self.model.entities.get(inst["entity"])
        t = self.tenant.schema.table(entity)
        scope = self.tenant.records.permissions.row_filter(entity, t, user, "read")
        if not self.tenant.records.permissions.can(entity, user, "read"):
            return False
        stmt = sa.select(t.c.id).where(t.c.id == inst["record_id"])
        return conn.execute(stmt.where(scope) if scope is not None else stmt).first() is not None

    def list(self, user, mine: bool = False, submitted: bool = False, status: str | None = None,
             entity: str | None = None, record_id: int | None = None, limit: int = 100,
             locale: str | None = None) -> list[dict]:
        """Approvals the user may see, newest first. `mine`: waiting for the user's decision now;
        `submitted`: the ones the user submitted."""
        loc = self._loc(user, locale)
        a, s = self._t("approvals"), self._t("approval_steps")
        stmt = sa.select(a)
        if status:
            stmt = stmt.where(a.c.status == status)
        if entity:
            stmt = stmt.where(a.c.entity == entity)
        if record_id is not None:
            stmt = stmt.where(a.c.record_id == (as_id(record_id) or 0))
        if submitted:
            stmt = stmt.where(a.c.submitted_by == getattr(user, "id", None))
        with self.tenant.db.connect() as conn:
            if mine:
                stmt = stmt.where(a.c.status == OPEN)
                rows = conn.execute(stmt.order_by(a.c.id.desc())).mappings().all()
                steps = {(r.approval_id, r.position): r for r in conn.execute(
                    sa.select(s).where(s.c.approval_id.in_([r["id"] for r in rows] or [0]), s.c.status == "active"))}
                d = self._t("approval_decisions")
                decided = {(r.approval_id, r.position) for r in conn.execute(
                    sa.select(d.c.approval_id, d.c.position).where(d.c.user_id == getattr(user, "id", None)))}
                rows = [r for r in rows if (r["id"], r["step"]) in steps and
                        user.id in json.loads(steps[(r["id"], r["step"])].approvers) and
                        (r["id"], r["step"]) not in decided and
                        (user.id != r["submitted_by"] or flow_allows_self(self.model, r))]
            else:
                rows = conn.execute(stmt.order_by(a.c.id.desc()).limit(limit * 3)).mappings().all()
                rows = [r for r in rows if self._may_see(conn, r, user)]
            return self._json(conn, rows[:limit], user, loc)

    def for_record(self, entity_name: str, rid, user=None, locale: str | None = None) -> list[dict]:
        self.tenant.records.get(entity_name, rid, user)  # 404 outside the reader's scope
        return self.list(user, entity=entity_name, record_id=int(rid), locale=locale)

    def _json(self, conn, rows, user, loc: str) -> list[dict]:
        if not rows:
            return []
        s, d = self._t("approval_steps"), self._t("approval_decisions")
        ids = [r["id"] for r in rows]
        steps: dict[int, list] = {}
        for r in conn.execute(sa.select(s).where(s.c.approval_id.in_(ids)).order_by(s.c.position)).mappings():
            steps.setdefault(r["approval_id"], []).append(r)
        decisions: dict[tuple, list] = {}
        for r in conn.execute(sa.select(d).where(d.c.approval_id.in_(ids)).order_by(d.c.id)).mappings():
            decisions.setdefault((r["approval_id"], r["position"]), []).append(r)
        uids = {r["submitted_by"] for r in rows}
        for lst in steps.values():
            for st in lst:
                uids |= set(json.loads(st["approvers"]))
        for lst in decisions.values():
            uids |= {x["user_id"] for x in lst}
        names = self.tenant.records.user_names(uids)
        uid = getattr(user, "id", None)
        out = []
        for r in rows:
            flow = self.model.approvals[r["flow"]]
            entity = self.model.entities[flow.entity]
            visible = self.tenant.records.permissions.visible_fields(entity, user)  # a locked value may be hidden
            step_json = []
            can_decide = False
            for st in steps.get(r["id"], []):
                cfg = flow.steps[st["position"]] if st["position"] < len(flow.steps) else None
                approvers = json.loads(st["approvers"])
                decs = decisions.get((r["id"], st["position"]), [])
                if r["status"] == OPEN and st["position"] == r["step"] and uid in approvers and \
                        uid not in {x["user_id"] for x in decs} and (uid != r["submitted_by"] or (cfg and cfg.allow_self)):
                    can_decide = True
                step_json.append({
                    "position": st["position"], "label": (cfg.label.get(loc) if cfg and cfg.label else st["approver"]),
                    "approver": st["approver"], "mode": st["mode"], "status": st["status"],
                    "status_label": label(STATUS_TEXT, st["status"], loc), "note": st["note"],
                    "approvers": [{"id": i, "name": names.get(i, f"#{i}")} for i in approvers],
                    "decisions": [{"user": {"id": x["user_id"], "name": names.get(x["user_id"])},
                                   "decision": x["decision"], "comment": x["comment"],
                                   "at": as_aware(x["at"]).isoformat()} for x in decs]})
            out.append({
                "id": r["id"], "flow": flow.name, "flow_label": flow.label.get(loc), "entity": flow.entity,
                "entity_label": entity.label.get(loc), "record_id": r["record_id"],
                "title": self.tenant.records.permissions.shown_title(entity, user, r["record_id"], r["title"], loc),
                "status": r["status"], "status_label": label(STATUS_TEXT, r["status"], loc), "step": r["step"],
                "submitted_by": {"id": r["submitted_by"], "name": names.get(r["submitted_by"])},
                "submitted_at": as_aware(r["submitted_at"]).isoformat(),
                "decided_at": as_aware(r["decided_at"]).isoformat() if r["decided_at"] else None,
                "values": {f: {"label": entity.fields[f].label.get(loc), "value": v}
                           for f, v in json.loads(r["snapshot"] or "{}").items() if f in visible},
                "version": r["version"], "steps": step_json,
                "can": {"approve": can_decide, "reject": can_decide,
                        "withdraw": r["status"] == OPEN and uid is not None and uid == r["submitted_by"],
                        "resubmit": r["status"] in ("rejected", "withdrawn") and uid is not None
                        and uid == r["submitted_by"]},
            })
        return out


def flow_allows_self(model, row) -> bool:
    flow = model.approvals.get(row["flow"])
    return bool(flow and row["step"] is not None and row["step"] < len(flow.steps) and flow.steps[row["step"]].allow_self)
