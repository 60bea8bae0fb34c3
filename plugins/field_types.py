"""Formwork's built-in field types, registered through the same hook a third-party plugin uses."""
from __future__ import annotations

from engine.fields.builtin import builtin_field_types
from engine.plugins import hookimpl


@hookimpl
def formwork_fields_register():
    return builtin_field_types()
