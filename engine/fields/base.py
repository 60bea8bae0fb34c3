"""The FieldType interface every built-in and plugin field type implements."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any, Callable, ClassVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from ..clock import system_now
from ..errors import FieldValueError
from ..metadata.model import Field

# Filter operators the records service understands; each type allows a subset.
ALL_OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "contains", "startswith",
                 "empty", "not_empty")


@dataclass
class FieldContext:
    """What coercion and display need to know about the tenant and the caller."""

    locale: str = "zh_CN"
    timezone: ZoneInfo = dc_field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    currency: str = "CNY"
    phone_region: str = "CN"
    storage: Any = None                       # engine.fields.storage.FileStorage for file fields
    resolve_reference: Callable[[Field, Any], Any] | None = None  # title/id → id (import, forms)
    resolve_user: Callable[[Any], Any] | None = None              # username/id → user id
    departments: tuple[str, ...] = ()
    now: Callable[[], Any] = system_now                           # the tenant's clock


class FieldType:
    """One kind of field. Subclasses override what differs; values are None when empty."""

    name: ClassVar[str] = ""
    stored: ClassVar[bool] = True        # False: no column on the entity's table (subtable)
    computed: ClassVar[bool] = False     # True: users never write it (formula, autonumber)
    operators: ClassVar[tuple[str, ...]] = ("eq", "ne", "in", "empty", "not_empty")
    sortable: ClassVar[bool] = True
    # JSON Schema properties of the type-specific keys it accepts (merged into the config schema).
    settings_schema: ClassVar[dict] = {}
    # Capabilities: what the core, the API description and analytics may do with a field of this type
    # (the core asks these instead of testing type names; a plugin's type declares its own).
    json_type: ClassVar[dict] = {"type": "string"}   # the JSON Schema of a value in API JSON
    aggregations: ClassVar[tuple[str, ...]] = ("count", "count_distinct")
    groupable: ClassVar[bool] = False         # a dimension of a chart or report
    numeric: ClassVar[bool] = False           # a quantity: right-aligned, totalled
    search: ClassVar[str | None] = None       # quick search: "text" (contains) or "phone" (normalised)
    widget: ClassVar[str] = "text"            # the form input
    links_to: ClassVar[str | None] = None     # "record" (field.to), "user" or "department"
    indexed: ClassVar[bool] = False           # its column is indexed (look-ups by reference)
    unique: ClassVar[bool] = False            # its column is unique (autonumbers)
    temporal: ClassVar[bool] = False          # a date or time (periods, date buckets)
    storage_name: ClassVar[str | None] = None  # stored exactly like that type (its column is kept)

    def column_type(self, field: Field) -> sa.types.TypeEngine:
        raise NotImplementedError

    def coerce(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        """Turn a form/JSON/CSV value into the Python value; "" and None become None.

        Raise ``FieldValueError(key, params)`` when it cannot be read.
        """
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        return value

    def validate(self, field: Field, value: Any, ctx: FieldContext) -> None:
        """Check a coerced, non-empty value against the field's constraints; raise FieldValueError."""

    def to_db(self, field: Field, value: Any) -> Any:
        return value

    def from_db(self, field: Field, value: Any) -> Any:
        return value

    def to_json(self, field: Field, value: Any) -> Any:
        """The value in API JSON (and the normalised form import accepts back)."""
        return value

    def to_text(self, field: Field, value: Any, ctx: FieldContext) -> str:
        """The value formatted for people, in the caller's locale and timezone."""
        return "" if value is None else str(value)

    def to_csv(self, field: Field, value: Any) -> str:
        """The normalised text form for CSV export; importing it yields the same value."""
        v = self.to_json(field, value)
        return "" if v is None else str(v)

    def check_config(self, field: Field, raw: dict) -> list[tuple[tuple, str]]:
        """Type-specific config checks: ``[(path under the field, message)]``."""
        return []

    def demo_value(self, field: Field, faker: Any, ctx: FieldContext) -> Any:
        """A plausible value for demo data (None: leave empty)."""
        return None

    # -- capabilities of a particular field (a formula's are those of the type it returns) ----------

    def json_schema(self, field: Field) -> dict:
        """The JSON Schema of this field's value in API JSON (null when empty)."""
        return {"anyOf": [dict(self.json_type), {"type": "null"}]}

    def aggregations_for(self, field: Field) -> tuple[str, ...]:
        return self.aggregations

    def groupable_for(self, field: Field) -> bool:
        return self.groupable

    def numeric_for(self, field: Field) -> bool:
        return self.numeric

    def temporal_for(self, field: Field) -> bool:
        return self.temporal

    def target(self, field: Field) -> str | None:
        """What a value points to: the entity name for a record link, "user" or "department"."""
        return field.to if self.links_to == "record" else self.links_to

    def column_settings(self, field: Field) -> dict:
        """What shapes the field's column (kept in fw_schema_state): a change to any of it is a retype."""
        out = {"type": self.storage_name or self.name}
        if "scale" in field.settings:
            out["scale"] = field.settings["scale"]
        return out

    # -- conveniences (extensions; subclasses rarely override them) --------------------------------

    def operators_for(self, field: Field) -> tuple[str, ...]:
        """The filter operators for this particular field (a formula's depend on what it returns)."""
        return self.operators

    def sortable_for(self, field: Field) -> bool:
        """Whether lists may be sorted by this particular field."""
        return self.sortable

    def clean(self, field: Field, value: Any, ctx: FieldContext) -> Any:
        """``coerce`` then, for a non-empty result, ``validate``; returns the Python value."""
        value = self.coerce(field, value, ctx)
        if value is not None:
            self.validate(field, value, ctx)
        return value

    def __repr__(self) -> str:
        return f"<FieldType {self.name}>"


class FieldTypeRegistry:
    """The field types a tenant knows, gathered from every plugin's ``formwork_fields_register``."""

    def __init__(self, types: list[FieldType]):
        self._types: dict[str, FieldType] = {}
        for t in types:
            self._types[t.name] = t

    @classmethod
    def from_plugins(cls, pm) -> "FieldTypeRegistry":
        collected: list[FieldType] = []
        # pluggy calls the last-registered plugin first; reverse so later plugins win on name clashes.
        for batch in reversed(pm.hook.formwork_fields_register()):
            collected.extend(batch or [])
        return cls(collected)

    def __getitem__(self, name: str) -> FieldType:
        return self._types[name]

    def __contains__(self, name: str) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def for_field(self, field: Field) -> FieldType:
        return self._types[field.type]


def fail(key: str, **params) -> FieldValueError:
    """Shorthand for raising a FieldValueError with a message key."""
    return FieldValueError(key, params)
