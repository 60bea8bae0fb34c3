"""JSON Schema validation with short messages located at the offending key or value."""
from __future__ import annotations

import difflib
from typing import Any

import jsonschema

from ..errors import ConfigIssue
from .loader import describe
from .schema import IDENTIFIER, IDENTIFIER_MAX
from .sourcemap import SourceMap

_TYPE_WORDS = {
    "boolean": "true or false",
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def did_you_mean(word: str, choices) -> str | None:
    """The closest of `choices` to `word`, if any is close enough."""
    matches = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return matches[0] if matches else None


def validate_config(data: Any, smap: SourceMap, schema: dict, bad_paths: set | None = None
                    ) -> list[ConfigIssue]:
    """Every schema violation in `data`, as located, human-sized issues.

    The config path of each violation is added to `bad_paths` when given (so later checks can
    leave those parts alone instead of reporting the same problem twice).
    """
    validator = jsonschema.Draft202012Validator(schema)
    issues: list[ConfigIssue] = []
    seen: set[tuple] = set()
    for error in validator.iter_errors(data):
        for path, which, message in _translate(error, schema):
            if bad_paths is not None:
                bad_paths.add(tuple(path))
            loc = smap.key(path) if which == "key" else smap.value(path)
            key = (loc, message)
            if key not in seen:
                seen.add(key)
                issues.append(ConfigIssue(loc, message))
    return issues


_SECTION_ITEM = {"dictionaries": "dictionary", "departments": "department", "roles": "role"}


def _key_name(path: tuple) -> str:
    for part in reversed(path):
        if isinstance(part, str):
            return part
    return "config"


def _what(path: tuple) -> str:
    """A short name for the thing at `path`, e.g. "field 'name'" or "entity 'customer'"."""
    if len(path) >= 2 and path[-2] == "fields" and isinstance(path[-1], str):
        return f"field '{path[-1]}'"
    if len(path) == 2 and path[0] == "entities":
        return f"entity '{path[1]}'"
    if len(path) == 2 and path[0] in _SECTION_ITEM:
        return f"{_SECTION_ITEM[path[0]]} '{path[1]}'"
    if not path:
        return "the config"
    if isinstance(path[-1], int):
        return f"item {path[-1] + 1} of {_key_name(path)}"
    return f"'{path[-1]}'"


def _resolve(schema_node: Any, root: dict) -> Any:
    while isinstance(schema_node, dict) and "$ref" in schema_node and len(schema_node) <= 2:
        name = schema_node["$ref"].rsplit("/", 1)[-1]
        schema_node = root["$defs"][name]
    return schema_node


def _title(schema_node: Any, root: dict) -> str:
    node = _resolve(schema_node, root)
    if isinstance(node, dict):
        if node.get("title"):
            return node["title"]
        t = node.get("type")
        if isinstance(t, list):
            return " or ".join(_TYPE_WORDS.get(x, x) for x in t)
        if t:
            return _TYPE_WORDS.get(t, t)
    return "another form"


def _translate(error: jsonschema.ValidationError, root: dict) -> list[tuple[tuple, str, str]]:
    """[(path, "key"|"value", message)] for one jsonschema error."""
    path = tuple(error.absolute_path)
    kind = error.validator
    instance = error.instance
    name = _key_name(path)
    in_property_names = "propertyNames" in error.relative_schema_path or "propertyNames" in error.schema_path

    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = list((error.schema.get("properties") or {}).keys())
        out = []
        for extra in instance:
            if extra in allowed:
                continue
            guess = did_you_mean(extra, allowed)
            if guess:
                hint = f" (did you mean '{guess}'?)"
            elif len(allowed) <= 8:
                hint = f" (expected one of: {', '.join(allowed)})"
            else:
                hint = ""
            where = " at the top level" if not path else f" in {_what(path)}"
            out.append((path + (extra,), "key", f"unknown key '{extra}'{where}{hint}"))
        return out

    if kind == "required" and isinstance(instance, dict):
        missing = [p for p in error.validator_value if p not in instance]
        return [(path, "key", f"{_what(path)} is missing the required key '{m}'") for m in missing]

    if in_property_names:
        key_path = path + (instance,)
        if kind in ("pattern", "maxLength") and error.schema.get("pattern", IDENTIFIER) == IDENTIFIER:
            if kind == "maxLength":
                return [(key_path, "key", f"the name '{instance}' is too long (at most {IDENTIFIER_MAX} characters)")]
            return [(key_path, "key", f"'{instance}' is not a valid name: use lower-case letters, digits "
                                      f"and _, starting with a letter")]
        if kind == "pattern":
            return [(key_path, "key", f"'{instance}' is not a language code such as zh or en")]
        return [(key_path, "key", f"'{instance}': {error.message}")]

    if kind == "type":
        expected = error.validator_value
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in (expected if isinstance(expected, list) else [expected]))
        return [(path, "value", f"{name}: expected {words}, got {describe(instance)}")]

    if kind == "enum":
        choices = [str(c) for c in error.validator_value]
        guess = did_you_mean(instance, choices)
        if name in ("type", "returns"):
            hint = f" (did you mean '{guess}'?)" if guess else f" (known types: {', '.join(choices)})"
            return [(path, "value", f"unknown field type {describe(instance)}{hint}")]
        hint = f" (did you mean '{guess}'?)" if guess else ""
        return [(path, "value", f"{name}: {describe(instance)} is not one of {', '.join(choices)}{hint}")]

    if kind == "pattern":
        pattern = error.validator_value
        if pattern == IDENTIFIER:
            return [(path, "value", f"{name}: '{instance}' is not a valid name: use lower-case letters, "
                                    f"digits and _, starting with a letter")]
        if name == "locale":
            return [(path, "value", f"locale: '{instance}' is not a locale such as zh_CN or en_US")]
        if name == "currency":
            return [(path, "value", f"currency: '{instance}' is not a currency code such as CNY or USD")]
        if name == "approver":
            return [(path, "value", f"approver: '{instance}' is not one of manager, manager:<levels up>, "
                                    f"role:<role>, user:<username> or department:<department>")]
        return [(path, "value", f"{name}: '{instance}' does not have the expected form")]

    if kind == "maxLength":
        return [(path, "value", f"{name}: '{instance}' is too long (at most {error.validator_value} characters)")]
    if kind in ("minItems", "minProperties"):
        return [(path, "value", f"{name}: must not be empty")]
    if kind == "minLength":
        return [(path, "value", f"{name}: must not be empty")]
    if kind in ("minimum", "exclusiveMinimum"):
        return [(path, "value", f"{name}: must be at least {error.validator_value}, got {instance}")]
    if kind in ("maximum", "exclusiveMaximum"):
        return [(path, "value", f"{name}: must be at most {error.validator_value}, got {instance}")]

    if kind in ("oneOf", "anyOf"):
        branches = error.validator_value
        by_branch: dict[int, list] = {}
        for sub in error.context or ():
            by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [i for i in range(len(branches))
                   if not any(s.validator == "type" and not s.relative_path for s in by_branch.get(i, []))]
        if len(fitting) == 1 and by_branch.get(fitting[0]):
            out = []
            for sub in by_branch[fitting[0]]:
                out.extend(_translate(sub, root))
            return out
        if not error.context:  # valid under several branches (oneOf): should not happen with our schema
            return [(path, "value", f"{name}: ambiguous value")]
        alternatives = " or ".join(_title(b, root) for b in branches)
        return [(path, "value", f"{name}: expected {alternatives}, got {describe(instance)}")]

    return [(path, "value", f"{name}: {error.message}")]
