"""Merge duplicates into one surviving record (R20), in one transaction.

``merge(tenant, entity, survivor_id, merged_ids, choices, user)``:

1. permissions: the user may update and delete the entity, and every record involved is within
   their update scope (and the merged ones within their delete scope) — else NotFound /
   PermissionDenied and nothing changes;
2. surviving values: ``choices`` maps a field (or ``owner``/``department``) to the id of the record
   whose value survives, or to a value (``{"value": …}`` forces a literal, ``{"from": id}`` a
   record). Fields not chosen keep the survivor's value; an empty one is filled from the first
   merged record that has it (writable, non-computed fields only);
3. every record referencing a merged record — any entity, subtable rows included — is re-pointed to
   the survivor, with an audit row, a version bump and the after_update hook per changed record (a
   survivor's reference to a merged record would point at itself, so it is cleared); each such
   record meets the before-write checks of any update (fields a pending approval locked: 423);
4. history: the survivor's "merge" audit row links the merged records (``_merged`` in its changes),
   so the survivor's timeline shows their history (engine/records/audit.py `read_history`, note
   "merged from #id") while their rows stay untouched and are not copied (the log is append-only, R43);
5. the merged records are deleted through the records service (their delete audit rows keep their
   last state), the survivor is updated with the chosen values, and a "merge" audit row on the
   survivor names the merged ids.
"""
from __future__ import annotations


import sqlalchemy as sa

from ..errors import BadRequest
from ..records.audit import MERGED_KEY, audit_row
from ..records.prepare import is_empty

CHILD_KEYS = ("id", "parent_id", "position")


def merge(tenant, entity, survivor_id, merged_ids, choices: dict | None = None, user=None,
          locale: str | None = None) -> dict:
    """Merge `merged_ids` into `survivor_id`; returns {"survivor": record, "merged": ids, "moved": {…}}."""
    records = tenant.records
    entity = records.entity(entity) if isinstance(entity, str) else entity
    if entity.is_child:
        raise BadRequest("subtable rows cannot be merged")
    loc = records._locale(user, locale)
    survivor_id = _as_id(survivor_id)
    merged: list[int] = []
    for m in merged_ids or []:
        mid = _as_id(m)
        if mid != survivor_id and mid not in merged:
            merged.append(mid)
    if not merged:
        raise BadRequest("choose at least one record other than the survivor to merge into it")
    records._deny(entity, user, "update")
    records._deny(entity, user, "delete")
    with tenant.write() as conn:
        survivor = records._fetch_for(conn, entity, survivor_id, user, "update", loc, for_update=True)
        others = []
        for mid in merged:
            others.append(records._fetch_for(conn, entity, mid, user, "update", loc, for_update=True))
            records._fetch_for(conn, entity, mid, user, "delete", loc)
        values = _surviving_values(tenant, entity, survivor, others, choices or {}, user)
        moved = _repoint(tenant, conn, entity, survivor_id, merged, user, loc)
        for mid in merged:
            records.delete(entity.name, mid, user, locale=loc, connection=conn)
        if values:
            records.update(entity.name, survivor_id, values, user, locale=loc, connection=conn,
                           confirm_duplicates=True)
        moved_text = ", ".join(f"{k} {n}" for k, n in moved.items() if n)
        note = f"merged {', '.join(f'#{m}' for m in merged)} into #{survivor_id}" + \
            (f" (re-pointed: {moved_text})" if moved_text else "")
        tenant.audit.append(conn, [audit_row(entity.name, survivor_id, "merge", {MERGED_KEY: [None, merged]},
                                             user, note=note, at=tenant.now())])
        result = records._fetch(conn, entity, survivor_id)
    return {"survivor": records.permissions.mask(entity, user, result), "merged": merged, "moved": moved}


def _as_id(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"not a record id: {value!r}") from None


def _json_value(records, entity, name: str, record: dict):
    if name in ("owner", "department"):
        return record.get(name)
    value = records.to_json(entity, {name: record.get(name)})[name]
    if entity.fields[name].child is not None:
        return [_strip_child(row) for row in value or []]
    return value


def _strip_child(row):
    if isinstance(row, dict):
        return {k: _strip_child(v) for k, v in row.items() if k not in CHILD_KEYS}
    if isinstance(row, list):
        return [_strip_child(v) for v in row]
    return row


