"""Turn submitted values into a valid record: coerce, default, compute formulas, check every rule."""
from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Callable

from ..errors import FieldValueError
from ..i18n import message
from ..metadata.model import Entity, Field

# What a caller may set among the system fields (the rest are the engine's).
WRITABLE_SYSTEM = ("owner", "department")
READ_ONLY_SYSTEM = ("id", "created_at", "created_by", "updated_at", "updated_by", "version")
# Coerced values one object of which may be shared by many records (Preparer.completer).
_IMMUTABLE = frozenset({str, int, bool, Decimal, date, datetime, time})
_UNREADABLE = object()  # a constant default that does not coerce (the general path reports it)


class Errors:
    """Collects messages per field key in one language; keys are field names, "lines.0.qty" or "_record"."""

    def __init__(self, locale: str):
        self.locale = locale
        self.by_key: dict[str, list[str]] = {}

    def add(self, key: str, msg_key: str, **params) -> None:
        self.add_text(key, message(msg_key, self.locale, **params))

    def add_text(self, key: str, text: str) -> None:
        bucket = self.by_key.setdefault(key, [])
        if text not in bucket:
            bucket.append(text)

    def __bool__(self) -> bool:
        return bool(self.by_key)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


class Preparer:
    """Coercion, defaults, formulas, required and rules for one entity, shared by every write path."""

    def __init__(self, tenant, entity: Entity):
        self.tenant = tenant
        self.entity = entity
        self.types = tenant.field_types
        from ..expressions import formula_order

        self.formulas = [entity.fields[n] for n in formula_order(entity)]
        self.children = {f.name: Preparer(tenant, f.child) for f in entity.subtables()}
        self.typed = {name: (f, self.types.for_field(f)) for name, f in entity.fields.items()}
        self.required = [name for name, (f, t) in self.typed.items() if f.required and not t.computed]
        # The fields a new record may get a default for (_default gives None for every other field).
        self.defaultable = [(name, f) for name, (f, t) in self.typed.items()
                            if f.child is not None or (not t.computed and (f.default_expr is not None
                                                                           or f.default is not None))]

    def row_coercer(self, ctx, writable: set | None = None, hidden: set | None = None) -> Callable:
        """``coerce_row(values, errors) -> dict``: what ``coerce_input(values, None, ctx, errors,
        writable=writable, hidden=hidden)`` returns and adds to `errors`, for many new records with
        one context (create_many, import). The plain fields a caller may write are coerced by
        per-field compiled coercers (engine.fields.fast); every other key goes through coerce_input."""
        from ..fields.fast import coercer

        plain: dict[str, tuple] = {}
        for name, (field, ftype) in self.typed.items():
            if (hidden and name in hidden) or ftype.computed or field.child is not None \
                    or (writable is not None and name not in writable):
                continue
            plain[name] = (field, coercer(ftype, field, ctx))
        general = self.coerce_input
        add_error = self._add_value_error

        coercers = {name: run for name, (_field, run) in plain.items()}

        def coerce_row(values, errors: Errors) -> dict:
            try:  # a row of plain fields that all read well: one comprehension
                return {key: coercers[key](raw) for key, raw in values.items()}
            except (KeyError, FieldValueError):
                pass  # (coercers are pure: the loop below does it again, key by key, with every error)
            out: dict = {}
            for key, raw in values.items():
                entry = plain.get(key)
                if entry is None:
                    out.update(general({key: raw}, None, ctx, errors, writable=writable, hidden=hidden))
                    continue
                try:
                    out[key] = entry[1](raw)
                except FieldValueError as exc:
                    add_error(errors, key, entry[0], exc)
            return out

        return coerce_row

    def coerce_input(self, values: dict, old: dict | None, ctx, errors: Errors, prefix: str = "",
                     writable: set | None = None, hidden: set | None = None) -> dict:
        """Coerce the submitted values; unknown and read-only keys are errors, never ignored."""
        out: dict = {}
        for key, raw in values.items():
            ekey = prefix + key
            field, ftype = self.typed.get(key, (None, None))
            if hidden and key in hidden:  # a field the caller may not see is, to them, no field at all
                field = None
            if field is None:
                if not self.entity.is_child and key in WRITABLE_SYSTEM:
                    out[key] = self._coerce_system(key, raw, ctx, errors, ekey)
                elif key in READ_ONLY_SYSTEM or (self.entity.is_child and key in ("id", "parent_id", "position")):
                    if key == "version" or (old is not None and _same(old.get(key), raw)) or raw in (None, ""):
                        continue  # echoing back what was read is harmless
                    errors.add(ekey, "read_only")
                else:
                    errors.add(ekey, "unknown_field")
                continue
            if ftype.computed or (writable is not None and key not in writable):
                current = (old or {}).get(key)
                if not (is_empty(raw) and is_empty(current)) and not _same_json(ftype, field, current, raw):
                    errors.add(ekey, "read_only")
                continue
            if field.child is not None:
                out[key] = self._coerce_rows(field, raw, old, ctx, errors, ekey)
                continue
            try:
                value = ftype.coerce(field, raw, ctx)
                if value is not None:
                    ftype.validate(field, value, ctx)
                out[key] = value
            except FieldValueError as exc:
                self._add_value_error(errors, ekey, field, exc)
        return out

    def _coerce_rows(self, field: Field, raw, old, ctx, errors: Errors, ekey: str) -> list:
        ftype = self.types.for_field(field)
        try:
            rows = ftype.coerce(field, raw, ctx) or []
        except FieldValueError as exc:
            self._add_value_error(errors, ekey, field, exc)
            return []
        child = self.children[field.name]
        # Rows echoed back from a read carry their id: compare their read-only values with that row.
        old_rows = {r.get("id"): r for r in (old or {}).get(field.name) or []}
        out = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                errors.add(f"{ekey}.{i}", "not_a_list")
                continue
            before = old_rows.get(row.get("id")) if row.get("id") is not None else None
            clean = child.coerce_input(row, before, ctx, errors, prefix=f"{ekey}.{i}.")
            out.append(child.complete(clean, None, ctx, errors, prefix=f"{ekey}.{i}."))
        return out

    def _coerce_system(self, key: str, raw, ctx, errors: Errors, ekey: str):
        from ..records.query import system_field

        field = system_field(key)
        try:
            return self.types.for_field(field).coerce(field, raw, ctx)
        except FieldValueError as exc:
            self._add_value_error(errors, ekey, field, exc)
            return None

    def _add_value_error(self, errors: Errors, key: str, field: Field, exc: FieldValueError) -> None:
        if exc.key == "pattern" and field.pattern_message is not None:
            errors.add_text(key, field.pattern_message.get(errors.locale))
        else:
            errors.add(key, exc.key, **exc.params)

    def complete(self, values: dict, old: dict | None, ctx, errors: Errors, prefix: str = "",
                 loader: Callable | None = None, now: datetime | None = None) -> dict:
        """Merge onto `old` (or defaults on create), compute formulas, check required and rules."""
        now = now or ctx.now()
        if old is None:
            record = {}
            for name, field in self.defaultable:
                if name in values:
                    continue
                default = self._default(field, values, ctx, loader, now, errors, prefix)
                if default is not None:
                    record[name] = default
            record.update(values)
        else:
            record = {**old, **values}
        self.compute(record, loader, now, ctx, errors, prefix)
        for name in self.required:
            # A value that was given but unreadable already has its own error; "required" would mislead.
            v = record.get(name)
            if (v is None or v == "" or v == []) and prefix + name not in errors.by_key:  # is_empty(v)
                errors.add(prefix + name, "required")
        for rule in self.entity.rules:
            try:
                ok = rule.check.holds(record, loader=loader, now=now, tz=ctx.timezone)
            except Exception as exc:  # noqa: BLE001 - a failing rule is reported, never a crash
                errors.add(prefix + (rule.field or "_record"), "expression_failed", detail=str(exc))
                continue
            if not ok:
                errors.add_text(prefix + (rule.field or "_record"), rule.message.get(errors.locale))
        return record

    def completer(self, ctx, loader: Callable | None = None, now: datetime | None = None) -> Callable:
        """``complete_new(values, errors) -> dict``: what ``complete(values, None, ctx, errors,
        loader=loader, now=now)`` returns and adds to `errors`, for many new records with one
        context (create_many, import): every expression bound once (CompiledExpression.bind), the
        coerced value of each constant default computed once when it is immutable. `values` is
        handed over: when no default goes before its keys it is completed and returned itself."""
        now = now or ctx.now()
        tz = ctx.timezone
        bound = {"loader": loader, "now": now, "tz": tz}
        defaults: list[tuple] = []  # (name, kind, payload): "value" a ready value, "expr" a bound
        for name, field in self.defaultable:  # expression and its type, "general" via _default
            ftype = self.typed[name][1]
            if field.child is None and field.default_expr is not None:
                defaults.append((name, "expr", (field, ftype, field.default_expr.bind(**bound))))
                continue
            if field.child is None and field.default is not None:
                try:
                    value = ftype.coerce(field, field.default, ctx)
                except Exception:  # noqa: BLE001 - reported per record by the general path
                    value = _UNREADABLE
                if type(value) in _IMMUTABLE:  # the same object may go into every record
                    defaults.append((name, "value", value))
                    continue
            defaults.append((name, "general", field))
        formulas = [(f.name, f, self.typed[f.name][1], f.expr.bind(**bound)) for f in self.formulas]
        rules = [(rule.field or "_record", rule.message, rule.check.bind_holds(**bound))
                 for rule in self.entity.rules]
        required = self.required
        default_of = self._default
        add_value_error = self._add_value_error

        def complete_new(values: dict, errors: Errors) -> dict:
            record = {}
            for name, kind, payload in defaults:
                if name in values:
                    continue
                if kind == "value":
                    record[name] = payload
                    continue
                if kind == "general":
                    default = default_of(payload, values, ctx, loader, now, errors, "")
                else:
                    field, ftype, run = payload
                    try:
                        raw = run(values)
                        default = None if raw is None else ftype.coerce(field, raw, ctx)
                    except FieldValueError as exc:
                        add_value_error(errors, name, field, exc)
                        default = None
                    except Exception as exc:  # noqa: BLE001
                        errors.add(name, "expression_failed", detail=str(exc))
                        default = None
                if default is not None:
                    record[name] = default
            if record:
                record.update(values)
            else:  # no default to put first: complete the caller's dict itself
                record = values
            for name, field, ftype, run in formulas:
                try:
                    value = run(record)
                    record[name] = None if value is None else ftype.coerce(field, value, ctx)
                except FieldValueError as exc:
                    errors.add(name, "expression_failed", detail=message(exc.key, errors.locale, **exc.params))
                except Exception as exc:  # noqa: BLE001
                    errors.add(name, "expression_failed", detail=str(exc))
            by_key = errors.by_key
            for name in required:
                v = record.get(name)
                if (v is None or v == "" or v == []) and name not in by_key:
                    errors.add(name, "required")
            for key, text, holds in rules:
                try:
                    ok = holds(record)
                except Exception as exc:  # noqa: BLE001 - a failing rule is reported, never a crash
                    errors.add(key, "expression_failed", detail=str(exc))
                    continue
                if not ok:
                    errors.add_text(key, text.get(errors.locale))
            return record

        return complete_new

    def compute(self, record: dict, loader, now, ctx, errors: Errors, prefix: str = "") -> None:
        """Evaluate formula fields in dependency order (children's row formulas were done already)."""
        for field in self.formulas:
            ftype = self.typed[field.name][1]
            try:
                value = field.expr.evaluate(record, loader=loader, now=now, tz=ctx.timezone)
                record[field.name] = None if value is None else ftype.coerce(field, value, ctx)
            except FieldValueError as exc:
                errors.add(prefix + field.name, "expression_failed", detail=message(exc.key, errors.locale, **exc.params))
            except Exception as exc:  # noqa: BLE001
                errors.add(prefix + field.name, "expression_failed", detail=str(exc))

    def _default(self, field: Field, values, ctx, loader, now, errors: Errors, prefix: str):
        ftype = self.types.for_field(field)
        if ftype.computed or field.child is not None:
            return [] if field.child is not None else None
        try:
            if field.default_expr is not None:
                raw = field.default_expr.evaluate(values, loader=loader, now=now, tz=ctx.timezone)
            elif field.default is not None:
                raw = field.default
            else:
                return None
            return None if raw is None else ftype.coerce(field, raw, ctx)
        except FieldValueError as exc:
            self._add_value_error(errors, prefix + field.name, field, exc)
        except Exception as exc:  # noqa: BLE001
            errors.add(prefix + field.name, "expression_failed", detail=str(exc))
        return None


def _same(a, b) -> bool:
    if isinstance(a, datetime) and isinstance(b, str):  # echoed back from JSON (isoformat)
        return a.isoformat() == b
    return a == b or str(a) == str(b)


def _same_json(ftype, field, current, raw) -> bool:
    try:
        return ftype.to_json(field, current) == raw or _same(ftype.to_json(field, current), raw)
    except Exception:  # noqa: BLE001
        return False
