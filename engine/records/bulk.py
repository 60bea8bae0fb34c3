"""Bulk inserts of new records (create_many, import): rows straight to the driver, compact audit rows.

SQLAlchemy's executemany of a list of dicts compiles the statement, then for every row builds a
parameter dict, looks up each bind and runs the column type's bind processor. For the thousands of
rows of an import that per-row work costs more than the insert itself. `DriverInsert` compiles the
INSERT once, keeps each column's bind processor (the same ones SQLAlchemy would run) and hands the
DB-API's executemany plain lists — what SQLAlchemy sends the driver, built without its per-row work.
It is used on SQLite (qmark parameters); other databases keep SQLAlchemy's own executemany.

`creation_changes` is the audit trail's {field: [None, value]} of a new record, built from the
entity's per-field JSON converters (`RecordsService._plan`) instead of a whole `to_json` per record.
"""
from __future__ import annotations

import json
from datetime import date
from functools import partial
from operator import itemgetter
from json.encoder import c_make_encoder, encode_basestring
from typing import Any, Callable, Iterable

import sqlalchemy as sa

from ..fields.base import FieldType
from ..fields.computed import FormulaType

# audit.canonical_json (sorted keys), with its encoder built once here too.
AUDIT_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode
# The same text from the C encoder json.dumps uses, made once and without the circular-reference
# markers (a record's JSON values are trees): about a third cheaper per record.
_C_AUDIT_JSON = (c_make_encoder(None, str, encode_basestring, None, ": ", ", ", True, False, True)
                 if c_make_encoder is not None else None)


def json_fragment(value: Any) -> str:
    """The JSON text AUDIT_JSON gives `value` inside a document (text and integers directly)."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    if _C_AUDIT_JSON is None:
        return AUDIT_JSON(value)
    return "".join(_C_AUDIT_JSON(value, 0))


def change_prefix(name: str) -> str:
    """The text before a new value in AUDIT_JSON({name: [None, value], …}) (after "{" or ", ")."""
    return AUDIT_JSON(name) + ": [null, "


def _then(first: Callable | None, second: Callable | None) -> Callable | None:
    """second(first(v)), skipping whichever is None."""
    if first is None:
        return second
    if second is None:
        return first
    return lambda v: second(first(v))


_SAMPLE_DATES = (date(1, 1, 1), date(999, 12, 31), date(2026, 11, 22), date(9999, 12, 31))


def _quicker(processor: Callable | None) -> Callable | None:
    """The bind processor, or for one that writes a date as its ISO text (SQLite's DATE: a dict and
    a %-format per value) the same text from date.isoformat; any other value still goes to it."""
    if processor is None:
        return None
    try:
        iso = all(processor(d) == d.isoformat() for d in _SAMPLE_DATES)
    except Exception:  # noqa: BLE001 - a processor for other values: keep it as it is
        iso = False
    if not iso:
        return processor

    def process(value):
        return value.isoformat() if type(value) is date else processor(value)

    return process


class DriverInsert:
    """INSERT INTO table (keys) compiled once; `run` sends rows of {key: value} as driver parameters.

    `ok` is False when the driver path cannot reproduce SQLAlchemy's insert exactly (not SQLite, or
    the statement needs more than the given keys, e.g. Python-side column defaults): use Core then.
    """

    def __init__(self, table: sa.Table, dialect, keys: list[str]):
        self.keys = list(keys)
        compiled = table.insert().compile(dialect=dialect, column_keys=self.keys)
        order = list(getattr(compiled, "positiontup", None) or ())
        self.ok = (dialect.name == "sqlite" and compiled.positional and sorted(order) == sorted(self.keys)
                   and not compiled.insert_prefetch and not compiled.postfetch)
        self.sql = compiled.string
        self.position = {k: i for i, k in enumerate(order)}
        self.processors = {k: _quicker(table.c[k].type.dialect_impl(dialect).bind_processor(dialect))
                           for k in self.keys}

    def template(self, constants: dict[str, Any]) -> list:
        """A row with the batch's constant values in place (each through its bind processor once)."""
        row: list = [None] * len(self.keys)
        for key, value in constants.items():
            proc = self.processors[key]
            row[self.position[key]] = value if proc is None else proc(value)
        return row

    def run(self, conn: sa.Connection, rows: list[tuple]) -> None:
        if rows:
            conn.exec_driver_sql(self.sql, rows)


_ABSENT = object()  # a field the record does not have (None is a value)
STAMPS = ("owner", "department", "created_at", "created_by", "updated_at", "updated_by", "version")
AUDIT_KEYS = ("at", "user_id", "username", "entity", "record_id", "action", "changes", "note")