def _surviving_values(tenant, entity, survivor: dict, others: list[dict], choices: dict, user) -> dict:
    records = tenant.records
    by_id = {survivor["id"]: survivor, **{o["id"]: o for o in others}}
    if not isinstance(choices, dict):
        raise BadRequest("choices must map field names to a record id or a value")
    values: dict = {}
    for name, choice in choices.items():
        if name not in entity.fields and name not in ("owner", "department"):
            raise BadRequest(f"unknown field '{name}' on {entity.name}")
        source = None
        if isinstance(choice, dict):
            if set(choice) == {"from"}:
                source = choice["from"]
            elif set(choice) == {"value"}:
                values[name] = choice["value"]
                continue
            else:
                raise BadRequest(f"{name}: give a record id, {{\"from\": id}} or {{\"value\": …}}")
        elif _is_id(choice) and int(choice) in by_id:
            source = choice
        else:
            values[name] = choice
            continue
        if not _is_id(source) or int(source) not in by_id:
            raise BadRequest(f"{name}: record #{source} is not part of this merge")
        values[name] = _json_value(records, entity, name, by_id[int(source)])
    access = records.permissions.field_access(entity, user)
    # a flow's status field is the flow's alone (the update would refuse it): never filled in
    status_fields = {flow.status_field for flow in tenant.model.approvals_of(entity.name)}
    for name, f in entity.fields.items():
        if name in values or access.get(name) != "write" or tenant.field_types.for_field(f).computed \
                or name in status_fields:
            continue
        if is_empty(survivor.get(name)):
            for other in others:
                if not is_empty(other.get(name)):
                    values[name] = _json_value(records, entity, name, other)
                    break
    current = {n: _json_value(records, entity, n, survivor) for n in values}
    return {n: v for n, v in values.items() if v != current[n]}


def _is_id(value) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and value.isdigit())


def _top_ids(conn, tenant, child, ids: list[int]) -> dict[int, int]:
    """{row id of a subtable row: id of the top-level record it belongs to}."""
    out = {i: i for i in ids}
    ent = child
    while ent.is_child:
        t = tenant.schema.table(ent)
        parents = dict(conn.execute(sa.select(t.c.id, t.c.parent_id).where(t.c.id.in_(list(set(out.values())))))
                       .all())
        out = {k: parents[v] for k, v in out.items()}
        ent = ent.parent
    return out


def _repoint(tenant, conn, entity, survivor_id: int, merged: list[int], user, loc: str) -> dict[str, int]:
    records = tenant.records
    model = tenant.model
    now = tenant.now()
    moved: dict[str, int] = {}
    touched: dict[str, set[int]] = {}
    plans = []
    for ref_entity, ref_field in model.referencing(entity.name):
        rt = tenant.schema.table(ref_entity)
        col = rt.c[ref_field.name]
        ids = list(conn.execute(sa.select(rt.c.id).where(col.in_(merged))).scalars())
        if ref_entity is entity:
            ids_self = list(conn.execute(sa.select(rt.c.id).where(rt.c.id == survivor_id, col.in_(merged)))
                            .scalars())
        else:
            ids_self = []
        if not ids:
            continue
        top = ref_entity
        while top.is_child:
            top = top.parent
        tops = _top_ids(conn, tenant, ref_entity, ids)
        label = f"{ref_entity.table_name}.{ref_field.name}"
        moved[label] = len([i for i in ids if not (ref_entity is entity and i in merged)])
        for row_id, top_id in tops.items():
            if top is entity and top_id in merged:
                continue  # going away; its delete snapshot keeps the state
            touched.setdefault(top.name, set()).add(top_id)
        plans.append((rt, col, ids_self))
    olds = {(name, rid): records._fetch(conn, model.entity(name), rid)
            for name, rids in touched.items() for rid in rids}
    for rt, col, ids_self in plans:
        if ids_self:
            conn.execute(rt.update().where(rt.c.id.in_(ids_self)).values({col.name: None}))
        conn.execute(rt.update().where(col.in_(merged)).values({col.name: survivor_id}))
    uid = getattr(user, "id", None)
    audits = []
    for (name, rid), old in olds.items():
        ent = model.entity(name)
        t = tenant.schema.table(ent)
        conn.execute(t.update().where(t.c.id == rid).values(version=t.c.version + 1, updated_at=now, updated_by=uid))
        new = records._fetch(conn, ent, rid)
        changes = records._changes(ent, old, new)
        if not changes:
            continue
        # a re-pointed record meets the same checks as any write (a pending approval's locked
        # reference, a won record's approval inputs); a refusal rolls the whole merge back
        tenant.pm.hook.formwork_records_before_write(tenant=tenant, entity=ent, record=new, old=old, user=user,
                                                     connection=conn,
                                                     options={"confirm_duplicates": True, "locale": loc})
        audits.append(audit_row(name, rid, "update", changes, user, note=f"merge into {entity.name} #{survivor_id}",
                                at=now))
        tenant.pm.hook.formwork_records_after_update(tenant=tenant, entity=ent, record=new, old=old,
                                                     changes=changes, user=user, connection=conn)
    tenant.audit.append(conn, audits)
    return moved

