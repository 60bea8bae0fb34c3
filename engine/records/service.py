"""RecordsService: create/get/update/delete/list for every entity, with validation, locking and audit."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from datetime import datetime, timezone
from functools import cached_property, partial
from typing import Iterable, Iterator, Mapping

import sqlalchemy as sa

from ..errors import BadRequest, Conflict, FieldValueError, NotFound, ValidationFailed
from ..fields.base import FieldType
from ..fields.storage import UploadLog
from ..i18n import message
from ..ids import as_id
from ..metadata.model import Entity, Field
from ..permissions import PermissionDenied, Permissions
from .audit import audit_row, read_history
from .bulk import AUDIT_JSON, RecordInsert, creation_changes, existing_values
from ..schema.storage import sqlite_counter
from .files import discard_unreferenced, file_keys
from .identity import forget_record
from .prepare import Errors, Preparer, is_empty
from .query import (cursor_clause, encode_cursor, filter_clause, order_by, parse_filters, parse_sort,
                    search_clause, system_field)
from .sequences import next_values

MAX_LIMIT = 500
CHUNK = 500


@dataclass
class Page:
    """One page of a list: items and the cursor of the next page (None at the end)."""

    items: list[dict]
    next: str | None


@dataclass
class RowError:
    row: int          # 1-based data row number (the header is not counted)
    field: str
    message: str


@dataclass
class BulkResult:
    created: list[int] = dc_field(default_factory=list)
    errors: list[RowError] = dc_field(default_factory=list)
    skipped: int = 0


class BulkFailed(ValidationFailed):
    """A bulk create refused; `row_errors` names every bad row (nothing was written)."""

    def __init__(self, row_errors: list[RowError]):
        self.row_errors = row_errors
        errors: dict[str, list[str]] = {}
        for e in row_errors:
            errors.setdefault(f"row {e.row}", []).append(f"{e.field}: {e.message}")
        super().__init__(errors)


def _merged(errors: Errors | None, more: Errors | None) -> Errors | None:
    """One row's errors: those of its own validation, then those a batch hook found (None: none)."""
    if more is None:
        return errors
    if errors is None:
        return more
    for key, texts in more.by_key.items():
        for text in texts:
            errors.add_text(key, text)
    return errors