def _method(ftype: FieldType, field, name: str) -> Callable | None:
    """``partial(ftype.<name>, field)``, None when it is FieldType's identity; a formula's to_db and
    to_json are those of the type it returns (FormulaType delegates each call to it)."""
    target = ftype
    if type(ftype) is FormulaType:
        try:
            target = ftype.delegate(field)
        except KeyError:  # an unknown `returns` (check refuses it): FormulaType raises per call
            pass
    if getattr(type(target), name) is getattr(FieldType, name):
        return None
    return partial(getattr(target, name), field)


class RecordInsert:
    """How new records of one entity become driver rows: per stored field its to_db and bind processor."""

    def __init__(self, table: sa.Table, dialect, typed: list, plan: tuple, audit_table: sa.Table):
        stored = [(f, t) for f, t in typed if t.stored]
        keys = ["id", *(f.name for f, _ in stored), *STAMPS]
        self.insert = DriverInsert(table, dialect, keys)
        self.audit = DriverInsert(audit_table, dialect, list(AUDIT_KEYS))
        self.ok = self.insert.ok and self.audit.ok and len(set(keys)) == len(keys)
        if not self.ok:
            return
        pos = self.insert.position
        self.id_pos = pos["id"]
        self.slots = []      # (position, field name, value → driver value or None, driver value when absent)
        for f, ftype in stored:
            to_db = _method(ftype, f, "to_db")
            proc = self.insert.processors[f.name]
            self.slots.append((pos[f.name], f.name, _then(to_db, proc), None if proc is None else proc(None)))
        # Per field in field order: (name, position or None when not stored, conv, absent, to_json, child,
        # the JSON text before its value in the audit changes):
        # one pass over a record gives its driver row and its audit changes.
        by_name = {name: (p, conv, absent) for p, name, conv, absent in self.slots}
        typed_by_name = {f.name: (f, t) for f, t in typed}
        self.fields = [(name, *by_name.get(name, (None, None, None)),
                        to_json if child is not None else _method(*typed_by_name[name][::-1], "to_json"), child,
                        change_prefix(name))
                       for name, _from_db, to_json, child, _stored in sorted(plan, key=lambda p: p[0])]
        self.owner = (pos["owner"], self.insert.processors["owner"])
        self.department = (pos["department"], self.insert.processors["department"])
        self.audit_id_pos = self.audit.position["record_id"]
        self.audit_changes_pos = self.audit.position["changes"]
        self.flat = self._flat_plan()

    def _flat_plan(self) -> tuple | None:
        """How `rows_and_changes` may treat a record as a list of values: when every field is stored,
        none is a subtable, and an absent or empty value is NULL in the row and left out of the
        changes whatever its converters (they give None for None). None otherwise."""
        names, db_convs, json_convs, prefixes = [], [], [], []
        for i, (name, pos, conv, absent, to_json, child, prefix) in enumerate(self.fields):
            if pos is None or child is not None or absent is not None:
                return None
            try:
                if (conv is not None and conv(None) is not None) or (to_json is not None and to_json(None)
                                                                    not in (None, "", [])):
                    return None
            except Exception:  # noqa: BLE001 - a converter that refuses None: keep the general loop
                return None
            names.append(name)
            prefixes.append(prefix)
            if conv is not None:
                db_convs.append((i, conv))
            if to_json is not None:
                json_convs.append((i, to_json))
        # The driver row is the batch's constants, then id, owner, department and the fields' values
        # (in field order) picked into the INSERT's column order by one itemgetter.
        constants = [k for k in self.insert.keys if k not in ("id", "owner", "department") and k not in names]
        source = [*constants, "id", "owner", "department", *names]
        by_key = {k: i for i, k in enumerate(source)}
        order = sorted(self.insert.keys, key=self.insert.position.__getitem__)
        return names, tuple(db_convs), tuple(json_convs), prefixes, constants, itemgetter(*(by_key[k] for k in order))

    def rows_and_changes(self, records: list[dict], ids: list[int], stamps: dict,
                         child_json: Callable) -> tuple[list[tuple], list[str]]:
        """One driver row per record (`stamps`: created_at, created_by, updated_at, updated_by, version)
        and, per record, the JSON of its `creation_changes`, in one pass over its fields."""
        if self.flat is not None:
            return self._flat_rows_and_changes(records, ids, stamps)
        base = self.insert.template(stamps)
        id_pos, fields = self.id_pos, self.fields
        (owner_pos, owner_proc), (dept_pos, dept_proc) = self.owner, self.department
        fragment, encode_text, absent_key = json_fragment, encode_basestring, _ABSENT
        rows, texts = [], []
        for rid, rec in zip(ids, records):
            row = base.copy()
            row[id_pos] = rid
            parts = []  # "name": [null, value] of each non-empty field, in field order
            for name, pos, conv, absent, to_json, child, prefix in fields:
                v = rec.get(name, absent_key)
                if v is absent_key:
                    if pos is not None:
                        row[pos] = absent
                    continue
                if pos is not None:
                    row[pos] = v if conv is None else conv(v)
                v = change_value(v, to_json, child, child_json)
                if v is not None:
                    parts.append(f"{prefix}{encode_text(v) if type(v) is str else fragment(v)}]")
            v = rec.get("owner")
            row[owner_pos] = v if owner_proc is None else owner_proc(v)
            v = rec.get("department")
            row[dept_pos] = v if dept_proc is None else dept_proc(v)
            rows.append(tuple(row))
            texts.append("{" + ", ".join(parts) + "}")
        return rows, texts

    def _flat_rows_and_changes(self, records: list[dict], ids: list[int],
                               stamps: dict) -> tuple[list[tuple], list[str]]:
        """rows_and_changes for a flat plan: each record's values fetched in one map, converted where
        a field has a converter, the audit text joined from the non-empty ones."""
        names, db_convs, json_convs, prefixes, constant_keys, pick = self.flat
        template = self.insert.template(stamps)
        position = self.insert.position
        constants = tuple(template[position[k]] for k in constant_keys)
        (_, owner_proc), (_, dept_proc) = self.owner, self.department
        fragment, encode_text = json_fragment, encode_basestring
        rows, texts = [], []
        offset = len(constants) + 3  # the fields' values follow the constants, id, owner and department
        db_convs = [(i + offset, i, conv) for i, conv in db_convs]
        for rid, rec in zip(ids, records):
            values = list(map(rec.get, names))  # None where absent
            owner, dept = rec.get("owner"), rec.get("department")
            source = [*constants, rid, owner if owner_proc is None else owner_proc(owner),
                      dept if dept_proc is None else dept_proc(dept)]
            source += values
            for at, i, conv in db_convs:
                v = values[i]
                if v is not None:
                    source[at] = conv(v)
            rows.append(pick(source))
            for i, to_json in json_convs:
                v = values[i]
                if v is not None:
                    values[i] = to_json(v)
            # (a value that is true is not empty; only a false one needs the three comparisons)
            texts.append("{" + ", ".join([f"{prefix}{encode_text(v) if type(v) is str else fragment(v)}]"
                                          for prefix, v in zip(prefixes, values)
                                          if v or (v is not None and v != "" and v != [])]) + "}")
        return rows, texts

    def audit_rows(self, ids: list[int], changes: Iterable[str], constants: dict) -> list[tuple]:
        """fw_audit driver rows: `constants` (at, user_id, username, entity, action, note) and per
        record its id and its changes JSON."""
        base = self.audit.template(constants)
        id_pos, ch_pos = self.audit_id_pos, self.audit_changes_pos
        out = []
        for rid, text in zip(ids, changes):
            row = base.copy()
            row[id_pos] = rid
            row[ch_pos] = text
            out.append(tuple(row))  # exec_driver_sql takes tuples
        return out


