"""Dataclasses for a checked tenant model; built once from config by engine.config.build."""
from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any

from ..errors import SourceLocation
from ..i18n import language

# Every top-level entity table carries these columns; user configs may not define them.
SYSTEM_FIELDS = ("id", "created_at", "created_by", "updated_at", "updated_by", "owner", "department",
                 "version")
# Child (subtable) rows carry only these.
CHILD_SYSTEM_FIELDS = ("id", "parent_id", "position")


@dataclass(frozen=True)
class Label:
    """A display text given as a plain string or per language ({zh: …, en: …})."""

    texts: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, value: Any, fallback: str = "") -> "Label":
        if isinstance(value, dict):
            return cls(tuple((str(k), str(v)) for k, v in value.items()))
        if value is None or value == "":
            return cls((("*", fallback),))
        return cls((("*", str(value)),))

    def get(self, locale: str | None = None) -> str:
        """The text for a locale: its language, then any plain string, then the first one given."""
        wanted = language(locale)
        by_lang = dict(self.texts)
        for key in (wanted, "*", "zh", "en"):
            if by_lang.get(key):
                return by_lang[key]
        return self.texts[0][1] if self.texts else ""

    def __str__(self) -> str:
        return self.get()


@dataclass(frozen=True)
class Option:
    """One choice of a select field or dictionary."""

    value: str
    label: Label


@dataclass
class Dictionary:
    """A preset list (基础数据) referenced by select fields' `options:`."""

    name: str
    options: list[Option]
    label: Label
    source: SourceLocation | None = None

    def values(self) -> list[str]:
        return [o.value for o in self.options]


@dataclass
class Rule:
    """A record rule: `check` must not come out false, else `message` is the error."""

    check: Any  # engine.expressions.CompiledExpression
    message: Label
    field: str | None = None  # report the message under this field instead of "_record"
    source: SourceLocation | None = None


@dataclass
class Field:
    """A user-defined field of an entity (or of a subtable's rows)."""

    name: str
    type: str
    label: Label
    required: bool = False
    unique: bool = False
    indexed: bool = False
    default: Any = None                 # a literal default
    default_expr: Any = None            # or a CompiledExpression such as today()
    min: Any = None
    max: Any = None
    max_length: int | None = None
    pattern: str | None = None
    pattern_message: Label | None = None
    help: Label | None = None
    options: list[Option] | None = None  # select / multiselect, resolved from a dictionary or inline
    dictionary: str | None = None        # the dictionary name when options came from one
    to: str | None = None                # reference target entity
    expr: Any = None                     # formula: CompiledExpression
    returns: str | None = None           # formula result type
    format: str | None = None            # autonumber format
    child: "Entity | None" = None        # subtable rows' entity
    renamed_from: str | None = None
    settings: dict = dc_field(default_factory=dict)  # type-specific keys (file: max_size, accept …)
    source: SourceLocation | None = None
    entity: "Entity | None" = dc_field(default=None, repr=False)

    @property
    def column(self) -> str:
        return self.name

    def option_values(self) -> list[str]:
        return [o.value for o in self.options or []]

    def option_label(self, value: Any, locale: str | None = None) -> str:
        for o in self.options or []:
            if o.value == value:
                return o.label.get(locale)
        return "" if value is None else str(value)


@dataclass
class Entity:
    """An entity (a table of records), or the rows of a subtable when `parent` is set."""

    name: str
    label: Label
    fields: dict[str, Field]
    title: str | None = None
    rules: list[Rule] = dc_field(default_factory=list)
    list_layout: list[str] = dc_field(default_factory=list)
    form_layout: list[dict] = dc_field(default_factory=list)  # [{"section": Label, "fields": [...]}]
    parent: "Entity | None" = dc_field(default=None, repr=False)
    parent_field: str | None = None
    settings: dict = dc_field(default_factory=dict)  # keys later features read (duplicates, quality …)
    source: SourceLocation | None = None

    @property
    def table_name(self) -> str:
        return f"{self.parent.table_name}__{self.parent_field}" if self.parent else self.name

    @property
    def is_child(self) -> bool:
        return self.parent is not None

    @property
    def system_fields(self) -> tuple[str, ...]:
        return CHILD_SYSTEM_FIELDS if self.is_child else SYSTEM_FIELDS

    def subtables(self) -> list[Field]:
        return [f for f in self.fields.values() if f.child is not None]

    def title_field(self) -> Field | None:
        return self.fields.get(self.title) if self.title else None


