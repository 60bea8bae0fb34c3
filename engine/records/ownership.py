"""Who owns a record: transfer (one or many), sharing with a virtual team (R34), hand-over at departure (R44)."""
from __future__ import annotations

from typing import Iterable

import sqlalchemy as sa

from ..errors import FormworkError, NotFound, ValidationFailed
from ..i18n import message
from ..ids import as_id
from ..permissions import PermissionDenied
from .audit import audit_row

SHARE_ACCESS = ("read", "write")


class OwnershipError(FormworkError):
    """A transfer, share or hand-over cannot be done as asked (unknown or disabled user …)."""


def _active_user(tenant, user_id_or_name):
    users = tenant.users
    found = users.by_username(user_id_or_name) if isinstance(user_id_or_name, str) and \
        not user_id_or_name.isdigit() else (users.get(as_id(user_id_or_name)) if as_id(user_id_or_name) else None)
    if found is None:
        raise OwnershipError(f"no such user: {user_id_or_name}")
    if not found.active:
        raise OwnershipError(f"user {found.username} is disabled and cannot own records")
    return found


def transfer(tenant, entity_name: str, ids: Iterable, new_owner, user=None, note: str | None = None,
             connection: sa.Connection | None = None) -> int:
    """Give records to another owner (their department follows), all or none, one audit row each."""
    svc = tenant.records
    entity = svc.entity(entity_name)
    svc._deny(entity, user, "transfer")
    loc = svc._locale(user, None)
    target = _active_user(tenant, new_owner)
    t = svc.schema.table(entity)
    now = tenant.now()
    count = 0
    with svc._transaction(connection) as conn:
        for rid in dict.fromkeys(int(i) for i in ids):
            old = svc._fetch_for(conn, entity, rid, user, "transfer", loc, for_update=True)
            new = {**old, "owner": target.id, "department": target.department}
            if not svc.permissions.within(entity, user, "transfer", new, conn):
                raise PermissionDenied(message("forbidden_transfer", loc))
            if old["owner"] == target.id and old["department"] == target.department:
                continue
            conn.execute(t.update().where(t.c.id == rid).values(
                owner=target.id, department=target.department, version=old["version"] + 1, updated_at=now,
                updated_by=getattr(user, "id", None)))
            changes = {"owner": [old["owner"], target.id], "department": [old["department"], target.department]}
            tenant.audit.append(conn, [audit_row(entity.name, rid, "transfer", changes, user, note=note, at=now)])
            tenant.pm.hook.formwork_records_after_update(
                tenant=tenant, entity=entity, record={**old, "owner": target.id, "department": target.department,
                                                      "version": old["version"] + 1},
                old=old, changes=changes, user=user, connection=conn)
            count += 1
    return count


def successor_for(tenant, leaver) -> object | None:
    """The manager of the leaver's department, or of the nearest department above it."""
    perms = tenant.records.permissions
    dept = leaver.department
    seen = set()
    while dept and dept not in seen:
        seen.add(dept)
        for u in tenant.users.list(include_inactive=False):
            if u.id != leaver.id and dept in (u.manages or []):
                return u
        dept = perms.parents.get(dept)
    return None


def hand_over(tenant, leaver_name: str, to=None, by=None) -> dict[str, int]:
    """Departure (R44): every record the leaver owns goes to `to` (or their manager) in one
    transaction; each move is an audited transfer that keeps the original owner in the history."""
    leaver = tenant.users.by_username(leaver_name)
    if leaver is None:
        raise OwnershipError(f"no such user: {leaver_name}")
    target = _active_user(tenant, to) if to else successor_for(tenant, leaver)
    if target is None:
        raise OwnershipError(f"{leaver_name}'s department has no active manager: name who takes over "
                             "with --transfer-to")
    if target.id == leaver.id:
        raise OwnershipError("a user cannot hand records over to themselves")
    note = f"departure of {leaver.username}: handed over to {target.username}"
    counts: dict[str, int] = {}
    with tenant.write() as conn:
        for entity in tenant.model.entities.values():
            t = tenant.records.schema.table(entity)
            ids = [r[0] for r in conn.execute(sa.select(t.c.id).where(t.c.owner == leaver.id).order_by(t.c.id))]
            if ids:
                counts[entity.name] = transfer(tenant, entity.name, ids, target.id, by, note=note, connection=conn)
    return counts


def share(tenant, entity_name: str, rid, user=None, with_user=None, with_department: str | None = None,
          access: str = "read") -> int:
    """Share one record with a user or a department (read or write); only those allowed to transfer it."""
    svc = tenant.records
    entity = svc.entity(entity_name)
    svc._deny(entity, user, "transfer")
    loc = svc._locale(user, None)
    if access not in SHARE_ACCESS:
        raise ValidationFailed({"access": [message("not_an_option", loc, value=access)]})
    if (with_user is None) == (with_department is None):
        raise ValidationFailed({"_record": ["share with one user or one department"]})
    target = _active_user(tenant, with_user) if with_user is not None else None
    if with_department is not None and with_department not in (tenant.model.config.get("departments") or {}):
        raise ValidationFailed({"department": [message("no_such_department", loc, value=with_department)]})
    shares = svc.schema.system["shares"]
    with tenant.write() as conn:
        svc._fetch_for(conn, entity, rid, user, "transfer", loc)
        now = tenant.now()
        row = {"entity": entity.name, "record_id": int(rid), "user_id": target.id if target else None,
               "department": with_department, "access": access, "created_by": getattr(user, "id", None),
               "created_at": now}
        share_id = conn.execute(shares.insert().values(row).returning(shares.c.id)).scalar_one()
        who = f"user:{target.username}" if target else f"department:{with_department}"
        tenant.audit.append(conn, [audit_row(entity.name, int(rid), "share", {"shared_with": [None, f"{who} ({access})"]}, user,
                               at=now)])
    return share_id


def unshare(tenant, share_id: int, user=None) -> None:
    svc = tenant.records
    shares = svc.schema.system["shares"]
    with tenant.write() as conn:
        row = conn.execute(sa.select(shares).where(shares.c.id == (as_id(share_id) or 0))).mappings().first()
        if row is None:
            raise NotFound("no such share")
        entity = svc.entity(row["entity"])
        svc._deny(entity, user, "transfer")
        svc._fetch_for(conn, entity, row["record_id"], user, "transfer", svc._locale(user, None))
        conn.execute(shares.delete().where(shares.c.id == share_id))
        who = f"user:{row['user_id']}" if row["user_id"] else f"department:{row['department']}"
        tenant.audit.append(conn, [audit_row(entity.name, row["record_id"], "unshare",
                               {"shared_with": [f"{who} ({row['access']})", None]}, user,
                               at=tenant.now())])


def shares_of(tenant, entity_name: str, rid, user=None) -> list[dict]:
    """Who a record is shared with (shown on the record)."""
    svc = tenant.records
    svc.get(entity_name, rid, user)  # 404 outside scope
    shares = svc.schema.system["shares"]
    with tenant.db.connect() as conn:
        rows = conn.execute(sa.select(shares).where(shares.c.entity == entity_name, shares.c.record_id == (as_id(rid) or 0))
                            .order_by(shares.c.id)).mappings().all()
    names = tenant.users.usernames([r["user_id"] for r in rows if r["user_id"]])
    return [{"id": r["id"], "user": names.get(r["user_id"]) if r["user_id"] else None,
             "department": r["department"], "access": r["access"]} for r in rows]
