"""An entity's `duplicates:` rules as objects (the config is checked by engine/config/build.py)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# Bump when normalisers or key extraction change so every index rebuilds itself.
KEY_VERSION = 5
DEFAULT_THRESHOLD = 80
MATCHES = ("fuzzy", "exact")


@dataclass(frozen=True)
class DedupRule:
    """One duplicate rule of an entity."""

    entity: str
    fields: tuple[str, ...]
    match: str                     # fuzzy | exact
    threshold: float               # fuzzy: 0–100; exact: 100
    normalize: tuple[str, ...]     # the normaliser of each field
    position: int                  # index in the entity's duplicates: list

    @property
    def id(self) -> str:
        """A short stable name for the rule's rows in the index tables (repeated in every key row):
        "fz-"/"ex-" and a hash of the fields and normalisers."""
        text = f"{self.match}:{'+'.join(self.fields)}:{'+'.join(self.normalize)}"
        return ("fz-" if self.match == "fuzzy" else "ex-") + hashlib.sha1(text.encode()).hexdigest()[:10]

    @property
    def signature(self) -> str:
        """Changes whenever what the index holds for this rule would change."""
        data = [KEY_VERSION, self.match, list(self.fields), list(self.normalize)]
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:32]

    @property
    def label(self) -> str:
        return "+".join(self.fields)

    def involves(self, changed) -> bool:
        return any(f in changed for f in self.fields)


def default_normalizer(field) -> str:
    if field is None:
        return "text"
    if field.type == "phone":
        return "phone"
    if field.type == "email":
        return "email"
    return "text"


def rules_for(entity) -> list[DedupRule]:
    """The entity's rules; empty for entities without `duplicates:` (and for subtable rows)."""
    raw_rules = (entity.settings or {}).get("duplicates") or []
    out = []
    for i, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            continue
        fields = tuple(raw["fields"]) if raw.get("fields") else (raw.get("field"),)
        if not all(isinstance(f, str) and f in entity.fields for f in fields):
            continue
        match = raw.get("match", "exact")
        given = raw.get("normalize")
        normalize = tuple(given or default_normalizer(entity.fields[f]) for f in fields)
        threshold = float(raw.get("threshold", DEFAULT_THRESHOLD)) if match == "fuzzy" else 100.0
        out.append(DedupRule(entity.name, fields, match, threshold, normalize, i))
    return out


def raw_text(value: Any) -> str | None:
    """A stored value as text for a normaliser; None when empty."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return ",".join(sorted(str(v) for v in value))
    return str(value)
