"""The audit timeline on detail pages: who changed what, old → new, shown in the caller's language."""
from __future__ import annotations

from flask_login import current_user

from .context import records, tenant
from .i18n import get_lang, get_locale, gettext as _, label
from .listing import field_for

ACTIONS = {"create": "created this record", "update": "changed", "delete": "deleted this record",
           "import": "imported this record", "transfer": "transferred this record",
           "share": "shared this record", "unshare": "stopped sharing this record"}


def _plain(field, value, lang: str) -> str:
    """A JSON value from the audit log as text people read."""
    if value is None or value == "" or value == []:
        return "—"
    kind = field.type if field is not None else ""
    svc = records()
    if kind == "select":
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


def timeline(ent, history: list[dict]) -> list[dict]:
    """History entries (newest first) ready for the template."""
    tz = tenant().timezone
    svc = records()
    names = svc.user_names([i.get("user_id") for i in history]) if svc is not None else {}
    out = []
    for item in history:
        at = item.get("at")
        out.append({"who": names.get(item.get("user_id")) or item.get("username") or "system",
                    "when": at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at else "",
                    "action": item.get("action"),
                    "verb": _(ACTIONS.get(item.get("action"), item.get("action") or "")),
                    "note": item.get("note"),
                    "changes": describe_changes(ent, item.get("changes") or {})
                    if item.get("action") in ("update", "transfer") else []})
    return out
