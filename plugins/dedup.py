"""Duplicate detection (R14, R20) as a built-in plugin on the records service's public hooks.

- ``formwork_records_before_write``: a create, or an update that changes a rule's field, raises
  ``DuplicatesFound`` when it matches stored records, unless the caller passed
  ``confirm_duplicates=True`` (the user confirmed "not a duplicate").
- ``formwork_records_before_write_many``: a bulk create (import) reports each row that duplicates a
  stored record or an earlier row.
- ``formwork_records_after_create/create_many/update/delete``: keep the blocking keys in step, in
  the same transaction as the write (a bulk create indexes its records in one batch).
- ``formwork_dedup_normalizers``: the built-in normalisers (company_name, phone, email, text).
"""
from __future__ import annotations

from engine.dedup.check import check_write, row_problems
from engine.dedup.index import DedupIndex
from engine.dedup.normalize import BUILTIN_NORMALIZERS, collect_normalizers
from engine.dedup.rules import rules_for
from engine.dedup.settings import unknown_normalizer
from engine.errors import ConfigError, ConfigIssue
from engine.plugins import hookimpl


@hookimpl
def formwork_dedup_normalizers() -> dict:
    return dict(BUILTIN_NORMALIZERS)


@hookimpl
def formwork_tenant_loaded(tenant) -> None:
    """Normaliser names may come from any of the tenant's plugins: check them once all are loaded
    (the config check left them alone, not knowing the plugins), at FILE:LINE:COL."""
    known = collect_normalizers(tenant.pm)
    issues = []
    smap = tenant.model.source_map
    for entity in tenant.model.entities.values():
        for i, raw in enumerate((entity.settings or {}).get("duplicates") or []):
            name = raw.get("normalize") if isinstance(raw, dict) else None
            if isinstance(name, str) and name not in known:
                path = ("entities", entity.name, "duplicates", i, "normalize")
                loc = smap.value(path) if smap is not None else None
                issues.append(ConfigIssue(loc, unknown_normalizer(name, known)))
    if issues:
        raise ConfigError(issues)


@hookimpl
def formwork_records_before_write(tenant, entity, record, old, user, connection, options) -> None:
    if options.get("confirm_duplicates") or not rules_for(entity):
        return
    check_write(tenant, entity, record, old, user, connection, options.get("locale"))


@hookimpl
def formwork_records_before_write_many(tenant, entity, rows, user, connection, options) -> list:
    if options.get("confirm_duplicates") or not rules_for(entity):
        return []
    return row_problems(tenant, entity, rows, user, connection, options.get("locale"))


@hookimpl
def formwork_records_after_create(tenant, entity, record, user, connection) -> None:
    rules = rules_for(entity)
    if rules:
        DedupIndex.for_tenant(tenant).add(connection, entity, [record], rules)


@hookimpl
def formwork_records_after_create_many(tenant, entity, records, user, connection) -> None:
    rules = rules_for(entity)
    if rules:
        DedupIndex.for_tenant(tenant).add(connection, entity, records, rules)


@hookimpl
def formwork_records_after_update(tenant, entity, record, old, changes, user, connection) -> None:
    rules = [r for r in rules_for(entity) if r.involves(changes)]
    if rules:
        DedupIndex.for_tenant(tenant).replace(connection, entity, record, rules)


@hookimpl
def formwork_records_after_delete(tenant, entity, record, user, connection) -> None:
    if rules_for(entity):
        DedupIndex.for_tenant(tenant).remove(connection, entity.name, [record["id"]])