class RecordsService:
    """The only path by which records are read or written (web, API, import, automation)."""

    def __init__(self, tenant):
        self.tenant = tenant
        self.model = tenant.model
        self.types = tenant.field_types
        self.permissions = Permissions(tenant)
        self._preparers: dict[tuple, tuple] = {}
        self._typed_fields: dict[tuple, tuple] = {}
        self._plans: dict[tuple, tuple] = {}
        self._inserts: dict[tuple, tuple] = {}

    @cached_property
    def schema(self):
        return self.tenant.schema

    # --- helpers ------------------------------------------------------------------------------

    def entity(self, name: str) -> Entity:
        ent = self.model.entities.get(name)
        if ent is None:
            raise NotFound(f"unknown entity '{name}'")
        return ent

    def preparer(self, entity: Entity) -> Preparer:
        return _memo(self._preparers, entity, lambda: Preparer(self.tenant, entity))

    def ctx(self, locale: str | None = None, conn: sa.Connection | None = None, storage=None, user=None):
        """Field context for coercion; with `user`, a reference named by title resolves only among the
        records they may read; `storage` keeps this write's uploads (to drop them if it fails)."""
        ctx = self.tenant.field_context(locale)
        if storage is not None:
            ctx.storage = storage
        ctx.resolve_reference = lambda field, value: self._resolve_reference(field, value, conn, user)
        ctx.resolve_user = lambda value: self._resolve_user(value, conn)
        return ctx

    def _locale(self, user, locale: str | None) -> str:
        return locale or getattr(user, "locale", None) or self.model.tenant.locale

    def _resolve_reference(self, field: Field, value, conn, user=None) -> int:
        """A reference given as a target's unique title (import, forms) → its id; a record outside the
        user's read scope is not found (the same message as a title nobody has)."""
        target = self.entity(field.to)
        if not target.title:
            raise FieldValueError("no_such_record", {"value": value})
        t = self.schema.table(target)
        stmt = sa.select(t.c.id).where(t.c[target.title] == str(value).strip(),
                                       *self._readable(target, t, user)).limit(2)
        rows = conn.execute(stmt).all() if conn is not None else self._run(stmt)
        if not rows:
            raise FieldValueError("no_such_record", {"value": value})
        if len(rows) > 1:
            raise FieldValueError("ambiguous_record", {"value": value})
        return rows[0][0]

    def _resolve_user(self, value, conn) -> int:
        users = self.schema.system["users"]
        s = str(value).strip()
        cond = users.c.id == as_id(s) if as_id(s) is not None else users.c.username == s
        stmt = sa.select(users.c.id).where(cond)
        row = conn.execute(stmt).first() if conn is not None else next(iter(self._run(stmt)), None)
        if row is None:
            raise FieldValueError("no_such_user", {"value": value})
        return row[0]

    def _run(self, stmt):
        with self.tenant.db.connect() as conn:
            return conn.execute(stmt).fetchall()

    def _loader(self, conn: sa.Connection):
        cache: dict = {}

        def load(entity_name: str, rid):
            key = (entity_name, rid)
            if key not in cache:
                ent = self.model.entities.get(entity_name)
                cache[key] = None if ent is None or rid is None else self._fetch(conn, ent, rid)
            return cache[key]

        return load

    def _from_row(self, entity: Entity, row: Mapping) -> dict:
        rec = {}
        for name in entity.system_fields:
            v = row[name]
            if isinstance(v, datetime) and v.tzinfo is None:
                v = v.replace(tzinfo=timezone.utc)
            rec[name] = v
        for name, from_db, _to_json, child, stored in self._plan(entity):
            if stored:
                rec[name] = row[name] if from_db is None else from_db(row[name])
            elif child is not None:
                rec[name] = []
        return rec

    def _plan(self, entity: Entity) -> tuple:
        """Per field, in order: (name, from_db, to_json, child entity, stored), built once per entity.
        A converter is None where the field type keeps FieldType's identity method, so reading and
        serialising a page of rows skips thousands of calls that return their argument."""
        def conv(ftype, f, method):
            fn = getattr(type(ftype), method, None)
            return None if fn is getattr(FieldType, method) else partial(getattr(ftype, method), f)

        return _memo(self._plans, entity, lambda: tuple(
            (f.name, conv(ftype, f, "from_db"), conv(ftype, f, "to_json"), f.child, ftype.stored)
            for f, ftype in self._typed(entity)))

    def _typed(self, entity: Entity) -> list:
        """[(field, field type)] of an entity, looked up once."""
        return _memo(self._typed_fields, entity,
                     lambda: [(f, self.types.for_field(f)) for f in entity.fields.values()])

    def _to_row(self, entity: Entity, record: dict, every_column: bool = False) -> dict:
        """Database values of the record's fields; `every_column` fills absent ones with NULL, so rows
        of one executemany all have the same keys."""
        row = {}
        for f, ftype in self._typed(entity):
            if ftype.stored and f.name in record:
                row[f.name] = ftype.to_db(f, record[f.name])
            elif ftype.stored and every_column:
                row[f.name] = None
        return row

    def _fetch(self, conn, entity: Entity, rid, user=None, action="read", for_update=False) -> dict | None:
        rid = as_id(rid)
        if rid is None:
            return None
        t = self.schema.table(entity)
        stmt = sa.select(t).where(t.c.id == rid)
        scope = self.permissions.row_filter(entity, t, user, action) if user is not None else None
        if scope is not None:
            stmt = stmt.where(scope)
        if for_update and conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).mappings().first()
        if row is None:
            return None
        rec = self._from_row(entity, row)
        self._attach_children(conn, entity, [rec])
        return rec

    def _attach_children(self, conn, entity: Entity, records: list[dict]) -> None:
        if not records:
            return
        for sub in entity.subtables():
            child = sub.child
            ct = self.schema.table(child)
            by_parent: dict[int, list] = {r["id"]: [] for r in records}
            ids = list(by_parent)
            for i in range(0, len(ids), CHUNK):
                rows = conn.execute(sa.select(ct).where(ct.c.parent_id.in_(ids[i:i + CHUNK]))
                                    .order_by(ct.c.parent_id, ct.c.position, ct.c.id)).mappings()
                for row in rows:
                    by_parent[row["parent_id"]].append(self._from_row(child, row))
            for r in records:
                r[sub.name] = by_parent[r["id"]]
                self._attach_children(conn, child, r[sub.name])

    def _deny(self, entity, user, action):
        if not self.permissions.can(entity, user, action):
            raise PermissionDenied(message("forbidden_action", self._locale(user, None), action=action,
                                           entity=entity.label.get(self._locale(user, None))))

    def _fetch_for(self, conn, entity: Entity, rid, user, action: str, loc: str, for_update=False) -> dict:
        """The record if the user may read it (else NotFound: no oracle) and may `action` it (else 403)."""
        rec = self._fetch(conn, entity, rid, user, action="read", for_update=for_update)
        if rec is None:
            raise NotFound(message("not_found", loc))
        if user is not None and action != "read":
            t = self.schema.table(entity)
            scope = self.permissions.row_filter(entity, t, user, action)
            if scope is not None and conn.execute(sa.select(t.c.id).where(t.c.id == rid, scope)).first() is None:
                raise PermissionDenied(message("forbidden_record", loc, action=action))
        return rec

    def _readable(self, entity: Entity, table: sa.Table, user) -> list:
        """Conditions limiting `table` to the records `user` may read (none for the engine itself):
        what a reference written by them may point to."""
        if user is None:
            return []
        if not self.permissions.can(entity, user, "read"):
            return [sa.false()]
        scope = self.permissions.row_filter(entity, table, user, "read")
        return [] if scope is None else [scope]

    def _check_placement(self, entity: Entity, user, old: dict | None, new: dict, loc: str,
                         conn: sa.Connection | None = None) -> None:
        """A write may not put a record outside the writer's scope, nor hand it to someone else
        without the right to transfer it."""
        if self.permissions.is_superuser(user):
            return
        action = "update" if old is not None else "read"
        if old is None and not self.permissions.within(entity, user, "read", new) and \
                not self.permissions.within(entity, user, "update", new):
            raise PermissionDenied(message("forbidden_placement", loc))
        if old is not None and not self.permissions.within(entity, user, action, new, conn):
            raise PermissionDenied(message("forbidden_placement", loc))
        moved = (old is None and new.get("owner") != getattr(user, "id", None)) or \
            (old is not None and (old.get("owner") != new.get("owner") or old.get("department") != new.get("department")))
        if moved:
            if old is not None and not self.permissions.within(entity, user, "transfer", old):
                raise PermissionDenied(message("forbidden_transfer", loc))
            if not self.permissions.within(entity, user, "transfer", new):
                raise PermissionDenied(message("forbidden_transfer", loc))

    # --- reading ------------------------------------------------------------------------------

    def get(self, entity_name: str, rid, user=None, locale: str | None = None) -> dict:
        entity = self.entity(entity_name)
        self._deny(entity, user, "read")
        rid = _as_id(rid)
        with self.tenant.db.connect() as conn:
            rec = self._fetch(conn, entity, rid, user)
        if rec is None:
            raise NotFound(message("not_found", self._locale(user, locale)))
        return self.permissions.mask(entity, user, rec)

    def _select(self, entity: Entity, user, filters, search, ctx):
        t = self.schema.table(entity)
        conds = []
        scope = self.permissions.row_filter(entity, t, user, "read")
        if scope is not None:
            conds.append(scope)
        visible = self.permissions.visible_fields(entity, user)
        filters = dict(filters or {})
        for key in [k for k in filters if k.partition("__")[0] not in entity.fields]:
            # a filter that is not a field (e.g. stagnant=1) is a plugin's to translate, else unknown
            clause = self.tenant.pm.hook.formwork_records_filter(tenant=self.tenant, entity=entity, table=t,
                                                                 name=key, value=filters[key], user=user)
            if clause is not None:
                conds.append(clause)
                del filters[key]
        for key in filters:  # before parsing: an operator or type error would confirm the field exists
            name = key.partition("__")[0]
            if name in entity.fields and name not in visible:
                raise BadRequest(f"unknown filter field '{name}' on {entity.name}")
        for f in parse_filters(entity, filters, self.types, ctx):
            conds.append(filter_clause(t, f, self.types))
        if search:
            clause = search_clause(entity, t, search, visible, self.types)
            if clause is not None:
                conds.append(clause)
        return t, conds

    def list(self, entity_name: str, user=None, filters: Mapping | None = None, search: str | None = None,
             sort: str | None = None, limit: int = 50, after: str | None = None,
             locale: str | None = None) -> Page:
        entity = self.entity(entity_name)
        self._deny(entity, user, "read")
        ctx = self.ctx(locale)
        if not isinstance(limit, int) or limit < 1:
            raise BadRequest("limit must be a positive whole number")
        limit = min(limit, MAX_LIMIT)
        t, conds = self._select(entity, user, filters, search, ctx)
        name = (sort or "").lstrip("-+")
        if name in entity.fields and name not in self.permissions.visible_fields(entity, user):
            raise BadRequest(f"cannot sort by unknown field '{name}' on {entity.name}")
        srt = parse_sort(entity, sort, self.types)
        if after:
            conds.append(cursor_clause(t, srt, after, self.types, ctx))
        stmt = sa.select(t).where(*conds).order_by(*order_by(t, srt)).limit(limit + 1)
        with self.tenant.db.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
            more = len(rows) > limit
            rows = rows[:limit]
            items = [self._from_row(entity, r) for r in rows]
            self._attach_children(conn, entity, items)
        nxt = encode_cursor(srt, rows[-1], self.types) if more and rows else None
        return Page([self.permissions.mask(entity, user, r) for r in items], nxt)

    def count(self, entity_name: str, user=None, filters: Mapping | None = None, search: str | None = None) -> int:
        entity = self.entity(entity_name)
        self._deny(entity, user, "read")
        t, conds = self._select(entity, user, filters, search, self.ctx())
        with self.tenant.db.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t).where(*conds)).scalar_one()

    def history(self, entity_name: str, rid, user=None) -> list[dict]:
        """The audit timeline of a record, newest first, without fields the user may not see."""
        entity = self.entity(entity_name)
        self.get(entity_name, rid, user)  # 404 outside scope
        with self.tenant.db.connect() as conn:
            items = read_history(conn, self.schema.system["audit"], entity.name, _as_id(rid))
        perms = self.permissions
        out = []
        for it in items:
            if perms.touches_only_hidden(entity, user, it["changes"]):
                continue  # even "changed at 10:02" would tell when a hidden value moved
            it["changes"] = perms.visible_changes(entity, user, it["changes"])
            out.append(it)
        return out

    def quick_search(self, text: str, user=None, limit: int = 20) -> list[dict]:
        """Records of every entity whose title, text fields or phone numbers match (R10)."""
        text = (text or "").strip()
        if not text:
            return []
        out = []
        with self.tenant.db.connect() as conn:
            for entity in self.model.entities.values():
                if not self.permissions.can(entity, user, "read"):
                    continue
                t = self.schema.table(entity)
                clause = search_clause(entity, t, text, self.permissions.visible_fields(entity, user),
                                       self.types)
                if clause is None:
                    continue
                conds = [clause]
                scope = self.permissions.row_filter(entity, t, user, "read")
                if scope is not None:
                    conds.append(scope)
                rows = conn.execute(sa.select(t).where(*conds).order_by(t.c.id.desc()).limit(limit)).mappings()
                for row in rows:
                    rec = self.permissions.mask(entity, user, self._from_row(entity, row))
                    out.append({"entity": entity.name, "id": rec["id"], "title": self.title_of(entity, rec),
                                "subtitle": entity.label.get(self._locale(user, None))})
        return out[:limit * 3]

    def export(self, entity_name: str, user=None, filters: Mapping | None = None, search: str | None = None,
               channel: str = "cli", page_size: int = 500) -> Iterator[dict]:
        """Every record the user may export (R42): scope-filtered, within export_limit, logged.

        The log row is written before the first record is returned; a refused export is not logged
        as an export (nothing left the system).
        """
        entity = self.entity(entity_name)
        self._deny(entity, user, "export")
        loc = self._locale(user, None)
        t, conds = self._select(entity, user, filters, search, self.ctx())
        scope = self.permissions.row_filter(entity, t, user, "export")
        if scope is not None:
            conds.append(scope)
        with self.tenant.db.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(t).where(*conds)).scalar_one()
        limit = self.permissions.export_limit(entity, user)
        if limit is not None and count > limit:
            raise PermissionDenied(message("export_limit", loc, limit=limit, count=count))
        self.permissions.log_export(entity, user, {**(filters or {}), **({"q": search} if search else {})},
                                    count, channel)
        return self._iterate(entity, t, conds, user, page_size)

    def _iterate(self, entity: Entity, t: sa.Table, conds: list, user, page_size: int) -> Iterator[dict]:
        last = 0
        while True:
            with self.tenant.db.connect() as conn:
                rows = conn.execute(sa.select(t).where(*conds, t.c.id > last).order_by(t.c.id)
                                    .limit(page_size)).mappings().all()
                items = [self._from_row(entity, r) for r in rows]
                self._attach_children(conn, entity, items)
            for rec in items:
                yield self.permissions.mask(entity, user, rec)
            if len(rows) < page_size:
                return
            last = rows[-1]["id"]

    def update_many(self, entity_name: str, ids: Iterable, values: Mapping, user=None,
                    locale: str | None = None) -> list[dict]:
        """The same change to several records, all or none: one id outside scope rejects them all."""
        out = []
        with self.tenant.write() as conn:
            for rid in _unique_ids(ids):
                out.append(self.update(entity_name, rid, dict(values), user, locale=locale, connection=conn))
        return out

    def delete_many(self, entity_name: str, ids: Iterable, user=None, locale: str | None = None) -> int:
        """Delete several records, all or none."""
        ids = _unique_ids(ids)
        orphans: set[str] = set()
        with self.tenant.write() as conn:
            for rid in ids:
                orphans |= self._delete(entity_name, rid, user, None, locale, conn)
        discard_unreferenced(self.tenant, orphans)
        return len(ids)

    # --- writing ------------------------------------------------------------------------------

    def create(self, entity_name: str, values: Mapping, user=None, locale: str | None = None,
               connection: sa.Connection | None = None, note: str | None = None,
               confirm_duplicates: bool = False) -> dict:
        entity = self.entity(entity_name)
        self._deny(entity, user, "create")
        loc = self._locale(user, locale)
        if not isinstance(values, Mapping):
            raise ValidationFailed({"_record": [message("not_a_list", loc)]})
        uploads = UploadLog(self.tenant.storage)
        try:
            with self._transaction(connection) as conn:
                record = self._validated(conn, entity, dict(values), None, user, loc, uploads)
                self._check_placement(entity, user, None, record, loc)
                self._before_write(conn, entity, record, None, user, loc, confirm_duplicates)
                rid = self._insert(conn, entity, [record], user, action="create", note=note)[0]
                created = self._fetch(conn, entity, rid)
                self.tenant.pm.hook.formwork_records_after_create(tenant=self.tenant, entity=entity,
                                                                  record=created, user=user, connection=conn)
        except BaseException:
            uploads.discard()  # a refused form must not leave its upload behind
            raise
        return self.permissions.mask(entity, user, created)

    def update(self, entity_name: str, rid, values: Mapping, user=None, version: int | None = None,
               locale: str | None = None, connection: sa.Connection | None = None,
               confirm_duplicates: bool = False) -> dict:
        entity = self.entity(entity_name)
        self._deny(entity, user, "update")
        loc = self._locale(user, locale)
        rid = _as_id(rid)
        values = dict(values)
        if version is None and "version" in values:
            version = values.get("version")
        version = _version(version, loc)
        uploads = UploadLog(self.tenant.storage)
        try:
            new, old = self._update(entity, rid, values, user, version, loc, connection, confirm_duplicates,
                                    uploads)
        except BaseException:
            uploads.discard()  # a refused form must not leave its upload behind
            raise
        if connection is None:  # committed: a replaced or cleared file is no longer needed
            discard_unreferenced(self.tenant, file_keys(entity, old) - file_keys(entity, new))
        return self.permissions.mask(entity, user, new)

    def _update(self, entity: Entity, rid: int, values: dict, user, version, loc: str, connection,
                confirm_duplicates: bool, uploads: UploadLog) -> tuple[dict, dict]:
        """The update inside its transaction: (new record, old record), unmasked."""
        with self._transaction(connection) as conn:
            old = self._fetch_for(conn, entity, rid, user, "update", loc, for_update=True)
            if version is not None and version != old["version"]:
                raise self._conflict(conn, entity, old, loc, user)
            record = self._validated(conn, entity, values, old, user, loc, uploads)
            changes = self._changes(entity, old, record)
            if not changes:
                return old, old
            self._check_placement(entity, user, old, record, loc, conn)
            self._before_write(conn, entity, record, old, user, loc, confirm_duplicates)
            t = self.schema.table(entity)
            now = self.tenant.now()
            row = self._to_row(entity, record)
            row.update(updated_at=now, updated_by=getattr(user, "id", None), version=old["version"] + 1,
                       owner=record.get("owner"), department=record.get("department"))
            res = conn.execute(t.update().where(t.c.id == rid, t.c.version == old["version"]).values(row))
            if res.rowcount != 1:
                raise self._conflict(conn, entity, old, loc, user)
            for sub in entity.subtables():
                if sub.name in changes:
                    self._replace_children(conn, sub, rid, record[sub.name])
            self.tenant.audit.append(conn, [audit_row(entity.name, rid, "update", changes, user, at=now)])
            new = self._fetch(conn, entity, rid)
            self.tenant.pm.hook.formwork_records_after_update(tenant=self.tenant, entity=entity, record=new, old=old,
                                                              changes=changes, user=user, connection=conn)
        return new, old

    def delete(self, entity_name: str, rid, user=None, version: int | None = None, locale: str | None = None,
               connection: sa.Connection | None = None) -> None:
        """Delete a record (hard delete; the audit row keeps its last state). Refused while referenced.
        Its stored files go too once committed (when this call owns the transaction)."""
        orphans = self._delete(entity_name, rid, user, version, locale, connection)
        if connection is None:
            discard_unreferenced(self.tenant, orphans)

    def _delete(self, entity_name: str, rid, user, version, locale: str | None, connection) -> set[str]:
        """The delete inside its transaction; the storage keys of the record's files."""
        entity = self.entity(entity_name)
        self._deny(entity, user, "delete")
        loc = self._locale(user, locale)
        rid = _as_id(rid)
        version = _version(version, loc)
        with self._transaction(connection) as conn:
            old = self._fetch_for(conn, entity, rid, user, "delete", loc, for_update=True)
            if version is not None and version != old["version"]:
                raise self._conflict(conn, entity, old, loc, user)
            where = []
            for ref_entity, ref_field in self.model.referencing(entity.name):
                rt = self.schema.table(ref_entity)
                n = conn.execute(sa.select(sa.func.count()).select_from(rt)
                                 .where(rt.c[ref_field.name] == rid)).scalar_one()
                if n:
                    top = ref_entity.parent or ref_entity
                    where.append(f"{top.label.get(loc)}（{n}）" if loc.startswith("zh") else f"{top.label.get(loc)} ({n})")
            if where:
                raise ValidationFailed({"_record": [message("referenced", loc, where="、".join(where))]})
            for sub in entity.subtables():
                self._replace_children(conn, sub, rid, [])
            t = self.schema.table(entity)
            conn.execute(t.delete().where(t.c.id == rid))
            snapshot = {k: [v, None] for k, v in self.to_json(entity.name, old).items()
                        if k not in ("id",) and not is_empty(v)}
            self.tenant.audit.append(conn, [audit_row(entity.name, rid, "delete", snapshot, user,
                                                                                at=self.tenant.now())])
            self.tenant.pm.hook.formwork_records_after_delete(tenant=self.tenant, entity=entity, record=old,
                                                              user=user, connection=conn)
            forget_record(conn, self.schema.system, entity.name, rid, self.tenant.now())
        return file_keys(entity, old)

    def create_many(self, entity_name: str, rows: Iterable[Mapping], user=None, locale: str | None = None,
                    skip_invalid: bool = False, dry_run: bool = False, note: str = "import",
                    progress=None, confirm_duplicates: bool = False,
                    connection: sa.Connection | None = None) -> BulkResult:
        """Validate every row, then insert them all in one transaction — or none, naming every bad row."""
        entity = self.entity(entity_name)
        self._deny(entity, user, "create")
        self._deny(entity, user, "import")
        loc = self._locale(user, locale)
        result = BulkResult()
        good: list[tuple[int, dict]] = []
        with self._transaction(connection) as conn:
            ctx = self.ctx(loc, conn, user=user)
            prep = self.preparer(entity)
            loader = self._loader(conn)
            now = self.tenant.now()
            access = self.permissions.field_access(entity, user)
            writable = {n for n, a in access.items() if a == "write"}
            hidden = {n for n, a in access.items() if a == "hidden"}
            coerce_row = prep.row_coercer(ctx, writable=writable, hidden=hidden)  # = coerce_input, compiled
            complete_new = prep.completer(ctx, loader=loader, now=now)  # = complete(…, None, …), bound
            # plugins with the batch validation hook get every row at once; the others one call per row
            validate_many = self.tenant.pm.hook.formwork_records_validate_many
            validate_one = self.tenant.pm.subset_hook_caller(
                "formwork_records_validate", remove_plugins=[i.plugin for i in validate_many.get_hookimpls()])
            per_row = bool(validate_one.get_hookimpls())
            checked: list[tuple[int, dict, Errors | None]] = []  # (row number, record, its errors or None)
            errors = Errors(loc)
            for n, values in enumerate(rows, start=1):
                record = complete_new(coerce_row(values, errors), errors)
                if per_row:
                    extra: dict[str, list[str]] = {}
                    validate_one(tenant=self.tenant, entity=entity, values=record, old=None, errors=extra, locale=loc)
                    for k, msgs in extra.items():
                        for m in msgs:
                            errors.add_text(k, m)
                if errors.by_key:
                    checked.append((n, record, errors))
                    errors = Errors(loc)
                else:  # (a row without errors leaves the collector empty for the next one)
                    checked.append((n, record, None))
                if progress:
                    progress(n)
            if validate_many.get_hookimpls():
                by_row = {}
                for problems in validate_many(tenant=self.tenant, entity=entity,
                                              rows=[(n, record) for n, record, _ in checked], locale=loc):
                    for n, key, text in problems or ():
                        by_row.setdefault(n, Errors(loc)).add_text(key, text)
                if by_row:
                    checked = [(n, record, _merged(errors, by_row.get(n))) for n, record, errors in checked]
            for n, record, errors in checked:
                if errors is not None:
                    result.errors.extend(RowError(n, k, m) for k, msgs in errors.by_key.items() for m in msgs)
                    continue
                self._stamp(record, None, user)
                try:
                    self._check_placement(entity, user, None, record, loc)
                except PermissionDenied as exc:
                    result.errors.append(RowError(n, "_record", str(exc)))
                    continue
                good.append((n, record))
            del checked
            for n, key, text in self._bulk_checks(conn, entity, good, loc, user):
                result.errors.append(RowError(n, key, text))
            for problems in self.tenant.pm.hook.formwork_records_before_write_many(
                    tenant=self.tenant, entity=entity, rows=good, user=user, connection=conn,
                    options={"confirm_duplicates": confirm_duplicates, "locale": loc}):
                for n, key, text in problems or ():
                    result.errors.append(RowError(n, key, text))
            bad_rows = {e.row for e in result.errors}
            if result.errors and not skip_invalid:
                result.errors.sort(key=lambda e: (e.row, e.field))
                raise BulkFailed(result.errors)
            good = [(n, r) for n, r in good if n not in bad_rows]
            result.skipped = len(bad_rows)
            if dry_run:
                result.created = [0] * len(good)
                conn.rollback()
                return result
            for i in range(0, len(good), CHUNK):
                chunk = [r for _, r in good[i:i + CHUNK]]
                result.created.extend(self._insert(conn, entity, chunk, user, action="create", note=note,
                                                   validated=True))
            created = [record for _, record in good]  # _insert stamped each with its id and system fields
            bulk = self.tenant.pm.hook.formwork_records_after_create_many
            bulk(tenant=self.tenant, entity=entity, records=created, user=user, connection=conn)
            # plugins with the bulk hook got the batch; the others get one call per record
            hook = self.tenant.pm.subset_hook_caller("formwork_records_after_create",
                                                     remove_plugins=[i.plugin for i in bulk.get_hookimpls()])
            if hook.get_hookimpls():
                for record in created:
                    hook(tenant=self.tenant, entity=entity, record=record, user=user, connection=conn)
        result.errors.sort(key=lambda e: (e.row, e.field))
        return result

    # --- write internals ----------------------------------------------------------------------

    def _transaction(self, connection):
        if connection is not None:
            return _Nested(connection)
        return self.tenant.write()

    def _validated(self, conn, entity: Entity, values: dict, old: dict | None, user, loc: str,
                   uploads: UploadLog | None = None) -> dict:
        errors = Errors(loc)
        ctx = self.ctx(loc, conn, uploads, user=user)
        prep = self.preparer(entity)
        access = self.permissions.field_access(entity, user)
        writable = {n for n, a in access.items() if a == "write"}
        hidden = {n for n, a in access.items() if a == "hidden"}
        clean = prep.coerce_input(values, old, ctx, errors, writable=writable, hidden=hidden)
        record = prep.complete(clean, old, ctx, errors, loader=self._loader(conn))
        if not errors:
            self._stamp(record, old, user)
            for key, text in self._record_checks(conn, entity, record, old, loc, user):
                errors.add_text(key, text)
        self._plugin_validate(entity, record, old, errors)
        if errors:
            raise ValidationFailed(errors.by_key)
        return record

    def _plugin_validate(self, entity, record, old, errors: Errors) -> None:
        extra: dict[str, list[str]] = {}
        self.tenant.pm.hook.formwork_records_validate(tenant=self.tenant, entity=entity, values=record, old=old,
                                                      errors=extra, locale=errors.locale)
        for k, msgs in extra.items():
            for m in msgs:
                errors.add_text(k, m)

    def _before_write(self, conn, entity: Entity, record: dict, old: dict | None, user, loc: str,
                      confirm_duplicates: bool) -> None:
        """Plugins may refuse a validated write by raising (e.g. DuplicatesFound)."""
        self.tenant.pm.hook.formwork_records_before_write(
            tenant=self.tenant, entity=entity, record=record, old=old, user=user, connection=conn,
            options={"confirm_duplicates": confirm_duplicates, "locale": loc})

    def _stamp(self, record: dict, old: dict | None, user) -> None:
        if old is None:
            if record.get("owner") is None:
                record["owner"] = getattr(user, "id", None)
            if record.get("department") is None:
                record["department"] = getattr(user, "department", None)

    def _record_checks(self, conn, entity: Entity, record: dict, old: dict | None, loc: str, user=None,
                       kept: dict | None = None):
        """Checks that need the database: references exist within the writer's read scope (one message
        for missing and out of scope: no oracle), unique values are free, the department is one the
        writer may place records in. `kept`: {field: values} a subtable's rows had already."""
        if not entity.is_child:
            yield from self._department_check(entity, record, old, loc, user)
        for f in entity.fields.values():
            v = record.get(f.name)
            if v is None or (old is not None and old.get(f.name) == v):
                continue
            if f.type == "reference" and v not in (kept or {}).get(f.name, ()):
                target = self.entity(f.to)
                tt = self.schema.table(target)
                stmt = sa.select(tt.c.id).where(tt.c.id == v, *self._readable(target, tt, user))
                if conn.execute(stmt).first() is None:
                    yield f.name, message("no_such_record", loc, value=v)
            elif f.type == "user":
                u = self.schema.system["users"]
                if conn.execute(sa.select(u.c.id).where(u.c.id == v)).first() is None:
                    yield f.name, message("no_such_user", loc, value=v)
            if f.unique:
                t = self.schema.table(entity)
                stmt = sa.select(t.c.id).where(t.c[f.name] == self.types.for_field(f).to_db(f, v))
                if old is not None:
                    stmt = stmt.where(t.c.id != old["id"])
                if conn.execute(stmt.limit(1)).first() is not None:
                    yield f.name, message("unique", loc)
        for sub in entity.subtables():
            # references the rows had before this write are not judged again (the parent's own are not either)
            before = {f.name: {r.get(f.name) for r in (old or {}).get(sub.name) or []}
                      for f in sub.child.fields.values() if f.type == "reference"}
            for i, row in enumerate(record.get(sub.name) or []):
                for key, text in self._record_checks(conn, sub.child, row, None, loc, user, before):
                    yield f"{sub.name}.{i}.{key}", text

    def _department_check(self, entity: Entity, record: dict, old: dict | None, loc: str, user):
        """A new or moved record stays in a department the writer may place records in."""
        dept = record.get("department")
        if user is None or (old is not None and old.get("department") == dept):
            return
        allowed = self.permissions.placeable_departments(entity, user)
        if allowed is not None and dept not in allowed:
            yield "department", message("forbidden_department", loc, value=dept)

    def _bulk_checks(self, conn, entity: Entity, good: list[tuple[int, dict]], loc: str, user=None):
        """The database checks of _record_checks, batched over many rows, plus duplicates within them."""
        t = self.schema.table(entity)
        if user is not None:
            for n, r in good:
                for key, text in self._department_check(entity, r, None, loc, user):
                    yield n, key, text
        for f in entity.fields.values():
            if f.type in ("reference", "user"):
                target = self.schema.system["users"] if f.type == "user" else self.schema.table(self.entity(f.to))
                scope = [] if f.type == "user" else self._readable(self.entity(f.to), target, user)
                wanted = {r[f.name] for _, r in good if r.get(f.name) is not None}
                found = self._existing(conn, target.c.id, wanted, scope)
                key = "no_such_user" if f.type == "user" else "no_such_record"
                for n, r in good:
                    if r.get(f.name) is not None and r[f.name] not in found:
                        yield n, f.name, message(key, loc, value=r[f.name])
            if f.unique:
                ftype = self.types.for_field(f)
                to_db = None if type(ftype).to_db is FieldType.to_db else ftype.to_db  # (identity: skipped)
                seen: dict = {}
                db_values = {}
                name = f.name
                for n, r in good:
                    dbv = r.get(name)
                    if dbv is None:
                        continue
                    if to_db is not None:
                        dbv = to_db(f, dbv)
                    db_values[n] = dbv
                    if dbv in seen:
                        yield n, f.name, message("unique", loc) + f" (row {seen[dbv]})"
                    else:
                        seen[dbv] = n
                taken = self._existing(conn, t.c[f.name], set(db_values.values()))
                for n, dbv in db_values.items():
                    if dbv in taken:
                        yield n, f.name, message("unique", loc)
        for sub in entity.subtables():
            for f in sub.child.fields.values():
                if f.type == "reference":
                    tt = self.schema.table(self.entity(f.to))
                    wanted = {row[f.name] for _, r in good for row in r.get(sub.name) or []
                              if row.get(f.name) is not None}
                    found = self._existing(conn, tt.c.id, wanted, self._readable(self.entity(f.to), tt, user))
                    for n, r in good:
                        for i, row in enumerate(r.get(sub.name) or []):
                            if row.get(f.name) is not None and row[f.name] not in found:
                                yield n, f"{sub.name}.{i}.{f.name}", message("no_such_record", loc, value=row[f.name])

    def _existing(self, conn, column, values: set, where: list | None = None) -> set:
        """Which of `values` the column holds (among the rows meeting `where`, e.g. a read scope)."""
        values = list(values)
        if not where:
            found = existing_values(conn, column, values, CHUNK)  # SQLite: straight to the driver
            if found is not None:
                return found
        found = set()
        for i in range(0, len(values), CHUNK):
            found.update(r[0] for r in conn.execute(sa.select(column).where(column.in_(values[i:i + CHUNK]),
                                                                            *(where or []))))
        return found

    def _insert(self, conn, entity: Entity, records: list[dict], user, action: str, note=None,
                validated: bool = True) -> list[int]:
        t = self.schema.table(entity)
        now = self.tenant.now()
        uid = getattr(user, "id", None)
        self._assign_autonumbers(conn, entity, records, now)
        # On SQLite the rows go to the driver as lists (bulk.RecordInsert); elsewhere through Core.
        fast = self._record_insert(entity, conn.dialect)
        rows = []
        fixed = dict(created_at=now, created_by=uid, updated_at=now, updated_by=uid, version=1)
        for rec in records:
            rec.update(fixed)
            if "owner" not in rec:
                rec["owner"] = None
            if "department" not in rec:
                rec["department"] = None
            if not fast.ok:
                row = self._to_row(entity, rec, every_column=True)
                row.update(fixed, owner=rec["owner"], department=rec["department"])
                rows.append(row)
        ids = allocate_ids(conn, t, len(records))
        try:
            if fast.ok:  # the driver rows and each record's audit changes in one pass
                driver_rows, changes = fast.rows_and_changes(records, ids, fixed, self._json)
                fast.insert.run(conn, driver_rows)
            else:
                for rid, row in zip(ids, rows):
                    row["id"] = rid
                conn.execute(t.insert(), rows)
        except sa.exc.IntegrityError as exc:
            raise self._integrity_error(entity, exc) from None
        for sub in entity.subtables():
            for rid, rec in zip(ids, records):
                self._replace_children(conn, sub, rid, rec.get(sub.name) or [], delete_first=False)
        # One audit row per record with its initial values {field: [None, value]} (what history shows).
        plan = self._plan(entity)
        if not fast.ok:
            changes = [AUDIT_JSON(creation_changes(plan, rec, self._json)) for rec in records]
        for rid, rec in zip(ids, records):
            rec["id"] = rid
        self.tenant.audit.append_created(conn, ids, changes, dict(
            at=now, user_id=uid, username=getattr(user, "username", None) or "system", entity=entity.name,
            action=action, note=note), fast if fast.ok else None)
        return ids

    def _record_insert(self, entity: Entity, dialect) -> RecordInsert:
        return _memo(self._inserts, entity, lambda: RecordInsert(
            self.schema.table(entity), dialect, self._typed(entity), self._plan(entity),
            self.schema.system["audit"]), dialect.name)

    def _replace_children(self, conn, sub: Field, parent_id: int, rows: list[dict], delete_first=True) -> None:
        ct = self.schema.table(sub.child)
        if delete_first:
            for grandchild in sub.child.subtables():
                old_ids = [r[0] for r in conn.execute(sa.select(ct.c.id).where(ct.c.parent_id == parent_id))]
                for oid in old_ids:
                    self._replace_children(conn, grandchild, oid, [])
            conn.execute(ct.delete().where(ct.c.parent_id == parent_id))
        if not rows:
            return
        payload = []
        for pos, row in enumerate(rows):
            r = self._to_row(sub.child, row, every_column=True)
            r.update(parent_id=parent_id, position=pos)
            payload.append(r)
        ids = allocate_ids(conn, ct, len(payload))
        for cid, r in zip(ids, payload):
            r["id"] = cid
        conn.execute(ct.insert(), payload)
        for grandchild in sub.child.subtables():
            for cid, row in zip(ids, rows):
                self._replace_children(conn, grandchild, cid, row.get(grandchild.name) or [], delete_first=False)

    def _assign_autonumbers(self, conn, entity: Entity, records: list[dict], now: datetime) -> None:
        fields = [f for f in entity.fields.values() if f.type == "autonumber"]
        if not fields:
            return
        from ..fields.computed import autonumber_period, render_autonumber

        local = now.astimezone(self.tenant.timezone)
        for f in fields:
            name = f"{entity.table_name}.{f.name}:{autonumber_period(f.format, local)}"
            seqs = next_values(conn, self.schema.system["sequences"], name, len(records))
            for rec, seq in zip(records, seqs):
                rec[f.name] = render_autonumber(f.format, seq, local)

    def _integrity_error(self, entity: Entity, exc) -> ValidationFailed:
        text = str(exc.orig).lower()
        for f in entity.fields.values():
            if f.unique and f.name in text:
                return ValidationFailed({f.name: [message("unique", self.model.tenant.locale)]})
        return ValidationFailed({"_record": [message("unique", self.model.tenant.locale)]})

    def _changes(self, entity: Entity, old: dict, new: dict) -> dict:
        changes = {}
        for name, f in entity.fields.items():
            if f.child is not None:
                before = [self._child_json(f, r) for r in old.get(name) or []]
                after = [self._child_json(f, r) for r in new.get(name) or []]
                if before != after:
                    changes[name] = [before, after]
                continue
            if old.get(name) != new.get(name):
                ftype = self.types.for_field(f)
                changes[name] = [ftype.to_json(f, old.get(name)), ftype.to_json(f, new.get(name))]
        for name in ("owner", "department"):
            if old.get(name) != new.get(name):
                changes[name] = [old.get(name), new.get(name)]
        return changes

    def _child_json(self, sub: Field, row: dict) -> dict:
        return {f.name: self.types.for_field(f).to_json(f, row.get(f.name)) for f in sub.child.fields.values()}

    def _conflict(self, conn, entity: Entity, old: dict, loc: str, user=None) -> Conflict:
        current = self._fetch(conn, entity, old["id"])
        # The newest change the user may know of: one to hidden fields only would tell when they moved.
        last = next((h for h in read_history(conn, self.schema.system["audit"], entity.name, old["id"])
                     if not self.permissions.touches_only_hidden(entity, user, h["changes"])), {})
        who = last.get("username") or "?"
        when = last.get("at")
        when_text = when.astimezone(self.tenant.timezone).strftime("%Y-%m-%d %H:%M") if when else "?"
        changes = last.get("changes") or {}
        if not self.permissions.is_superuser(user):
            changes = self.permissions.visible_changes(entity, user, changes)
        return Conflict(message("conflict", loc, who=who, when=when_text),
                        current_version=(current or old)["version"], changed_by=who, changes=changes)

    # --- presentation -------------------------------------------------------------------------

    def to_json(self, entity_name: str, record: dict) -> dict:
        """A record as JSON-able data (API, export, audit); subtables as lists of row objects."""
        entity = self.entity(entity_name) if isinstance(entity_name, str) else entity_name
        return self._json(entity, record)

    def _json(self, entity: Entity, record: dict) -> dict:
        out = {}
        for name in entity.system_fields:
            if name in record:
                v = record[name]
                out[name] = v.isoformat() if isinstance(v, datetime) else v
        for name, _from_db, to_json, child, _stored in self._plan(entity):
            if name not in record:
                continue
            if child is not None:
                out[name] = [self._json(child, r) for r in record[name] or []]
            else:
                out[name] = record[name] if to_json is None else to_json(record[name])
        return out

    def title_of(self, entity: Entity | str, record: dict) -> str:
        entity = self.entity(entity) if isinstance(entity, str) else entity
        if entity.title and record.get(entity.title) not in (None, ""):
            f = entity.fields[entity.title]
            return self.types.for_field(f).to_text(f, record[entity.title], self.tenant.field_context())
        return f"{entity.label.get()} #{record.get('id')}"

    def titles(self, entity_name: str, ids: Iterable, user=None) -> dict:
        """{id: title} for records of an entity (for showing references).

        With `user`, records outside their read scope are left out (shown as "#id" by callers), so a
        reference never reveals the name of a record the user may not see.
        """
        entity = self.entity(entity_name)
        ids = {as_id(i) for i in ids} - {None}
        if not ids:
            return {}
        t = self.schema.table(entity)
        cols = [t.c.id] + ([t.c[entity.title]] if entity.title else [])
        conds = [t.c.id.in_(list(ids))]
        if user is not None:
            if not self.permissions.can(entity, user, "read"):
                return {}
            scope = self.permissions.row_filter(entity, t, user, "read")
            if scope is not None:
                conds.append(scope)
            if entity.title and entity.title not in self.permissions.visible_fields(entity, user):
                cols = [t.c.id]
        out = {}
        with self.tenant.db.connect() as conn:
            for row in conn.execute(sa.select(*cols).where(*conds)).mappings():
                out[row["id"]] = self.title_of(entity, dict(row))
        return out

    def user_names(self, ids: Iterable) -> dict:
        ids = {i for i in ids if i is not None}
        if not ids:
            return {}
        u = self.schema.system["users"]
        with self.tenant.db.connect() as conn:
            return {r.id: (r.display_name or r.username) for r in
                    conn.execute(sa.select(u.c.id, u.c.username, u.c.display_name).where(u.c.id.in_(list(ids))))}

    def display(self, entity_name: str, record: dict, locale: str | None = None, user=None) -> dict:
        """{field: text} formatted for people; references by title, users by name, options by label."""
        return self.display_many(entity_name, [record], locale, user)[0]

    def display_many(self, entity_name: str, records: list[dict], locale: str | None = None,
                     user=None) -> list[dict]:
        """display() for many records with one title query per referenced entity and one for users."""
        entity = self.entity(entity_name) if isinstance(entity_name, str) else entity_name
        ctx = self.tenant.field_context(locale)
        wanted_users: set = set()
        wanted_refs: dict[str, set] = {}
        self._collect_lookups(entity, records, wanted_users, wanted_refs)
        users = self.user_names(wanted_users)
        titles = {target: self.titles(target, ids, user) for target, ids in wanted_refs.items()}
        return [self._display(entity, r, ctx, users, titles) for r in records]

    def _collect_lookups(self, entity: Entity, records: list[dict], users: set, refs: dict) -> None:
        for rec in records:
            users.update(rec.get(n) for n in ("created_by", "updated_by", "owner") if rec.get(n) is not None)
            for f in entity.fields.values():
                v = rec.get(f.name)
                if v is None:
                    continue
                if f.type == "user":
                    users.add(v)
                elif f.type == "reference":
                    refs.setdefault(f.to, set()).add(v)
                elif f.child is not None:
                    self._collect_lookups(f.child, v or [], users, refs)

    def _display(self, entity: Entity, record: dict, ctx, users: dict, titles: dict) -> dict:
        out = {}
        for name in entity.system_fields:
            if name not in record or name in ("parent_id", "position"):
                continue
            f = system_field(name)
            v = record[name]
            if f.type == "user":
                out[name] = users.get(v, "" if v is None else f"#{v}")
            else:
                out[name] = self.types.for_field(f).to_text(f, v, ctx)
        for f in entity.fields.values():
            if f.name not in record:
                continue
            v = record[f.name]
            if f.type == "reference":
                out[f.name] = "" if v is None else titles.get(f.to, {}).get(v, f"#{v}")
            elif f.type == "user":
                out[f.name] = "" if v is None else users.get(v, f"#{v}")
            elif f.child is not None:
                out[f.name] = [self._display(f.child, r, ctx, users, titles) for r in v or []]
            else:
                out[f.name] = self.types.for_field(f).to_text(f, v, ctx)
        return out

    def preview(self, entity_name: str, values: Mapping, user=None, locale: str | None = None) -> dict:
        """The record a form would make, formulas computed, without saving or raising (live totals)."""
        entity = self.entity(entity_name)
        loc = self._locale(user, locale)
        access = self.permissions.field_access(entity, user)
        uploads = UploadLog(self.tenant.storage)  # nothing is saved by a preview, so nothing is kept
        try:
            with self.tenant.db.connect() as conn:
                ctx = self.ctx(loc, conn, uploads, user=user)
                prep = self.preparer(entity)
                errors = Errors(loc)
                clean = prep.coerce_input(dict(values), None, ctx, errors,
                                          writable={n for n, a in access.items() if a == "write"},
                                          hidden={n for n, a in access.items() if a == "hidden"})
                record = prep.complete(clean, None, ctx, errors, loader=self._loader(conn))
        finally:
            uploads.discard()
        return self.permissions.mask(entity, user, record)


