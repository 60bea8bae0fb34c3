"""Tenant config: YAML with locations → extends/merge → JSON Schema → checked TenantModel.

Public interface:

- ``load_model(path, field_types=None, functions=None, normalizers=None) -> TenantModel`` (raises
  ``ConfigError`` with every issue);
- ``check_config(path, field_types=None, functions=None, normalizers=None) -> (TenantModel | None,
  [ConfigIssue])``; ``normalizers`` are the duplicate-rule normalisers the tenant's plugins provide;
- ``load_config(path) -> LoadedConfig`` the merged raw config with its ``SourceMap`` (no checks
  beyond YAML and ``extends``);
- ``build_schema(field_types=None) -> dict`` and ``SCHEMA_PATH`` (the committed JSON Schema);
- ``is_expression_default(value)``: whether a field's ``default`` is an expression.
"""
from .build import check_config, fingerprint, is_expression_default, load_model
from .loader import LoadedConfig, load_config, read_yaml
from .schema import SCHEMA_PATH, build_schema
from .sourcemap import SourceMap

__all__ = ["LoadedConfig", "SCHEMA_PATH", "SourceMap", "build_schema", "check_config", "fingerprint",
           "is_expression_default", "load_config", "load_model", "read_yaml"]
