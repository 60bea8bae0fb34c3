"""Semantic checks of an entity's `duplicates:`, `quality:` and `follow_ups:` keys (run by
engine/config/build.py after the JSON Schema; errors are located at FILE:LINE:COL).

The schema already fixed the shapes; here: fields exist, a rule is well formed, a normaliser is
known, follow-ups point at a real activity entity, quality thresholds have something to measure.
"""
from __future__ import annotations

from ..config.validate import did_you_mean
from .followups import follow_up_source, reference_fields

NOT_COMPARABLE = ("subtable", "file")
QUALITY_SYSTEM_FIELDS = ("owner", "department")


def _field_error(ent, name, path, error, what: str) -> bool:
    """Report `name` when it is not a usable field of `ent`; True when it was reported."""
    fld = ent.fields.get(name)
    if fld is None:
        guess = did_you_mean(name, list(ent.fields))
        hint = f" (did you mean '{guess}'?)" if guess else ""
        error(path, f"{what}: '{name}' is not a field of {ent.name}{hint}", at="value")
        return True
    if fld.type in NOT_COMPARABLE:
        error(path, f"{what}: '{name}' is a {fld.type} field and cannot be compared", at="value")
        return True
    return False


def unknown_normalizer(name: str, known) -> str:
    """The message for a `normalize:` name no loaded plugin provides."""
    guess = did_you_mean(name, sorted(known))
    hint = f"did you mean '{guess}'?" if guess else f"known: {', '.join(sorted(known))}"
    return f"normalize: unknown normaliser '{name}' ({hint})"


def check_entity_settings(model, error, schema_failed, normalizers=None) -> None:
    """Check every entity's duplicate, quality and follow-up settings; `error(path, message, at)`.

    `normalizers`: every normaliser the tenant's plugins provide (a name outside them is reported);
    None when the plugins are not known here — the tenant checks the names once it has loaded them.
    """
    known = None if normalizers is None else set(normalizers)
    for ent in model.entities.values():
        base = ("entities", ent.name)
        settings = ent.settings or {}
        if "follow_ups" in settings and not schema_failed(base + ("follow_ups",)):
            _check_follow_ups(model, ent, settings["follow_ups"], base + ("follow_ups",), error)
        rules = settings.get("duplicates")
        if isinstance(rules, list) and not schema_failed(base + ("duplicates",)):
            seen: dict = {}
            for i, raw in enumerate(rules):
                if isinstance(raw, dict):
                    _check_rule(ent, raw, base + ("duplicates", i), error, known, seen, i)
        quality = settings.get("quality")
        if isinstance(quality, dict) and not schema_failed(base + ("quality",)):
            _check_quality(model, ent, quality, base + ("quality",), error)


def _check_rule(ent, raw: dict, path: tuple, error, known: set, seen: dict, i: int) -> None:
    match = raw.get("match")
    if "field" in raw and "fields" in raw:
        error(path + ("fields",), "give either field: (one field) or fields: (several), not both")
        return
    if "field" not in raw and "fields" not in raw:
        error(path, "a duplicate rule needs field: (one field) or fields: (several fields)")
        return
    names = [raw["field"]] if "field" in raw else list(raw["fields"])
    bad = False
    for j, name in enumerate(names):
        where = path + ("field",) if "field" in raw else path + ("fields", j)
        bad |= _field_error(ent, name, where, error, "field" if "field" in raw else "fields")
    if match == "fuzzy" and len(names) > 1:
        error(path + ("fields",), "fields: a fuzzy rule compares one field; use field: (or match: exact)")
    if match == "exact" and "threshold" in raw:
        error(path + ("threshold",), "threshold: only a fuzzy rule has a threshold (an exact rule needs equal values)")
    name = raw.get("normalize")
    if isinstance(name, str) and known is not None and name not in known:
        error(path + ("normalize",), unknown_normalizer(name, known), at="value")
    if not bad:
        key = (match, tuple(names), name)
        if key in seen:
            error(path, f"the same rule as item {seen[key] + 1} of duplicates")
        seen.setdefault(key, i)


def _check_follow_ups(model, ent, spec, path: tuple, error) -> None:
    name = spec if isinstance(spec, str) else spec.get("entity") if isinstance(spec, dict) else None
    where = path if isinstance(spec, str) else path + ("entity",)
    fu = model.entities.get(name)
    if fu is None:
        guess = did_you_mean(name, list(model.entities))
        hint = f" (did you mean '{guess}'?)" if guess else ""
        error(where, f"follow_ups: unknown entity '{name}'{hint}", at="value")
        return
    refs = reference_fields(fu, ent.name)
    field = spec.get("field") if isinstance(spec, dict) else None
    if field is not None:
        if field not in fu.fields:
            guess = did_you_mean(field, list(fu.fields))
            hint = f" (did you mean '{guess}'?)" if guess else ""
            error(path + ("field",), f"field: '{field}' is not a field of {name}{hint}", at="value")
        elif fu.fields[field] not in refs:
            error(path + ("field",), f"field: '{name}.{field}' is not a reference to {ent.name}", at="value")
    elif not refs:
        error(where, f"follow_ups: {name} has no reference field to {ent.name}", at="value")
    elif len(refs) > 1 and not any(f.required for f in refs):
        error(where, f"follow_ups: {name} has several references to {ent.name}; name one with field:",
              at="value")
    date = spec.get("date") if isinstance(spec, dict) else None
    if date is not None and date != "created_at":
        fld = fu.fields.get(date)
        if fld is None:
            guess = did_you_mean(date, list(fu.fields))
            hint = f" (did you mean '{guess}'?)" if guess else ""
            error(path + ("date",), f"date: '{date}' is not a field of {name}{hint}", at="value")
        elif fld.type not in ("date", "datetime"):
            error(path + ("date",), f"date: '{name}.{date}' is a {fld.type} field, not a date or datetime",
                  at="value")


def _check_quality(model, ent, quality: dict, path: tuple, error) -> None:
    for i, name in enumerate(quality.get("key_fields") or []):
        if name in QUALITY_SYSTEM_FIELDS:
            continue
        if name not in ent.fields:
            guess = did_you_mean(name, list(ent.fields) + list(QUALITY_SYSTEM_FIELDS))
            hint = f" (did you mean '{guess}'?)" if guess else ""
            error(path + ("key_fields", i), f"key_fields: '{name}' is not a field of {ent.name}{hint}", at="value")
        elif ent.fields[name].type in ("formula",):
            error(path + ("key_fields", i), f"key_fields: '{name}' is computed; list fields people fill in",
                  at="value")
    if "completeness_min" in quality and not quality.get("key_fields"):
        error(path + ("completeness_min",), "completeness_min: list the fields it measures in key_fields:")
    for key in ("followed_up_days", "followed_up_min"):
        if key in quality and follow_up_source(model, ent) is None:
            error(path + (key,), f"{key}: {ent.name} has no follow-ups; name its activity entity with "
                                 f"follow_ups: (see docs/config-format.md)")
    if "followed_up_min" in quality and "followed_up_days" not in quality:
        error(path + ("followed_up_min",), "followed_up_min: give the period too, e.g. followed_up_days: 90")
