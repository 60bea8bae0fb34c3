"""Formwork's built-in expression functions, registered through the plugin hook like any plugin's.

The implementations live in ``engine.expressions.functions`` (the compiler also uses them as its
default set); a tenant's functions are the merged hook results (``functions_from_plugins``), where a
later plugin may add functions or replace one of these by name.
"""
from __future__ import annotations

from engine.expressions.functions import builtin_functions
from engine.plugins import hookimpl


@hookimpl
def formwork_expressions_functions() -> dict:
    return builtin_functions()