class _Nested:
    """Use the caller's connection (and its transaction) instead of opening one."""

    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self.conn

    def __exit__(self, *exc):
        return False


def allocate_ids(conn: sa.Connection, table: sa.Table, n: int) -> list[int]:
    """Ids for `n` new rows, so a bulk insert can be one executemany (RETURNING would go row by row).

    PostgreSQL draws them from the id column's own sequence; SQLite continues after the highest id
    the table ever had (its AUTOINCREMENT counter, so a deleted newest record's id is not handed out
    again), which is safe because every write transaction holds the database's write lock (BEGIN
    IMMEDIATE); inserting them moves that counter on.
    """
    if n == 0:
        return []
    if conn.dialect.name == "postgresql":
        seq = sa.func.pg_get_serial_sequence(table.name, "id")
        return list(conn.execute(sa.select(sa.func.nextval(seq)).select_from(
            sa.func.generate_series(1, n))).scalars())
    last = max(conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0, sqlite_counter(conn, table.name))
    return list(range(last + 1, last + n + 1))


def _unique_ids(ids: Iterable) -> list[int]:
    out: list[int] = []
    for rid in ids:
        rid = _as_id(rid)
        if rid not in out:
            out.append(rid)
    return out


def _memo(store: dict, entity: Entity, build, *more):
    """`build()`, kept per Entity *object*: an Entity of an older config (a caller that began before
    a reload) gets an entry of its own instead of poisoning the current config's one."""
    key = (id(entity), *more)
    hit = store.get(key)
    if hit is None or hit[0] is not entity:
        hit = store[key] = (entity, build())
    return hit[1]


def _version(version, loc: str) -> int | None:
    """The version a write is based on, or a 422 naming the `version` field."""
    if version is None:
        return None
    try:
        return int(version)
    except (TypeError, ValueError):
        raise ValidationFailed({"version": [message("not_an_integer", loc)]}) from None


def _as_id(rid) -> int:
    """A record id, or NotFound: nothing else (and no number beyond a BIGINT) names a record."""
    rid = as_id(rid)
    if rid is None:
        raise NotFound("not found")
    return rid
