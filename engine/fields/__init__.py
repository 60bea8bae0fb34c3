"""Field types: SQL type, coercion, validation and display per type; the registry a tenant builds."""
from .base import FieldContext, FieldType, FieldTypeRegistry
from .computed import autonumber_period, render_autonumber
from .storage import FileStorage, LocalFileStorage, StoredFile

__all__ = ["FieldContext", "FieldType", "FieldTypeRegistry", "FileStorage", "LocalFileStorage",
           "StoredFile", "autonumber_period", "render_autonumber"]
