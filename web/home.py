"""The personal workbench (R8): my records per entity and one-click "new customer" / "log follow-up"."""
from __future__ import annotations


from flask import Blueprint, render_template
from flask_login import current_user

from . import access
from .context import records, tenant
from .i18n import get_locale, gettext as _, label
from .listing import heading

bp = Blueprint("home", __name__)

FOLLOW_UP_NAMES = ("followup", "follow_up", "followups", "follow_ups", "activity", "visit")
CUSTOMER_NAMES = ("customer", "customers", "account", "client")


def quick_actions(model) -> list[dict]:
    """The workbench's one-click actions: `workbench.actions` in the config, else customer/follow-up."""
    names = ((model.config or {}).get("workbench") or {}).get("actions")
    if not names:
        names = [n for n in CUSTOMER_NAMES if n in model.entities][:1]
        names += [n for n in FOLLOW_UP_NAMES if n in model.entities][:1]
        if not names and model.entities:
            names = [next(iter(model.entities))]
    actions = []
    allowed = [n for n in names if n in model.entities and access.can(model.entities[n], "create")]
    for i, name in enumerate(allowed):
        ent = model.entities[name]
        text = (_("Log follow-up") if name in FOLLOW_UP_NAMES
                else _("New %(entity)s", entity=label(ent.label) or name))
        actions.append({"entity": name, "text": text, "primary": i == 0})
    return actions


def my_records(model, limit: int = 5) -> list[dict]:
    """For each entity: the caller's most recently updated records and how many they own."""
    service = records()
    boards = []
    focus = {a["entity"] for a in quick_actions(model)}
    for ent in access.readable_entities(model):
        board = {"entity": ent, "items": [], "count": None}
        if service is not None:
            mine = {"owner": str(current_user.id)}
            board["count"] = service.count(ent.name, current_user.user, filters=mine)
            if not board["count"] and ent.name not in focus:
                continue  # an empty board only for what the workbench's actions create
            page = service.list(ent.name, current_user.user, filters=mine, sort="-updated_at",
                                limit=limit)
            texts = service.display_many(ent.name, page.items, get_locale(), current_user.user)
            for rec, shown in zip(page.items, texts):
                board["items"].append({"id": rec["id"],
                                       "title": heading(ent, shown, tenant().field_types, rec["id"]),
                                       "updated": shown.get("updated_at", "")})
        boards.append(board)
    return boards


def greeting() -> str:
    hour = tenant().now().astimezone(tenant().timezone).hour
    return _("Good morning") if hour < 12 else _("Good afternoon") if hour < 18 else _("Good evening")


@bp.get("/")
def index():
    model = tenant().model
    return render_template("home/index.html", actions=quick_actions(model), boards=my_records(model),
                           greeting=greeting())
