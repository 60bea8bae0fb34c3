"""Deep merge of a config over its template, and `{remove: true}`.

- mapping over mapping: merged key by key (template keys first, in their order; new keys after);
- anything else (lists, scalars, a mapping over a non-mapping): the tenant's value replaces;
- a tenant value that is exactly ``{remove: true}`` deletes what the template defined there
  (an entity, a field, a dictionary, a department, a role, a rule list, a layout …).

The merged SourceMap keeps each value's location in the file that supplied it.
"""
from __future__ import annotations

from typing import Any

from ..errors import ConfigIssue
from .sourcemap import SourceMap

REMOVE = "remove"


def is_removal(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and value.get(REMOVE) is True


def _bad_removal(value: Any) -> bool:
    return isinstance(value, dict) and len(value) > 1 and value.get(REMOVE) is True


def strip_removals(data: Any, smap: SourceMap, issues: list[ConfigIssue], has_template: bool,
                   path: tuple = ()) -> tuple[Any, SourceMap]:
    """Report and drop `{remove: true}` markers where there is nothing to remove."""
    out_map = SourceMap(dict(smap.subtree(())))
    return _strip(data, out_map, smap, issues, path, has_template), out_map


def _strip(value: Any, out_map: SourceMap, src_map: SourceMap, issues: list, path: tuple,
           has_template: bool) -> Any:
    if isinstance(value, dict):
        result = {}
        for k, v in value.items():
            p = path + (k,)
            if is_removal(v):
                why = ("nothing named '%s' here in the template to remove" % k if has_template else
                       "remove: true deletes what a template defined, but nothing is inherited here")
                issues.append(ConfigIssue(src_map.key(p + (REMOVE,)), why))
                out_map.drop(p)
                continue
            if _bad_removal(v):
                issues.append(ConfigIssue(src_map.key(p + (REMOVE,)),
                                          "remove: true must be the only key of its mapping"))
                v = {kk: vv for kk, vv in v.items() if kk != REMOVE}
            result[k] = _strip(v, out_map, src_map, issues, p, has_template)
        return result
    if isinstance(value, list):
        return [_strip(v, out_map, src_map, issues, path + (i,), has_template) for i, v in enumerate(value)]
    return value


def deep_merge(base: dict, base_map: SourceMap, over: dict, over_map: SourceMap,
               issues: list[ConfigIssue]) -> tuple[dict, SourceMap]:
    """Merge `over` (the extending file) onto `base` (its template, already merged)."""
    merged_map = SourceMap(dict(base_map.subtree(())))
    merged = _merge(base, over, (), merged_map, over_map, issues)
    return merged, merged_map


def _merge(base: dict, over: dict, path: tuple, merged_map: SourceMap, over_map: SourceMap,
           issues: list[ConfigIssue]) -> dict:
    result = dict(base)
    for key, value in over.items():
        p = path + (key,)
        if is_removal(value):
            if key in result:
                del result[key]
                merged_map.drop(p)
            else:
                issues.append(ConfigIssue(over_map.key(p + (REMOVE,)),
                                          f"nothing named '{key}' here in the template to remove"))
            continue
        if _bad_removal(value):
            issues.append(ConfigIssue(over_map.key(p + (REMOVE,)),
                                      "remove: true must be the only key of its mapping"))
            value = {k: v for k, v in value.items() if k != REMOVE}
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            merged_map.set(p, over_map.key(p), over_map.value(p))
            result[key] = _merge(result[key], value, p, merged_map, over_map, issues)
            continue
        merged_map.copy_from(over_map, p)
        result[key] = _strip(value, merged_map, over_map, issues, p, has_template=True)
    return result
