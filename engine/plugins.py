"""The per-tenant plugin manager: built-in plugins, then installed ones the tenant uses, then the caller's.

Installed plugins are discovered through the ``formwork`` entry-point group (datasette's and pytest's
way). A tenant config without a ``plugins:`` key uses every installed plugin; with one, exactly the
plugins it names (and the built-ins), so two tenants in one process can differ.
"""
from __future__ import annotations

import importlib
from typing import Iterable

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker("formwork")

ENTRY_POINT_GROUP = "formwork"

# Modules in plugins/ that provide Formwork's own field types, functions and features.
BUILTIN_PLUGINS = (
    "plugins.field_types",
    "plugins.expression_functions",
    "plugins.dedup",
    "plugins.workflows",
)


def installed_plugins() -> dict:
    """``{name: entry point}`` of the installed plugins (the ``formwork`` entry-point group)."""
    from importlib.metadata import entry_points  # (about 25 ms: only when a tenant loads)

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def make_plugin_manager(extra: tuple = (), enabled: Iterable[str] | None = None,
                        installed: dict | None = None) -> pluggy.PluginManager:
    """A fresh manager with the built-in plugins, the installed plugins named in `enabled` (every
    installed one when None; unknown names are left to ``formwork check`` to report) and `extra`
    (modules, objects or dotted module names passed by the caller, e.g. tests)."""
    pm = pluggy.PluginManager("formwork")
    pm.add_hookspecs(hookspecs)
    pm.hook.formwork_plugins_addhooks.call_historic(kwargs={"pm": pm})
    for item in BUILTIN_PLUGINS:
        _register(pm, importlib.import_module(item))
    if enabled is None or list(enabled):
        installed = installed_plugins() if installed is None else installed
        for name in (installed if enabled is None else enabled):
            if name in installed:
                _register(pm, installed[name].load(), name)
    for item in extra:
        _register(pm, importlib.import_module(item) if isinstance(item, str) else item)
    return pm


def _register(pm: pluggy.PluginManager, plugin, name: str | None = None) -> None:
    if not pm.is_registered(plugin):
        pm.register(plugin, name=name)


def config_plugin_names(data: dict | None) -> list[str] | None:
    """The plugin names a merged config's ``plugins:`` key lists (None: the key is absent)."""
    names = (data or {}).get("plugins")
    if not isinstance(names, list):
        return None
    return [n for n in names if isinstance(n, str)]
