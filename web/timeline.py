"""The audit timeline on detail pages: who changed what, old → new, shown in the caller's language."""
from __future__ import annotations

import re

from flask_login import current_user

from .context import records, tenant
from .i18n import get_lang, get_locale, gettext as _, label
from .listing import field_for

ACTIONS = {"create": "created this record", "update": "changed", "delete": "deleted this record",
           "import": "imported this record", "transfer": "transferred this record",
           "share": "shared this record", "unshare": "stopped sharing this record",
           "merge": "merged other records into this one", "approval": "approval",
           "checklist": "updated the stage checklist", "help": "asked for help", "help_done": "finished helping"}

# The notes engine/dedup/merge.py writes (R20): on the survivor, on history copied to it from a merged
# record, and on a record re-pointed from a merged record to the survivor.
MERGE_NOTE = re.compile(r"merged (?P<ids>#\d+(?:, #\d+)*) into #\d+(?: \(re-pointed: (?P<moved>.*)\))?")
FROM_MERGED = re.compile(r"merged from #(?P<id>\d+)(?::.*)?", re.S)
INTO_MERGE = re.compile(r"merge into (?P<entity>\w+) #(?P<id>\d+)")
MOVED_ITEM = re.compile(r"(?P<table>\w+)\.(?P<field>\w+) (?P<n>\d+)")


def _plain(field, value, lang: str) -> str:
    """A JSON value from the audit log as text people read."""
    if value is None or value == "" or value == []:
        return "—"
    kind = field.type if field is not None else ""
    svc = records()
    if kind in ("select", "stage"):
        return field.option_label(value, get_locale())
    if kind == "multiselect" and isinstance(value, list):
        return "、".join(field.option_label(v, get_locale()) for v in value)
    if kind == "boolean":
        return ("是" if value else "否") if lang == "zh" else ("Yes" if value else "No")
    if kind == "reference" and svc is not None:
        try:
            return svc.titles(field.to, [int(value)], current_user.user).get(int(value)) or f"#{value}"
        except (TypeError, ValueError):
            return str(value)
    if kind == "user" and svc is not None:
        try:
            return svc.user_names([int(value)]).get(int(value)) or f"#{value}"
        except (TypeError, ValueError):
            return str(value)
    if field is not None and field.child is not None and isinstance(value, list):
        return _("%(n)s rows", n=len(value))
    if kind == "file" and isinstance(value, dict):
        return value.get("name") or "—"
    if kind == "datetime" and isinstance(value, str):
        try:
            from datetime import datetime

            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(
                tenant().timezone).strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return value
    if isinstance(value, (dict, list)):
        return str(value)
    return str(value)


def describe_changes(ent, changes: dict) -> list[dict]:
    """[{field label, old text, new text}] for {field: [old, new]} in field order."""
    lang = get_lang()
    out = []
    order = {n: i for i, n in enumerate(ent.fields)}
    for name, pair in sorted(changes.items(), key=lambda kv: order.get(kv[0].split(".")[0], 999)):
        base = name.split(".")[0]
        field = field_for(ent, base)
        old, new = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
        out.append({"name": name, "label": label(field.label) if field is not None else name,
                    "old": _plain(field, old, lang), "new": _plain(field, new, lang)})
    return out


def _merged_titles(ent, history: list[dict]) -> dict[int, str]:
    """{merged record id: its last title} from the history copied onto the survivor (only what the
    reader may see: `history` holds visible fields only)."""
    title = getattr(ent, "title", None)
    out: dict[int, str] = {}
    if not title:
        return out
    lang = get_lang()
    for item in history:  # newest first: the first value found is the last one it had
        m = FROM_MERGED.fullmatch(item.get("note") or "")
        pair = (item.get("changes") or {}).get(title)
        if m and isinstance(pair, list) and len(pair) == 2 and pair[1] not in (None, ""):
            out.setdefault(int(m["id"]), _plain(field_for(ent, title), pair[1], lang))
    return out


def _table_label(table: str, field_name: str) -> str:
    for e in tenant().model.all_entities():
        if e.table_name == table:
            return label(e.label) or table
    return f"{table}.{field_name}"


def merge_details(ent, item: dict, titles: dict[int, str]) -> dict | None:
    """What a merge-related audit note means, in the reader's language (None: not one)."""
    note = item.get("note") or ""
    if item.get("action") == "merge":
        m = MERGE_NOTE.fullmatch(note)
        if not m:
            return {"text": note}
        ids = [int(x) for x in re.findall(r"\d+", m["ids"])]
        merged = ", ".join(f"#{i} {titles[i]}" if i in titles else f"#{i}" for i in ids)
        moved = [_("%(what)s: %(n)s", what=_table_label(x["table"], x["field"]), n=x["n"])
                 for x in MOVED_ITEM.finditer(m["moved"] or "") if int(x["n"])]
        return {"text": _("Merged into this record: %(records)s", records=merged),
                "more": _("Re-pointed to this record: %(items)s", items="、".join(moved)
                          if get_lang() == "zh" else ", ".join(moved)) if moved else None}
    m = FROM_MERGED.fullmatch(note)
    if m:
        rid = int(m["id"])
        return {"text": _("from merged record %(record)s",
                          record=f"#{rid} {titles[rid]}" if rid in titles else f"#{rid}")}
    m = INTO_MERGE.fullmatch(note)
    if m:
        target = tenant().model.entities.get(m["entity"])
        return {"text": _("re-pointed by merging duplicates into %(entity)s #%(id)s",
                          entity=label(target.label) if target is not None else m["entity"], id=m["id"])}
    return None


def workflow_detail(item: dict) -> str | None:
    """What an approval, checklist or help entry says (R4 R26 R28)."""
    action = item.get("action")
    if action == "checklist":
        parts = []
        for key, pair in (item.get("changes") or {}).items():
            done = isinstance(pair, list) and len(pair) == 2 and bool(pair[1])
            parts.append(f"{'✓' if done else '✗'} {key.partition(':')[2] or key}")
        return "；".join(parts) if get_lang() == "zh" else "; ".join(parts)
    if action in ("approval", "help", "help_done"):
        return item.get("note") or None
    return None


def timeline(ent, history: list[dict]) -> list[dict]:
    """History entries (newest first) ready for the template."""
    tz = tenant().timezone
    svc = records()
    names = svc.user_names([i.get("user_id") for i in history]) if svc is not None else {}
    titles = _merged_titles(ent, history)
    out = []
    for item in history:
        at = item.get("at")
        out.append({"who": names.get(item.get("user_id")) or item.get("username") or "system",
                    "when": at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "",
                    "action": item.get("action"),
                    "verb": _(ACTIONS.get(item.get("action"), item.get("action") or "")),
                    "note": item.get("note"),
                    "merge": merge_details(ent, item, titles),
                    "changes": describe_changes(ent, item.get("changes") or {})
                    if item.get("action") in ("update", "transfer", "approval") else [],
                    "detail": workflow_detail(item)})
    return out
