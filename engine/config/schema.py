"""The JSON Schema (Draft 2020-12) of a tenant config, built from the field type registry.

``build_schema(field_types)`` is what ``formwork check`` validates against; the built-in types'
schema is committed as ``engine/config/tenant.schema.json`` for editors
(``# yaml-language-server: $schema=<formwork schema --path>``). Regenerate it with
``formwork schema > engine/config/tenant.schema.json`` after changing a field type's
``settings_schema`` (tests/test_config.py fails while it is stale).
Every object is closed (``additionalProperties: false``) so a misspelt key is an error.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().with_name("tenant.schema.json")

IDENTIFIER = r"^[a-z][a-z0-9_]*$"
IDENTIFIER_MAX = 50

# The field types of the contract; used when no registry is given.
CORE_TYPES = ("text", "textarea", "integer", "decimal", "money", "percent", "boolean", "date", "datetime",
              "select", "multiselect", "reference", "user", "department", "phone", "email", "url",
              "formula", "autonumber", "file", "subtable")

# Field keys that belong to particular types (others are common to every type).
TYPE_KEYS = {
    "options": ("select", "multiselect"),
    "to": ("reference",),
    "expr": ("formula",),
    "returns": ("formula",),
    "format": ("autonumber",),
    "fields": ("subtable",),
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def _closed(properties: dict, required: list[str] | None = None, **extra) -> dict:
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    out.update(extra)
    return out


def _names_to(value_schema: dict, description: str) -> dict:
    """A mapping whose keys are identifiers."""
    return {"type": "object", "description": description, "propertyNames": _ref("identifier"),
            "additionalProperties": value_schema}


def _field_schema(type_names: list[str], field_types) -> dict:
    props: dict[str, Any] = {
        "type": {"description": "The field type.", "enum": type_names},
        "label": _ref("label"),
        "required": {"type": "boolean", "description": "A value must be given."},
        "unique": {"type": "boolean", "description": "No two records may share a value."},
        "default": {"description": "A value, or an expression starting with a function call such as today()."},
        "min": {"type": ["number", "string"], "description": "Smallest allowed value (number or ISO date)."},
        "max": {"type": ["number", "string"], "description": "Largest allowed value (number or ISO date)."},
        "max_length": {"type": "integer", "minimum": 1, "description": "Most characters allowed."},
        "pattern": {"type": "string", "description": "A regular expression the whole value must match."},
        "pattern_message": _ref("label"),
        "help": _ref("label"),
        "indexed": {"type": "boolean", "description": "Add a database index for fast filtering."},
        "options": {"description": "select/multiselect: a dictionary name or a list of options.",
                    "oneOf": [_ref("identifier"), _ref("options")]},
        "to": {**_ref("identifier"), "description": "reference: the target entity."},
        "expr": {"type": "string", "description": "formula: the expression computing the value."},
        "returns": {"description": "formula: the field type of the result.", "enum": type_names},
        "format": {"type": "string", "description": "autonumber: e.g. \"HT-{YYYY}-{seq:4}\"."},
        "fields": {**_ref("fields"), "description": "subtable: the fields of each row."},
        "renamed_from": {**_ref("identifier"),
                         "description": "The field's previous name: migrate renames the column, keeping data."},
    }
    if field_types is not None:
        for tname in type_names:
            ftype = field_types[tname]
            for key, sub in (getattr(ftype, "settings_schema", None) or {}).items():
                props.setdefault(key, sub)
    return _closed(props, ["type"], title="a field: {type: …, label: …}")


def build_schema(field_types=None, for_editor: bool = False, plugin_keys: list | None = None) -> dict:
    """The tenant config JSON Schema; field type names and settings come from `field_types`.

    `formwork check` validates the merged config against the strict schema. An editor sees one
    file at a time, before `extends:` is merged, so ``for_editor=True`` gives the same schema with
    no required keys and with ``{remove: true}`` allowed wherever a value is. `plugin_keys`: what
    plugins' ``formwork_config_schema`` returned (``{"tenant": {key: schema}, "entity": {…}}``).
    """
    schema = _strict_schema(field_types)
    for keys in plugin_keys or []:
        schema["properties"].update((keys or {}).get("tenant") or {})
        schema["$defs"]["entity"]["properties"].update((keys or {}).get("entity") or {})
    return editor_variant(schema) if for_editor else schema


REMOVAL = {"type": "object", "title": "{remove: true}: delete what the template defined here",
           "properties": {"remove": {"const": True}}, "required": ["remove"], "additionalProperties": False}


def editor_variant(strict: dict) -> dict:
    """`strict` without required keys, and with {remove: true} accepted for every value."""
    schema = copy.deepcopy(strict)

    def wrap(node: Any) -> dict:
        out: dict[str, Any] = {"anyOf": [node, _ref("removal")]}
        if isinstance(node, dict) and node.get("description"):
            out["description"] = node["description"]
        return out

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, value in list(node.items()):
            if key == "properties" and isinstance(value, dict):
                for sub in value.values():
                    walk(sub)
                node[key] = {name: wrap(sub) for name, sub in value.items()}
            elif key == "additionalProperties" and isinstance(value, dict):
                walk(value)
                node[key] = wrap(value)
            elif key != "required":
                walk(value)
        if isinstance(node.get("required"), list):
            del node["required"]

    walk(schema)
    schema["$defs"]["removal"] = REMOVAL
    schema["title"] = "Formwork tenant config (one file, before extends: is merged)"
    return schema


def _strict_schema(field_types=None) -> dict:
    type_names = list(field_types.names()) if field_types is not None else list(CORE_TYPES)
    label = {
        "title": "a text or texts per language such as {zh: 客户, en: Customer}",
        "oneOf": [
            {"type": "string", "title": "a text"},
            {"type": "object", "title": "texts per language such as {zh: 客户, en: Customer}",
             "propertyNames": {"pattern": r"^[a-z]{2}([_-][A-Za-z]{2,4})?$"},
             "additionalProperties": {"type": "string"}, "minProperties": 1},
        ],
    }
    option = {
        "title": "an option: a plain value or {value: …, label: …}",
        "oneOf": [
            {"type": ["string", "number"], "title": "a plain value"},
            _closed({"value": {"type": ["string", "number"]}, "label": _ref("label")}, ["value"],
                    title="{value: …, label: …}"),
        ],
    }
    rule = _closed({
        "check": {"type": "string", "description": "An expression that must not come out false."},
        "message": _ref("label"),
        "field": {**_ref("identifier"), "description": "Show the message under this field."},
    }, ["check", "message"], title="a rule: {check: …, message: …}")
    layout = _closed({
        "list": {"type": "array", "items": _ref("identifier"), "minItems": 1,
                 "description": "Columns of the list page (fields or system fields such as owner)."},
        "form": {"type": "array", "minItems": 1, "description": "Sections of the form.",
                 "items": _closed({"section": _ref("label"),
                                   "fields": {"type": "array", "items": _ref("identifier"), "minItems": 1}},
                                  ["fields"], title="a form section: {section: …, fields: […]}")},
    }, title="a layout: {list: […], form: […]}")
    duplicate_rule = _closed({
        "field": {**_ref("identifier"), "description": "The field to compare."},
        "fields": {"type": "array", "items": _ref("identifier"), "minItems": 1, "uniqueItems": True,
                   "description": "Several fields that must all be equal (an exact rule), e.g. [name, customer]."},
        "match": {"enum": ["fuzzy", "exact"],
                  "description": "fuzzy: similarity (0-100) at least threshold; exact: equal after normalising."},
        "threshold": {"type": "number", "minimum": 1, "maximum": 100,
                      "description": "fuzzy: the lowest similarity that counts as a duplicate (default 80)."},
        "normalize": {**_ref("identifier"),
                      "description": "How values are normalised before comparing: company_name, phone, email, "
                                     "text, or a plugin's (default: by field type)."},
    }, ["match"], title="a duplicate rule: {field: …, match: fuzzy|exact, threshold: …, normalize: …}")
    quality = _closed({
        "key_fields": {"type": "array", "items": _ref("identifier"), "minItems": 1, "uniqueItems": True,
                       "description": "The fields whose completeness is measured."},
        "completeness_min": {"type": "number", "minimum": 0, "maximum": 100,
                             "description": "Pass when at least this % of key-field values are filled in."},
        "followed_up_days": {"type": "integer", "minimum": 1,
                             "description": "The period (days) in which a record counts as followed up."},
        "followed_up_min": {"type": "number", "minimum": 0, "maximum": 100,
                            "description": "Pass when at least this % of records had a follow-up in the period."},
        "unowned_max": {"type": "integer", "minimum": 0,
                        "description": "Pass when at most this many records have no owner or an inactive one."},
    }, title="data-quality settings: {key_fields: […], completeness_min: …}")
    follow_ups = {
        "title": "the entity whose records are this entity's follow-ups",
        "description": "The activity entity (follow-ups) of this entity; default: follow_up when it references this one.",
        "oneOf": [
            {**_ref("identifier"), "title": "an entity name"},
            _closed({"entity": {**_ref("identifier"), "description": "The follow-up entity."},
                     "field": {**_ref("identifier"), "description": "Its reference to this entity."},
                     "date": {**_ref("identifier"), "description": "Its date or datetime field (or created_at)."}},
                    ["entity"], title="{entity: …, field: …, date: …}"),
        ],
    }
    entity = _closed({
        "label": _ref("label"),
        "title": {**_ref("identifier"), "description": "The field that names a record."},
        "fields": {**_ref("fields"), "minProperties": 1},
        "rules": {"type": "array", "items": rule, "description": "Record rules."},
        "layout": layout,
        "duplicates": {"type": "array", "items": duplicate_rule,
                       "description": "Duplicate detection rules, checked on create and on update of their fields."},
        "quality": quality,
        "follow_ups": follow_ups,
    }, ["fields"], title="an entity: {label: …, fields: {…}}")
    department = _closed({
        "label": _ref("label"),
        "parent": {**_ref("identifier"), "description": "The department above this one."},
        "managers": {"type": "array", "items": {"type": "string"}, "description": "Usernames of its managers."},
    }, title="a department: {label: …, parent: …}")
    scope_name = {"enum": ["none", "own", "department", "department_tree", "all"],
                  "description": "Which records: none, own, department, department_tree or all."}
    scope = {"title": "a scope, or {scope: …, where: …}", "oneOf": [
        scope_name,
        _closed({"scope": scope_name,
                 "where": {"type": "string", "description": "Only records for which this expression holds."}},
                ["scope"], title="{scope: …, where: …}"),
    ]}
    rights = _closed({
        "read": {**scope, "description": "Which records the role sees (lists, search, pickers, API)."},
        "create": {"type": "boolean", "description": "May create records."},
        "update": {**scope, "description": "Which records the role may change."},
        "delete": {**scope, "description": "Which records the role may delete."},
        "export": {**scope, "description": "Which records the role may export."},
        "export_limit": {"type": "integer", "minimum": 0, "description": "At most this many records per export."},
        "import": {"type": "boolean", "description": "May import files of this entity."},
        "transfer": {**scope, "description": "Which records the role may hand to another owner or share."},
    }, title="rights on an entity: {read: own, create: true, …}")
    role = _closed({
        "label": _ref("label"),
        "all": {"type": "boolean", "description": "May do everything (like admin)."},
        "entities": {"type": "object", "propertyNames": _ref("identifier"), "additionalProperties": rights,
                     "description": "Rights per entity (see the permissions section)."},
        "fields": {"type": "object", "additionalProperties": {"enum": ["hidden", "read", "write"]},
                   "description": "Field-level rights as entity.field: hidden | read | write."},
    }, title="a role: {label: …, entities: {…}}")
    dictionary = {
        "title": "a dictionary: a list of options, or {label: …, options: […]}",
        "oneOf": [
            _ref("options"),
            _closed({"label": _ref("label"), "options": _ref("options")}, ["options"],
                    title="{label: …, options: […]}"),
        ],
    }
    check = _closed({
        "check": {"type": "string", "description": "An expression that must hold to enter the stage."},
        "message": _ref("label"),
    }, ["check", "message"], title="an entry check: {check: …, message: …}")
    stage = _closed({
        "name": {**_ref("identifier"), "description": "The stored value of the stage."},
        "label": _ref("label"),
        "probability": {"type": "number", "minimum": 0, "maximum": 100,
                        "description": "Win probability in % (stage.probability in formulas)."},
        "requires": {"type": "array", "items": _ref("identifier"), "uniqueItems": True,
                     "description": "Fields that must be filled in to enter the stage."},
        "checks": {"type": "array", "items": check, "description": "Expressions that must hold to enter the stage."},
        "actions": {"type": "array", "items": _ref("label"), "description": "Key actions (关键动作), a checklist on the record."},
        "deliverables": {"type": "array", "items": _ref("label"),
                         "description": "Deliverables (产出物), a checklist on the record."},
        "outcome": {"enum": ["won", "lost"], "description": "A final stage: won or lost."},
        "stagnation_days": {"type": "integer", "minimum": 1,
                            "description": "Flag records in this stage longer than this many days."},
    }, ["name", "probability"], title="a stage: {name: …, label: …, probability: …}")
    pipeline = _closed({
        "label": _ref("label"),
        "entity": {**_ref("identifier"), "description": "The entity whose records move through the stages."},
        "field": {**_ref("identifier"),
                  "description": "Its stage field (type stage; created by the pipeline if absent). Default: stage."},
        "amount": {**_ref("identifier"),
                   "description": "The amount the board sums and weights by probability. Default: amount."},
        "stagnation_days": {"title": "days, or average", "oneOf": [
            {"type": "integer", "minimum": 1, "title": "a number of days"},
            {"const": "average", "title": "average: longer than the average time spent in that stage"}],
            "description": "Flag records that stay in a stage longer than this (R27)."},
        "forward_only": {"type": "boolean", "description": "Refuse moves back to an earlier stage."},
        "reopen_roles": {"type": "array", "items": _ref("identifier"), "uniqueItems": True,
                         "description": "Roles that may move a record out of a won/lost stage (admins always may)."},
        "stages": {"type": "array", "items": stage, "minItems": 2, "description": "The stages, in order."},
    }, ["entity", "stages"], title="a pipeline: {entity: …, field: …, stages: […]}")
    step = _closed({
        "approver": {"type": "string",
                     "pattern": r"^(manager(:[1-9])?|role:[a-z][a-z0-9_]*|user:\S+|department:[a-z][a-z0-9_]*)$",
                     "description": "manager, manager:<levels up>, role:<role>, user:<username> or department:<dept>."},
        "when": {"type": "string", "description": "The step applies only when this expression holds."},
        "mode": {"enum": ["any", "all"], "description": "any (default): one approver decides; all: every one must approve."},
        "allow_self": {"type": "boolean", "description": "The submitter may approve this step (default: no)."},
        "label": _ref("label"),
    }, ["approver"], title="an approval step: {approver: …, when: …, mode: any|all}")
    approval = _closed({
        "label": _ref("label"),
        "entity": {**_ref("identifier"), "description": "The entity whose writes the flow watches."},
        "when": {"type": "string", "description": "Starts when a create or update makes this expression true."},
        "lock": {"type": "array", "items": _ref("identifier"), "uniqueItems": True,
                 "description": "Fields frozen while pending; changing them after approval starts a new approval."},
        "status_field": {**_ref("identifier"),
                         "description": "A select field only the flow sets: pending, approved, rejected, withdrawn."},
        "steps": {"type": "array", "items": step, "minItems": 1, "description": "The steps, in order."},
    }, ["entity", "when", "steps"], title="an approval flow: {entity: …, when: …, steps: […]}")
    tenant = _closed({
        "name": {**_ref("identifier"), "description": "The tenant's short name (database, URLs)."},
        "label": _ref("label"),
        "locale": {"type": "string", "pattern": r"^[a-z]{2}([_-][A-Z]{2})?$",
                   "description": "Language and region, e.g. zh_CN or en_US."},
        "timezone": {"type": "string", "description": "An IANA time zone, e.g. Asia/Shanghai."},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code, e.g. CNY."},
    }, ["name"], title="the tenant: {name: …, label: …}")

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Formwork tenant config",
        "type": "object",
        "additionalProperties": False,
        "required": ["tenant", "entities"],
        "properties": {
            "tenant": tenant,
            "extends": {"type": "string", "description": "A template: a name in configs/ or a path to a .yaml file."},
            "dictionaries": _names_to(dictionary, "Preset lists referenced by select fields' options:."),
            "departments": _names_to(department, "The organisation tree."),
            "roles": _names_to(role, "Roles and what they may do."),
            "entities": {**_names_to(_ref("entity"), "The record types."), "minProperties": 1},
            "pipelines": _names_to(pipeline, "Sales pipelines: stages with probabilities and entry criteria."),
            "approvals": _names_to(approval, "Approval flows: multi-step, conditional, enforced on every write."),
            "plugins": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True,
                        "description": "The installed plugins (the `formwork` entry-point group) this tenant "
                                       "uses; without this key, every installed plugin."},
        },
        "$defs": {
            "identifier": {"type": "string", "pattern": IDENTIFIER, "maxLength": IDENTIFIER_MAX,
                           "title": "a name of lower-case letters, digits and _ starting with a letter"},
            "label": label,
            "option": option,
            "options": {"type": "array", "items": _ref("option"), "minItems": 1, "title": "a list of options"},
            "entity": entity,
            "fields": _names_to(_ref("field"), "Fields by name."),
            "field": _field_schema(type_names, field_types),
        },
    }


def schema_keys(schema: dict) -> set[str]:
    """Every property name the schema defines anywhere (for the docs test)."""
    keys: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in (node.get("properties") or {}).items():
                keys.add(k)
                walk(v)
            for k, v in node.items():
                if k != "properties":
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return keys


def schema_text(schema: dict) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def builtin_schema() -> dict:
    """The editor schema for the built-in plugins' field types (what tenant.schema.json holds)."""
    from ..fields import FieldTypeRegistry
    from ..plugins import make_plugin_manager

    return build_schema(FieldTypeRegistry.from_plugins(make_plugin_manager(enabled=())), for_editor=True)


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.write_text(schema_text(builtin_schema()), encoding="utf-8")
    return path

