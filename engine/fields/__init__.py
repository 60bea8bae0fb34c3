"""Field types: SQL type, coercion, validation and display per type; the registry a tenant builds."""
from .base import FieldContext, FieldType, FieldTypeRegistry

__all__ = ["FieldContext", "FieldType", "FieldTypeRegistry"]
