"""Exceptions the engine raises towards the CLI, the web layer and the API."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceLocation:
    """Where a config value came from: file, 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a tenant config, printed as FILE:LINE:COL: message."""

    location: SourceLocation | None
    message: str

    def __str__(self) -> str:
        where = str(self.location) if self.location else "<config>"
        return f"{where}: {self.message}"


class FormworkError(Exception):
    """Base class for every error the engine reports to a user."""


class ConfigError(FormworkError):
    """A tenant config failed `formwork check`; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class ValidationFailed(FormworkError):
    """A write was refused; `errors` maps field name (or "_record") to messages in the tenant language."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))


class NotFound(FormworkError):
    """The entity or record does not exist (or is outside the caller's scope)."""


class Conflict(FormworkError):
    """Optimistic-lock failure: the record changed since the caller read it."""

    def __init__(self, message: str, current_version: int | None = None, changed_by: str | None = None,
                 changes: dict | None = None):
        self.current_version = current_version
        self.changed_by = changed_by
        self.changes = changes or {}
        super().__init__(message)


class Locked(FormworkError):
    """The record (or some of its fields) is frozen by a pending approval (HTTP 423)."""

    def __init__(self, message: str, fields: list[str] | None = None, approval_id: int | None = None):
        self.fields = fields or []
        self.approval_id = approval_id
        super().__init__(message)


class DuplicatesFound(FormworkError):
    """A write looks like a duplicate of existing records (the entity's `duplicates:` rules).

    `matches` are JSON-able dicts, best first, holding only what the caller may see (see
    engine/dedup/check.py); repeat the write with ``confirm_duplicates=True`` to save it anyway.
    """

    def __init__(self, message: str, matches: list[dict], entity: str | None = None):
        self.matches = matches
        self.entity = entity
        super().__init__(message)

    def to_json(self) -> dict:
        return {"duplicates": self.matches}


class SchemaMismatch(FormworkError):
    """The database schema does not match the config: run `formwork plan`."""


class BadRequest(FormworkError):
    """A query or body the engine will not interpret (unknown filter, operator, field)."""


@dataclass
class FieldValueError(Exception):
    """A single value failed coercion or validation; `key` names a message in engine.i18n."""

    key: str
    params: dict = field(default_factory=dict)
