"""Pipelines and approvals (R4 R5 R6 R27) as a built-in plugin on the records service's hooks, so every
write path — form, API, import, bulk edit, merge — meets the same criteria and cannot skip a step.

- ``formwork_records_validate`` (``_many`` for imports): stage entry criteria (every unmet one, and each
  empty required field under its own key), forward-only moves, and
  refusing any write to an approval flow's status field;
- ``formwork_records_before_write`` / ``_many``: reopening a won/lost record needs a reopen role;
  fields frozen by a pending approval (423), and a won/lost record's fields that an approval's `when`
  reads (423); a record cannot be won while an approval is unsettled;
- ``formwork_records_after_create`` / ``_many`` / ``_update`` / ``_delete``: stage history and
  starting approvals, in the write's transaction; a pending approval blocks a delete;
- ``formwork_records_filter``: the ``stagnant`` list filter.
"""
from __future__ import annotations

from engine.errors import ValidationFailed
from engine.plugins import hookimpl
from engine.records.events import RecordEvent, emit
from engine.workflows.pipelines import text as pipeline_text


def _top(entity) -> bool:
    return getattr(entity, "parent", None) is None


@hookimpl
def formwork_records_validate(tenant, entity, values, old, errors, locale=None) -> None:
    if not _top(entity):
        return
    loc = locale or tenant.model.tenant.locale
    for pipe in tenant.model.pipelines_of(entity.name):
        if old is not None and values.get(pipe.field) == old.get(pipe.field):
            unmet = tenant.pipelines.unmet(pipe, values, old, loc)   # staying: only what it requires
        else:
            with tenant.db.connect() as conn:
                unmet = tenant.pipelines.unmet(pipe, values, old, loc, loader=tenant.records._loader(conn))
        if unmet:
            errors.setdefault(pipe.field, []).extend(unmet)
            # each empty required field under its own key too, so a client knows what to fill in
            for name, msg in tenant.pipelines.missing(pipe, values, old, loc).items():
                if msg not in errors.get(name, []):
                    errors.setdefault(name, []).append(msg)
    for key, msgs in tenant.approvals.status_field_errors(entity, values, old, loc).items():
        errors.setdefault(key, []).extend(msgs)


@hookimpl
def formwork_records_validate_many(tenant, entity, rows, locale) -> list:
    """An import: one call for the batch, nothing to do for entities without pipelines or approvals."""
    if not _top(entity) or not (tenant.model.pipelines_of(entity.name) or tenant.model.approvals_of(entity.name)):
        return []
    out = []
    for n, record in rows:
        errors: dict[str, list[str]] = {}
        formwork_records_validate(tenant, entity, record, None, errors, locale)
        out.extend((n, key, msg) for key, msgs in errors.items() for msg in msgs)
    return out


def _outcome_problems(tenant, entity, record, old, connection, loc) -> list[tuple[str, str]]:
    out = []
    for pipe in tenant.model.pipelines_of(entity.name):
        new = pipe.stage(record.get(pipe.field))
        if new is None or new.outcome != "won" or (old is not None and old.get(pipe.field) == new.name):
            continue
        for flow in tenant.approvals.unsettled(connection, entity, record):
            out.append((pipe.field, pipeline_text("unapproved", loc, flow=flow.label.get(loc),
                                                  stage=new.label.get(loc))))
    return out


@hookimpl
def formwork_records_before_write(tenant, entity, record, old, user, connection, options) -> None:
    if not _top(entity):
        return
    loc = options.get("locale") or tenant.model.tenant.locale
    errors: dict[str, list[str]] = {}
    for pipe in tenant.model.pipelines_of(entity.name):
        before = pipe.stage(old.get(pipe.field)) if old is not None else None
        if before is not None and before.outcome and record.get(pipe.field) != before.name \
                and not tenant.pipelines.may_reopen(pipe, user):
            roles = [str((tenant.model.config.get("roles") or {}).get(r, {}).get("label") or r) for r in pipe.reopen_roles]
            errors.setdefault(pipe.field, []).append(pipeline_text(
                "reopen", loc, old=before.label.get(loc), roles="、".join(roles or ["admin"])))
    for key, msg in _outcome_problems(tenant, entity, record, old, connection, loc):
        errors.setdefault(key, []).append(msg)
    if errors:
        raise ValidationFailed(errors)
    if old is not None:
        tenant.approvals.check_locks(connection, entity, record, old, loc)
        tenant.approvals.check_final(entity, record, old, loc)


