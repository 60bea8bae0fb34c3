"""The per-tenant plugin manager: built-in plugins first, then any the tenant or caller names."""
from __future__ import annotations

import importlib

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker("formwork")

# Modules in plugins/ that provide Formwork's own field types, functions and validators.
BUILTIN_PLUGINS = (
    "plugins.field_types",
    "plugins.expression_functions",
    "plugins.dedup",
    "plugins.workflows",
)


def make_plugin_manager(extra: tuple = ()) -> pluggy.PluginManager:
    """A fresh manager with the built-in plugins and `extra` (modules, objects or dotted names)."""
    pm = pluggy.PluginManager("formwork")
    pm.add_hookspecs(hookspecs)
    for item in (*BUILTIN_PLUGINS, *extra):
        plugin = importlib.import_module(item) if isinstance(item, str) else item
        if not pm.is_registered(plugin):
            pm.register(plugin)
    return pm
