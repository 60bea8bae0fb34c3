"""The tenant model: entities, fields, dictionaries, rules and layouts, resolved from YAML."""
from .model import (Dictionary, Entity, Field, Label, Option, Rule, SYSTEM_FIELDS, TenantInfo,
                    TenantModel)

__all__ = ["Dictionary", "Entity", "Field", "Label", "Option", "Rule", "SYSTEM_FIELDS", "TenantInfo",
           "TenantModel"]
