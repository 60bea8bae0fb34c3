"""Check a tenant config and build the TenantModel from it.

``check_config(path, field_types, functions) -> (model | None, issues)`` runs every check and
collects every issue: YAML, duplicate keys, ``extends``, the JSON Schema, then references and
meaning (names, types, dictionaries, entities, layouts, expressions, formula cycles, defaults).
``load_model`` is the same but raises ``ConfigError`` listing every issue.

A string default is an expression when it begins with a function call — a name immediately
followed by ``(``, such as ``today()`` or ``days_between(…)`` — otherwise it is a literal value.
"""
from __future__ import annotations

import graphlib
import hashlib
import json
import os
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError, ConfigIssue, FieldValueError, SourceLocation
from ..fields import FieldContext
from ..i18n import message
from ..metadata.model import (SYSTEM_FIELDS, Dictionary, Entity, Field, Label, Option, Rule,
                              TenantInfo, TenantModel)
from .loader import LoadedConfig, describe, load_config
from .reserved import MAX_TABLE_NAME, name_problem
from .schema import IDENTIFIER, TYPE_KEYS, build_schema
from .sourcemap import SourceMap
from .validate import did_you_mean, validate_config
from ..workflows import config as workflows

_IDENT = re.compile(IDENTIFIER)
_EXPRESSION_DEFAULT = re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\(")
LIST_COLUMNS = 5                         # default list layout: title + 4 more fields
FORM_SECTION = {"zh": "基本信息", "en": "Details"}
# System fields a form may show (the rest are maintained by the engine).
FORM_SYSTEM_FIELDS = ("owner", "department")


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def is_expression_default(value: Any) -> bool:
    """A default is an expression when it is text beginning with a call, like ``today()``."""
    return isinstance(value, str) and bool(_EXPRESSION_DEFAULT.match(value))


def default_plugins():
    """(field type registry, expression functions) of the built-in plugins."""
    from ..fields import FieldTypeRegistry
    from ..plugins import make_plugin_manager
    from ..tenant import collect_functions

    pm = make_plugin_manager(enabled=())
    return FieldTypeRegistry.from_plugins(pm), collect_functions(pm)


def default_normalizers() -> dict:
    """The duplicate-rule normalisers of the built-in plugins."""
    from ..plugins import make_plugin_manager

    return plugin_normalizers(make_plugin_manager(enabled=()))


def plugin_normalizers(pm) -> dict:
    """The duplicate-rule normalisers the plugins of `pm` provide."""
    from ..dedup.normalize import collect_normalizers

    return collect_normalizers(pm)


def load_model(path: str | os.PathLike, field_types=None, functions: dict | None = None,
               normalizers: dict | None = None, pm=None, loaded: LoadedConfig | None = None) -> TenantModel:
    """The checked model of a tenant config; raises ConfigError with every issue found."""
    model, issues = check_config(path, field_types, functions, normalizers, pm=pm, loaded=loaded)
    if issues or model is None:
        raise ConfigError(issues or [ConfigIssue(SourceLocation(str(path), 1, 1), "config not usable")])
    return model


def check_config(path: str | os.PathLike, field_types=None, functions: dict | None = None,
                 normalizers: dict | None = None, pm=None,
                 loaded: LoadedConfig | None = None) -> tuple[TenantModel | None, list[ConfigIssue]]:
    """(model, []) for a good config, else (None, every issue) — never raises for bad input.

    `pm`: the tenant's plugin manager; its plugins add config keys (formwork_config_schema) and build
    their part of the model (formwork_model_build). Without any plugin argument the plugins are those
    the config's `plugins:` key names (every installed one when absent), as `formwork check` needs.
    `normalizers`: the duplicate-rule normalisers the tenant's plugins provide; a `normalize:` name
    outside them is an error. With field_types/functions but no normalizers the names are left to the
    tenant's plugins, which check them when it loads (plugins/dedup.py).
    """
    from ..plugins import config_plugin_names, make_plugin_manager

    loaded = loaded or load_config(path)
    if pm is None and normalizers is None and field_types is None and functions is None:
        pm = make_plugin_manager(enabled=config_plugin_names(loaded.data))
        normalizers = plugin_normalizers(pm)
    if pm is not None:
        from ..fields import FieldTypeRegistry
        from ..tenant import collect_functions

        field_types = FieldTypeRegistry.from_plugins(pm) if field_types is None else field_types
        functions = collect_functions(pm) if functions is None else functions
    if field_types is None or functions is None:
        ft, fn = default_plugins()
        field_types = ft if field_types is None else field_types
        functions = fn if functions is None else functions
    issues = list(loaded.issues)
    model = None
    if loaded.data is not None:
        bad_paths: set[tuple] = set()
        plugin_keys = pm.hook.formwork_config_schema() if pm is not None else []
        issues.extend(validate_config(loaded.data, loaded.source_map, build_schema(field_types, plugin_keys=plugin_keys),
                                      bad_paths))
        builder = ModelBuilder(loaded, field_types, functions, issues, bad_paths, normalizers,
                               hook=pm.hook if pm is not None else None)
        model = builder.build()
    issues = _tidy(issues, loaded.files)
    return (None if issues else model), issues


def _tidy(issues: list[ConfigIssue], files: list[str]) -> list[ConfigIssue]:
    """Drop repeats and order by file (template first), line, column."""
    seen, out = set(), []
    for issue in issues:
        key = (issue.location, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    order = {f: i for i, f in enumerate(files)}

    def sort_key(item):
        n, issue = item
        loc = issue.location
        if loc is None:
            return (len(order) + 1, 0, 0, n)
        return (order.get(loc.file, len(order)), loc.line, loc.col, n)

    return [issue for _, issue in sorted(enumerate(out), key=sort_key)]


def fingerprint(config: dict) -> str:
    """sha256 of the canonical JSON of a merged config: the config version."""
    text = json.dumps(config, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ModelBuilder:
    """Builds a TenantModel from a merged config, adding every problem to `issues`."""

    def __init__(self, loaded: LoadedConfig, field_types, functions: dict, issues: list[ConfigIssue],
                 bad_paths: set[tuple] | None = None, normalizers: dict | None = None, hook=None):
        self.loaded = loaded
        self.hook = hook
        self.normalizers = normalizers
        self.bad_paths = bad_paths or set()
        self.data: dict = loaded.data or {}
        self.smap: SourceMap = loaded.source_map
        self.field_types = field_types
        self.functions = functions or {}
        self.issues = issues
        self.raw_fields: dict[int, tuple[dict, tuple]] = {}   # id(Field) → (raw, path)
        self._lines: dict[str, list[str]] = {}

    # -- reporting --------------------------------------------------------------------------------
    def error(self, path: tuple, message: str, at: str = "key") -> None:
        loc = self.smap.value(path) if at == "value" else self.smap.key(path)
        self.issues.append(ConfigIssue(loc, message))

    def schema_failed(self, path: tuple) -> bool:
        """Whether the schema already reported a problem at or under `path`."""
        n = len(path)
        return any(p[:n] == path for p in self.bad_paths)

    # -- the whole model --------------------------------------------------------------------------
    def build(self) -> TenantModel:
        tenant = self.tenant_info()
        dictionaries = self.dictionaries()
        self.dicts = dictionaries
        raw_entities = self.data.get("entities") if isinstance(self.data.get("entities"), dict) else {}
        self.entity_names = [n for n in raw_entities if isinstance(n, str)]
        entities: dict[str, Entity] = {}
        for name, raw in raw_entities.items():
            if isinstance(raw, dict):
                entities[name] = self.entity(name, raw, ("entities", name))
        model = TenantModel(tenant=tenant, dictionaries=dictionaries, entities=entities, config=self.data,
                            files=list(self.loaded.files), fingerprint=fingerprint(self.data),
                            source_map=self.smap)
        self.model = model
        workflows.build_pipelines(self, model)
        workflows.add_status_fields(self, model)
        self.expressions(model)
        workflows.compile_pipeline_checks(self, model)
        self.organisation(model)
        workflows.build_approvals(self, model)
        self.entity_settings(model)
        self.plugin_names()
        if self.hook is not None:
            self.hook.formwork_model_build(builder=self, model=model)
        return model

    def plugin_names(self) -> None:
        """Every name in `plugins:` must be an installed plugin (the `formwork` entry-point group)."""
        names = self.data.get("plugins")
        if not isinstance(names, list) or not names:
            return
        from ..plugins import installed_plugins

        installed = sorted(installed_plugins())
        for i, name in enumerate(names):
            if isinstance(name, str) and name not in installed:
                close = did_you_mean(name, installed)
                hint = f"did you mean '{close}'?" if close else f"installed: {', '.join(installed) or 'none'}"
                self.error(("plugins", i), f"plugins: '{name}' is not an installed Formwork plugin ({hint})",
                           at="value")

    def tenant_info(self) -> TenantInfo:
        raw = self.data.get("tenant") if isinstance(self.data.get("tenant"), dict) else {}
        name = raw.get("name") if isinstance(raw.get("name"), str) else "tenant"
        info = TenantInfo(name=name, label=Label.of(raw.get("label"), fallback=name))
        for key in ("locale", "timezone", "currency"):
            if isinstance(raw.get(key), str):
                setattr(info, key, raw[key])
        if isinstance(raw.get("timezone"), str):
            try:
                ZoneInfo(raw["timezone"])
            except (ZoneInfoNotFoundError, ValueError):
                self.error(("tenant", "timezone"), f"timezone: unknown time zone '{raw['timezone']}' "
                                                   f"(use a name such as Asia/Shanghai)", at="value")
        return info

    # -- dictionaries -----------------------------------------------------------------------------
    def dictionaries(self) -> dict[str, Dictionary]:
        out: dict[str, Dictionary] = {}
        raw_all = self.data.get("dictionaries")
        if not isinstance(raw_all, dict):
            return out
        for name, raw in raw_all.items():
            path = ("dictionaries", name)
            label = Label.of(None, fallback=name)
            items, items_path = raw, path
            if isinstance(raw, dict):
                label = Label.of(raw.get("label"), fallback=name)
                items, items_path = raw.get("options"), path + ("options",)
            if not isinstance(items, list):
                continue
            out[name] = Dictionary(name=name, options=self.options(items, items_path), label=label,
                                   source=self.smap.key(path))
        return out

    def options(self, items: list, path: tuple) -> list[Option]:
        """Options from plain values or {value, label}; duplicate values are errors."""
        out: list[Option] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            if isinstance(item, dict):
                value, label = item.get("value"), item.get("label")
            else:
                value, label = item, None
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                continue  # the schema reported it
            text = str(value)
            if text.strip() == "":
                self.error(path + (i,), "an option value may not be empty", at="value")
                continue
            if text in seen:
                self.error(path + (i,), f"duplicate option '{text}' (also item {seen[text] + 1})", at="value")
                continue
            seen[text] = i
            out.append(Option(value=text, label=Label.of(label, fallback=text)))
        return out

    # -- entities and fields ----------------------------------------------------------------------
    def check_name(self, name: str, kind: str, path: tuple) -> None:
        if not isinstance(name, str) or not _IDENT.match(name):
            return  # the schema reported it
        problem = name_problem(name, kind)
        if problem:
            self.error(path, problem)

    def entity(self, name: str, raw: dict, path: tuple, parent: Entity | None = None,
               parent_field: str | None = None, label: Label | None = None) -> Entity:
        if parent is None:
            self.check_name(name, "entity", path)
        ent = Entity(name=name, label=label or Label.of(raw.get("label"), fallback=name), fields={},
                     parent=parent, parent_field=parent_field, source=self.smap.key(path))
        if parent is not None and len(ent.table_name) > MAX_TABLE_NAME:
            self.error(path, f"the table name '{ent.table_name}' is longer than {MAX_TABLE_NAME} "
                             f"characters; use shorter names")
        raw_fields = raw.get("fields") if isinstance(raw.get("fields"), dict) else {}
        renamed: dict[str, str] = {}
        for fname, fraw in raw_fields.items():
            if not isinstance(fraw, dict):
                continue
            fpath = path + ("fields", fname)
            self.check_name(fname, "field" if parent is None else "child_field", fpath)
            fld = self.field(ent, fname, fraw, fpath)
            ent.fields[fname] = fld
            old = fraw.get("renamed_from")
            if isinstance(old, str):
                if old in renamed:
                    self.error(fpath + ("renamed_from",), f"renamed_from: '{renamed[old]}' is already "
                                                          f"renamed from '{old}'", at="value")
                renamed[old] = fname
        for old, new in renamed.items():
            if old in raw_fields:
                self.error(path + ("fields", new, "renamed_from"),
                           f"renamed_from: '{old}' is still a field of {name}; remove it or pick the "
                           f"field's old name", at="value")
        if parent is None:
            ent.title = self.title(ent, raw, path)
            ent.rules = []  # compiled later, in expressions()
            self.layout(ent, raw, path)
            ent.settings = {k: raw[k] for k in ("duplicates", "quality", "follow_ups") if k in raw}
        else:
            ent.list_layout = [f for f, fld in ent.fields.items()]
            ent.form_layout = [{"section": ent.label, "fields": list(ent.fields)}]
        return ent

    def field(self, ent: Entity, name: str, raw: dict, path: tuple) -> Field:
        tname = raw.get("type") if isinstance(raw.get("type"), str) else ""
        known = tname in self.field_types
        ftype = self.field_types[tname] if known else None

        def flag(key: str) -> bool:
            return raw.get(key) is True

        def label_of(key: str) -> Label | None:
            v = raw.get(key)
            return Label.of(v) if isinstance(v, (str, dict)) and v else None

        fld = Field(
            name=name, type=tname, label=Label.of(raw.get("label"), fallback=name),
            required=flag("required"), unique=flag("unique"), indexed=flag("indexed"),
            min=raw.get("min"), max=raw.get("max"),
            max_length=raw.get("max_length") if isinstance(raw.get("max_length"), int) else None,
            pattern=raw.get("pattern") if isinstance(raw.get("pattern"), str) else None,
            pattern_message=label_of("pattern_message"), help=label_of("help"),
            to=raw.get("to") if isinstance(raw.get("to"), str) else None,
            returns=raw.get("returns") if isinstance(raw.get("returns"), str) else None,
            format=raw.get("format") if isinstance(raw.get("format"), str) else None,
            renamed_from=raw.get("renamed_from") if isinstance(raw.get("renamed_from"), str) else None,
            source=self.smap.key(path), entity=ent,
        )
        self.raw_fields[id(fld)] = (raw, path)
        if not known:
            return fld  # the schema reported the unknown type
        own_settings = set(getattr(ftype, "settings_schema", None) or {})
        fld.settings = {k: raw[k] for k in own_settings if k in raw}

        # keys that belong to other types
        for key in raw:
            allowed_for = TYPE_KEYS.get(key)
            if allowed_for is not None and tname not in allowed_for and key not in own_settings:
                self.error(path + (key,), f"'{key}' does not apply to {_a(tname)} field "
                                          f"(only to {' and '.join(allowed_for)})")
            elif allowed_for is None and key in self.settings_keys() and key not in own_settings:
                owners = [n for n in self.field_types.names()
                          if key in (getattr(self.field_types[n], "settings_schema", None) or {})]
                self.error(path + (key,), f"'{key}' does not apply to {_a(tname)} field "
                                          f"(only to {' and '.join(owners)})")

        computed = getattr(ftype, "computed", False)
        stored = getattr(ftype, "stored", True)
        if computed:
            for key in ("required", "default"):
                if key in raw:
                    self.error(path + (key,), f"'{key}' does not apply to {_a(tname)} field: "
                                              f"its value is computed")
        if not stored:  # a subtable: `required` means at least one row
            for key in ("default", "unique"):
                if key in raw:
                    self.error(path + (key,), f"'{key}' does not apply to {_a(tname)} field")
        computed = computed or not stored

        def accepts(key: str) -> bool:
            return tname in TYPE_KEYS[key] or key in own_settings

        if accepts("options"):
            self.field_options(fld, raw, path)
        if accepts("to") and fld.to is not None and fld.to not in self.entity_names:
            guess = did_you_mean(fld.to, self.entity_names)
            hint = f" (did you mean '{guess}'?)" if guess else ""
            self.error(path + ("to",), f"to: unknown entity '{fld.to}'{hint}", at="value")
        sub = raw.get("fields")
        if accepts("fields") and isinstance(sub, dict) and sub:
            if ent.parent is not None:
                self.error(path, "a subtable's rows cannot hold another subtable")
            fld.child = self.entity(name, raw, path, parent=ent, parent_field=name, label=fld.label)

        # default: a literal (checked against the type) or an expression (compiled later)
        default = raw.get("default")
        if default is not None and not computed and not is_expression_default(default):
            fld.default = default
            if not self.schema_failed(path):
                self.check_default(fld, ftype, default, path + ("default",))

        try:
            found = [] if self.schema_failed(path) else (ftype.check_config(fld, raw) or [])
        except Exception:  # noqa: BLE001 - a type's own check must not crash `check` on odd values
            found = []
        for sub_path, message in found:
            self.error(path + tuple(sub_path), message)
        return fld

    def settings_keys(self) -> set[str]:
        if not hasattr(self, "_settings_keys"):
            keys: set[str] = set()
            for n in self.field_types.names():
                keys |= set(getattr(self.field_types[n], "settings_schema", None) or {})
            self._settings_keys = keys - set(TYPE_KEYS) - {"label", "required", "unique", "default", "min",
                                                          "max", "max_length", "pattern", "pattern_message",
                                                          "help", "indexed", "renamed_from", "type"}
        return self._settings_keys

    def field_options(self, fld: Field, raw: dict, path: tuple) -> None:
        opts = raw.get("options")
        if isinstance(opts, str):
            if opts in self.dicts:
                fld.dictionary = opts
                fld.options = list(self.dicts[opts].options)
            elif _IDENT.match(opts):
                names = list(self.dicts)
                guess = did_you_mean(opts, names)
                hint = f" (did you mean '{guess}'?)" if guess else (
                    f" (dictionaries: {', '.join(names)})" if names else " (no dictionaries: are defined)")
                self.error(path + ("options",), f"options: unknown dictionary '{opts}'{hint}", at="value")
        elif isinstance(opts, list):
            fld.options = self.options(opts, path + ("options",))

    def check_default(self, fld: Field, ftype, default: Any, path: tuple) -> None:
        if fld.type in ("select", "multiselect") and fld.options is not None:
            values = fld.option_values()
            given = default if isinstance(default, list) and fld.type == "multiselect" else [default]
            for v in given:
                if str(v) not in values:
                    guess = did_you_mean(str(v), values)
                    hint = f" (did you mean '{guess}'?)" if guess else f" (options: {', '.join(values[:12])})"
                    self.error(path, f"default: {describe(v)} is not one of the options{hint}", at="value")
            return
        if fld.type in ("reference", "user", "department", "file"):
            return  # needs the database or storage
        try:
            value = ftype.coerce(fld, default, FieldContext())
            if value is not None:
                ftype.validate(fld, value, FieldContext())
        except FieldValueError as exc:
            self.error(path, f"default: {describe(default)}: {message(exc.key, 'en', **exc.params)}", at="value")
        except Exception:  # noqa: BLE001 - a type that cannot coerce without a database
            pass

    def title(self, ent: Entity, raw: dict, path: tuple) -> str | None:
        title = raw.get("title")
        if isinstance(title, str):
            fld = ent.fields.get(title)
            if fld is None:
                guess = did_you_mean(title, list(ent.fields))
                hint = f" (did you mean '{guess}'?)" if guess else ""
                self.error(path + ("title",), f"title: '{title}' is not a field of {ent.name}{hint}", at="value")
                return None
            if fld.child is not None or fld.type == "subtable":
                self.error(path + ("title",), f"title: '{title}' is a subtable; pick a field with one value",
                           at="value")
                return None
            return title
        if "name" in ent.fields and ent.fields["name"].type != "subtable":
            return "name"
        for fname, fld in ent.fields.items():
            if fld.type in ("text", "autonumber"):
                return fname
        return None

    def layout(self, ent: Entity, raw: dict, path: tuple) -> None:
        layout = raw.get("layout") if isinstance(raw.get("layout"), dict) else {}
        lpath = path + ("layout",)
        columns = layout.get("list")
        if isinstance(columns, list):
            seen: set[str] = set()
            for i, col in enumerate(columns):
                if not isinstance(col, str):
                    continue
                fld = ent.fields.get(col)
                if fld is None and col not in SYSTEM_FIELDS:
                    guess = did_you_mean(col, list(ent.fields) + list(SYSTEM_FIELDS))
                    hint = f" (did you mean '{guess}'?)" if guess else ""
                    self.error(lpath + ("list", i), f"list: '{col}' is not a field of {ent.name}{hint}", at="value")
                elif fld is not None and fld.type == "subtable":
                    self.error(lpath + ("list", i), f"list: '{col}' is a subtable and cannot be a column",
                               at="value")
                elif col in seen:
                    self.error(lpath + ("list", i), f"list: '{col}' is listed twice", at="value")
                seen.add(col)
            ent.list_layout = [c for c in columns if isinstance(c, str)]
        else:
            first = [ent.title] if ent.title else []
            rest = [n for n, f in ent.fields.items()
                    if n not in first and f.type not in ("subtable", "textarea", "file")]
            ent.list_layout = (first + rest)[:LIST_COLUMNS]
        sections = layout.get("form")
        if isinstance(sections, list):
            placed: dict[str, int] = {}
            ent.form_layout = []
            for s, section in enumerate(sections):
                if not isinstance(section, dict):
                    continue
                names = [n for n in section.get("fields") or [] if isinstance(n, str)] \
                    if isinstance(section.get("fields"), list) else []
                for i, fname in enumerate(names):
                    where = lpath + ("form", s, "fields", i)
                    if fname not in ent.fields and fname not in FORM_SYSTEM_FIELDS:
                        guess = did_you_mean(fname, list(ent.fields))
                        hint = f" (did you mean '{guess}'?)" if guess else ""
                        self.error(where, f"form: '{fname}' is not a field of {ent.name}{hint}", at="value")
                    elif fname in placed:
                        self.error(where, f"form: '{fname}' is already in section {placed[fname] + 1}", at="value")
                    placed.setdefault(fname, s)
                ent.form_layout.append({"section": Label.of(section.get("section"), fallback=""),
                                        "fields": names})
        else:
            ent.form_layout = [{"section": Label.of(FORM_SECTION), "fields": list(ent.fields)}]

    # -- expressions ------------------------------------------------------------------------------
    def compile(self, source: str, ent: Entity, path: tuple, what: str):
        """Compile one expression, reporting errors at its place in the file; None when invalid."""
        from ..expressions import ExpressionError, compile_expression

        try:
            return compile_expression(source, entity=ent, model=self.model, functions=self.functions)
        except ExpressionError as exc:
            loc = self.smap.value(path)
            column = getattr(exc, "column", None)
            if loc is not None and column:
                loc = self.column_in(loc, source, column)
            message = getattr(exc, "message", None) or str(exc)
            if loc is not None and column and loc != self.smap.value(path):
                message = re.sub(r"\s*\(column \d+\)$", "", message)
            self.issues.append(ConfigIssue(loc, f"{what}: {message}"))
        except RecursionError:
            self.error(path, f"{what}: the expression is too deeply nested", at="value")
        except Exception as exc:  # noqa: BLE001 - never a traceback from `check`
            self.error(path, f"{what}: cannot compile the expression ({type(exc).__name__}: {exc})", at="value")
        return None

    def column_in(self, loc: SourceLocation, source: str, column: int) -> SourceLocation:
        """Move `loc` (the start of a YAML scalar) to `column` of the expression when on one line."""
        lines = self._file_lines(loc.file)
        if not lines or loc.line > len(lines):
            return loc
        text = lines[loc.line - 1][loc.col - 1:]
        if text.startswith(source):
            return SourceLocation(loc.file, loc.line, loc.col + column - 1)
        if text[:1] in "'\"" and text[1:].startswith(source):
            return SourceLocation(loc.file, loc.line, loc.col + column)
        return loc

    def _file_lines(self, display: str) -> list[str]:
        if display not in self._lines:
            lines: list[str] = []
            for shown, real in zip(self.loaded.files, self.loaded.paths):
                if shown == display:
                    try:
                        lines = real.read_text(encoding="utf-8-sig").splitlines()
                    except (OSError, UnicodeDecodeError):
                        lines = []
            self._lines[display] = lines
        return self._lines[display]

    def all_entities(self, model: TenantModel):
        """Every entity, a subtable's rows before the entity holding it (formulas aggregate them)."""
        def walk(ent: Entity):
            for fld in ent.fields.values():
                if fld.child is not None:
                    yield from walk(fld.child)
            yield ent
        for ent in model.entities.values():
            yield from walk(ent)

    def expressions(self, model: TenantModel) -> None:
        for ent in self.all_entities(model):
            self.formulas(ent)
            for fld in ent.fields.values():
                raw, path = self.raw_fields[id(fld)]
                default = raw.get("default")
                if is_expression_default(default) and fld.type in self.field_types:
                    ftype = self.field_types[fld.type]
                    if getattr(ftype, "computed", False) or not getattr(ftype, "stored", True):
                        continue
                    fld.default_expr = self.compile(default, ent, path + ("default",), "default")
            if ent.parent is None:
                self.rules(ent)

    def formulas(self, ent: Entity) -> None:
        """Compile formulas, refuse dependency cycles, recompile in dependency order (result types)."""
        formulas = {}
        for name, fld in ent.fields.items():
            raw, path = self.raw_fields[id(fld)]
            if fld.type == "formula" and isinstance(raw.get("expr"), str):
                formulas[name] = (fld, raw["expr"], path + ("expr",))
        compiled = {}
        for name, (fld, source, path) in formulas.items():
            compiled[name] = self.compile(source, ent, path, "expr")
        graph = {}
        for name, expr in compiled.items():
            if expr is None:
                continue
            used = set(getattr(expr, "names", ()) or ())
            used |= {p[0] for p in (getattr(expr, "paths", ()) or ()) if p}
            graph[name] = {u for u in used if u in formulas and u != name}
            if name in used:
                self.error(formulas[name][2], f"expr: the formula '{name}' uses itself", at="value")
                graph[name] = set()
        try:
            order = list(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])
            self.error(formulas[cycle[0]][2], "expr: formulas depend on each other in a cycle: "
                       + " → ".join(reversed(cycle)), at="value")
            order = list(graph)
        for name in order:
            fld, source, path = formulas[name]
            expr = compiled.get(name)
            if expr is not None:
                try:  # again, now that what it uses has its result type
                    from ..expressions import compile_expression
                    expr = compile_expression(source, entity=ent, model=self.model, functions=self.functions)
                except Exception:  # noqa: BLE001 - already compiled once; keep that one
                    pass
            fld.expr = expr
            if fld.returns is None and expr is not None and getattr(expr, "result_type", None):
                self.infer_returns(fld, expr.result_type)

    def infer_returns(self, fld: Field, result_type: str) -> None:
        """Take the expression's result type as the formula's `returns` when the type accepts it."""
        fld.returns = result_type
        try:
            raw, _ = self.raw_fields[id(fld)]
            refused = any(tuple(p)[:1] == ("returns",) for p, _ in
                          self.field_types[fld.type].check_config(fld, raw) or [])
        except Exception:  # noqa: BLE001
            refused = True
        if refused:
            fld.returns = None

    def rules(self, ent: Entity) -> None:
        raw_ent = self.data["entities"][ent.name]
        rules = raw_ent.get("rules") if isinstance(raw_ent.get("rules"), list) else []
        base = ("entities", ent.name, "rules")
        for i, raw in enumerate(rules):
            if not isinstance(raw, dict) or not isinstance(raw.get("check"), str):
                continue
            field = raw.get("field") if isinstance(raw.get("field"), str) else None
            if field is not None and field not in ent.fields:
                guess = did_you_mean(field, list(ent.fields))
                hint = f" (did you mean '{guess}'?)" if guess else ""
                self.error(base + (i, "field"), f"field: '{field}' is not a field of {ent.name}{hint}", at="value")
                field = None
            check = self.compile(raw["check"], ent, base + (i, "check"), "check")
            message = raw.get("message")
            ent.rules.append(Rule(check=check, message=Label.of(message if isinstance(message, (str, dict))
                                                                else None, fallback=raw["check"]),
                                  field=field, source=self.smap.key(base + (i,))))

    def entity_settings(self, model: TenantModel) -> None:
        """duplicates:, quality: and follow_ups: (engine/dedup/settings.py)."""
        from ..dedup.settings import check_entity_settings

        check_entity_settings(model, self.error, self.schema_failed, self.normalizers)

    # -- departments and roles --------------------------------------------------------------------
    def row_conditions(self, model: TenantModel, role: str, ename: str, rights: dict) -> None:
        """A scope's `where` must compile and be expressible in SQL (it filters every query)."""
        from ..expressions import ExpressionError, compile_expression
        from ..expressions.sql import row_condition
        from ..records.query import SYSTEM_FIELD_TYPES, system_field

        entity = model.entities[ename]
        for action, value in rights.items():
            if not (isinstance(value, dict) and isinstance(value.get("where"), str)):
                continue
            path = ("roles", role, "entities", ename, action, "where")
            try:
                expr = compile_expression(value["where"], entity=entity, model=model, functions=self.functions)
                row_condition(expr, entity, self.field_types,
                              {n: system_field(n) for n in SYSTEM_FIELD_TYPES})
            except ExpressionError as exc:
                self.error(path, f"where: {exc}", at="value")

    def organisation(self, model: TenantModel) -> None:
        depts = self.data.get("departments") if isinstance(self.data.get("departments"), dict) else {}
        parents: dict[str, str] = {}
        for name, raw in depts.items():
            if not isinstance(raw, dict):
                continue
            parent = raw.get("parent")
            if isinstance(parent, str):
                if parent not in depts:
                    guess = did_you_mean(parent, list(depts))
                    hint = f" (did you mean '{guess}'?)" if guess else ""
                    self.error(("departments", name, "parent"), f"parent: unknown department '{parent}'{hint}",
                               at="value")
                else:
                    parents[name] = parent
        reported: set[str] = set()
        for start in parents:
            chain, node = [start], parents.get(start)
            while node is not None and node not in chain:
                chain.append(node)
                node = parents.get(node)
            if node is not None and node == start and not reported & set(chain):
                reported |= set(chain)
                self.error(("departments", start, "parent"),
                           "parent: departments form a cycle: " + " → ".join(chain + [start]), at="value")
        roles = self.data.get("roles") if isinstance(self.data.get("roles"), dict) else {}
        for name, raw in roles.items():
            if not isinstance(raw, dict):
                continue
            ents = raw.get("entities")
            if isinstance(ents, dict):
                for ename, rights in ents.items():
                    if ename not in model.entities:
                        guess = did_you_mean(ename, list(model.entities))
                        hint = f" (did you mean '{guess}'?)" if guess else ""
                        self.error(("roles", name, "entities", ename), f"unknown entity '{ename}'{hint}")
                    elif isinstance(rights, dict):
                        self.row_conditions(model, name, ename, rights)
            fields = raw.get("fields")
            if isinstance(fields, dict):
                for key in fields:
                    ename, _, fname = str(key).partition(".")
                    ent = model.entities.get(ename)
                    if ent is None:
                        self.error(("roles", name, "fields", key), f"'{key}': unknown entity '{ename}' "
                                                                   f"(write entity.field)")
                    elif fname not in ent.fields and fname not in SYSTEM_FIELDS:
                        guess = did_you_mean(fname, list(ent.fields))
                        hint = f" (did you mean '{ename}.{guess}'?)" if guess else ""
                        self.error(("roles", name, "fields", key), f"'{key}': {ename} has no field "
                                                                   f"'{fname}'{hint}")
