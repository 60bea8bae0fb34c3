"""Quick search across entities by title, phone and company name, from every page (R10)."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_login import current_user

from .context import records, tenant
from .i18n import label

bp = Blueprint("search", __name__)


def run_search(text: str, limit: int = 20) -> list[dict] | None:
    """Hits with the entity's label added, or None when the engine has no records service yet."""
    service = records()
    if service is None:
        return None
    if not text:
        return []
    hits = service.quick_search(text, current_user.user, limit=limit)
    entities = tenant().model.entities
    for hit in hits:
        ent = entities.get(hit["entity"])
        hit["entity_label"] = label(ent.label) if ent else hit["entity"]
    return hits


@bp.get("/search")
def index():
    q = (request.args.get("q") or "").strip()[:200]
    hits = run_search(q)
    template = "search/_results.html" if request.headers.get("HX-Request") else "search/index.html"
    return render_template(template, q=q, hits=hits)