@hookimpl
def formwork_records_before_write_many(tenant, entity, rows, user, connection, options) -> list:
    if not _top(entity) or not (tenant.model.pipelines_of(entity.name) and tenant.model.approvals_of(entity.name)):
        return []
    loc = options.get("locale") or tenant.model.tenant.locale
    return [(n, key, msg) for n, record in rows
            for key, msg in _outcome_problems(tenant, entity, record, None, connection, loc)]


def _entered(tenant, entity, records, user, connection) -> None:
    tenant.pipelines.record_entries(connection, entity, records, user)
    for pipe in tenant.model.pipelines_of(entity.name):
        for rec in records:
            _stage_event(tenant, pipe, entity, rec, None, user, connection)
            tenant.pm.hook.formwork_workflows_stage_changed(
                tenant=tenant, pipeline=pipe, entity=entity, record=rec, old_stage=None,
                new_stage=rec.get(pipe.field), user=user, connection=connection)


def _stage_event(tenant, pipe, entity, record, old_stage, user, connection) -> None:
    emit(connection, RecordEvent("stage_changed", entity.name, record["id"], tenant.now(), getattr(user, "id", None),
                                 getattr(user, "username", None) or "system",
                                 data={"pipeline": pipe.name, "from": old_stage, "to": record.get(pipe.field)}))


@hookimpl
def formwork_records_after_create(tenant, entity, record, user, connection) -> None:
    if not _top(entity):
        return
    _entered(tenant, entity, [record], user, connection)
    tenant.approvals.on_write(connection, entity, record, None, user)


@hookimpl
def formwork_records_after_create_many(tenant, entity, records, user, connection) -> None:
    if not _top(entity):
        return
    if tenant.model.pipelines_of(entity.name):
        _entered(tenant, entity, records, user, connection)
    if tenant.model.approvals_of(entity.name):
        for rec in records:
            tenant.approvals.on_write(connection, entity, rec, None, user)


@hookimpl
def formwork_records_after_update(tenant, entity, record, old, changes, user, connection) -> None:
    if not _top(entity):
        return
    for pipe in tenant.model.pipelines_of(entity.name):
        if pipe.field in changes:
            tenant.pipelines.record_move(connection, pipe, record, user)
            _stage_event(tenant, pipe, entity, record, old.get(pipe.field), user, connection)
            tenant.pm.hook.formwork_workflows_stage_changed(
                tenant=tenant, pipeline=pipe, entity=entity, record=record, old_stage=old.get(pipe.field),
                new_stage=record.get(pipe.field), user=user, connection=connection)
    tenant.approvals.on_write(connection, entity, record, old, user)


@hookimpl
def formwork_records_after_delete(tenant, entity, record, user, connection) -> None:
    if not _top(entity):
        return
    tenant.approvals.check_delete(connection, entity, record, tenant.model.tenant.locale)
    if tenant.model.pipelines_of(entity.name):
        tenant.pipelines.close_history(connection, entity, record, user)


@hookimpl
def formwork_records_filter(tenant, entity, table, name, value, user):
    if name != "stagnant":
        return None
    pipes = tenant.model.pipelines_of(entity.name)
    if not pipes:
        return None
    import sqlalchemy as sa

    clause = sa.or_(*[tenant.pipelines.stagnant_clause(p, table) for p in pipes])
    return clause if str(value).strip().lower() in ("1", "true", "yes", "on") else sa.not_(clause)