@dataclass
class Stage:
    """One stage of a pipeline (R5, R6): its win probability and what must hold to enter it."""

    name: str
    label: Label
    probability: Any                     # Decimal 0-100
    position: int
    requires: list[str] = dc_field(default_factory=list)      # fields that must be filled in
    checks: list[Rule] = dc_field(default_factory=list)       # expressions that must hold
    actions: list[Label] = dc_field(default_factory=list)     # key actions (关键动作), a checklist
    deliverables: list[Label] = dc_field(default_factory=list)  # deliverables (产出物), a checklist
    outcome: str | None = None           # won | lost: a final stage
    stagnation_days: int | None = None   # overrides the pipeline's limit for this stage
    source: SourceLocation | None = None


@dataclass
class Pipeline:
    """A sales pipeline: the stages a record of `entity` moves through in its `field`."""

    name: str
    label: Label
    entity: str
    field: str
    stages: list[Stage]
    amount: str | None = None            # the money field the board sums (and weights)
    stagnation_days: int | None = None   # a fixed limit in days …
    stagnation_average: bool = False     # … or "average": longer than the average time in that stage
    forward_only: bool = False
    reopen_roles: list[str] = dc_field(default_factory=list)  # may move a deal out of won/lost
    source: SourceLocation | None = None

    def stage(self, name: Any) -> Stage | None:
        for s in self.stages:
            if s.name == name:
                return s
        return None


@dataclass
class ApprovalStep:
    """One step of an approval flow; `approver` is manager[:n], role:<r>, user:<u> or department:<d>."""

    position: int
    approver: str
    when: Any = None                     # CompiledExpression: the step applies only when it holds
    mode: str = "any"                    # any: one approver decides; all: every approver must approve
    allow_self: bool = False
    label: Label | None = None
    source: SourceLocation | None = None

    @property
    def kind(self) -> str:
        return self.approver.partition(":")[0]

    @property
    def argument(self) -> str:
        return self.approver.partition(":")[2]


@dataclass
class ApprovalFlow:
    """An approval flow (R4): starts when `when` becomes true on a write of `entity`."""

    name: str
    label: Label
    entity: str
    when: Any                            # CompiledExpression
    steps: list[ApprovalStep]
    lock: list[str] = dc_field(default_factory=list)
    status_field: str | None = None      # a select field only the flow sets (pending/approved/…)
    source: SourceLocation | None = None


@dataclass
class TenantInfo:
    """The `tenant:` block."""

    name: str
    label: Label
    locale: str = "zh_CN"
    timezone: str = "Asia/Shanghai"
    currency: str = "CNY"


@dataclass
class TenantModel:
    """A whole checked tenant config: what the schema, records service and web app are built from."""

    tenant: TenantInfo
    dictionaries: dict[str, Dictionary]
    entities: dict[str, Entity]
    config: dict                      # the merged config (template → tenant), for later sections
    files: list[str]                  # config files that went into it, template first
    fingerprint: str                  # a hash of the merged config: the "config version"
    source_map: Any = None            # engine.config.sourcemap.SourceMap
    pipelines: dict[str, Pipeline] = dc_field(default_factory=dict)
    approvals: dict[str, ApprovalFlow] = dc_field(default_factory=dict)
    extensions: dict[str, Any] = dc_field(default_factory=dict)  # what plugins built (formwork_model_build)

    def entity(self, name: str) -> Entity:
        return self.entities[name]

    def all_entities(self):
        """Top-level entities and, after each, its subtable row entities."""
        for ent in self.entities.values():
            yield ent
            stack = list(ent.subtables())
            while stack:
                f = stack.pop(0)
                yield f.child
                stack.extend(f.child.subtables())

    def pipelines_of(self, entity_name: str) -> list[Pipeline]:
        return [p for p in self.pipelines.values() if p.entity == entity_name]

    def approvals_of(self, entity_name: str) -> list[ApprovalFlow]:
        return [a for a in self.approvals.values() if a.entity == entity_name]

    def referencing(self, target: str) -> list[tuple[Entity, Field]]:
        """Every (entity, field) that holds a reference to `target`, subtables included."""
        return [(e, f) for e in self.all_entities() for f in e.fields.values()
                if f.to == target]   # only a record link has `to:`