def creation_changes(plan: tuple, record: dict, child_json: Callable) -> dict:
    """{field: [None, JSON value]} of every non-empty field of a new record, in field order: what
    `{k: [None, v] for k, v in to_json(record).items() if k in entity.fields and not is_empty(v)}` gives.

    `plan` is RecordsService._plan(entity); `child_json(child_entity, row)` serialises a subtable row.
    """
    changes = {}
    for name, _from_db, to_json, child, _stored in plan:
        if name in record:
            v = change_value(record[name], to_json, child, child_json)
            if v is not None:
                changes[name] = [None, v]
    return changes


def change_value(value: Any, to_json: Callable | None, child, child_json: Callable) -> Any:
    """A field's value as an audit row's changes hold it (JSON form; a subtable's rows each through
    `child_json`), or None when it is empty and left out."""
    if child is not None:
        value = [child_json(child, r) for r in value or []]
    elif to_json is not None:
        value = to_json(value)
    return None if value is None or value == "" or value == [] else value


def existing_values(conn: sa.Connection, column: sa.Column, values: list, chunk: int) -> set | None:
    """Which of `values` the column holds: on SQLite one driver-level ``SELECT col FROM t WHERE col IN
    (?, …)`` per `chunk` values, each value through the column's bind processor and each result
    through its result processor, as SQLAlchemy would (None elsewhere: use Core)."""
    dialect = conn.dialect
    if dialect.name != "sqlite":
        return None
    impl = column.type.dialect_impl(dialect)
    bind, result = impl.bind_processor(dialect), impl.result_processor(dialect, None)
    quote = dialect.identifier_preparer.quote
    head = f"SELECT {quote(column.name)} FROM {quote(column.table.name)} WHERE {quote(column.name)} IN "
    found: set = set()
    for i in range(0, len(values), chunk):
        part = values[i:i + chunk]
        params = tuple(part) if bind is None else tuple(bind(v) for v in part)
        rows = conn.exec_driver_sql(head + "(" + ", ".join("?" * len(part)) + ")", params).fetchall()
        if result is None:
            found.update(r[0] for r in rows)
        else:
            found.update(result(r[0]) for r in rows)
    return found
