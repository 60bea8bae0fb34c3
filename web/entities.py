"""Generated pages for every entity: list, create, detail, edit and delete, all from the metadata."""
from __future__ import annotations

from flask import Blueprint, abort, render_template

from .context import records, tenant

bp = Blueprint("entities", __name__)


def entity_or_404(name: str):
    ent = tenant().model.entities.get(name)
    if ent is None:
        abort(404)
    return ent


def _pending(ent):
    from .i18n import gettext as _

    return render_template("errors/error.html", code=503, title=_("Not available yet"),
                           message=_("This part of the application is still being built."),
                           entity=ent), 503


@bp.get("/e/<entity>/")
def list_view(entity):
    ent = entity_or_404(entity)
    if records() is None:
        return _pending(ent)
    abort(501)


@bp.get("/e/<entity>/new")
def new(entity):
    ent = entity_or_404(entity)
    if records() is None:
        return _pending(ent)
    abort(501)


@bp.get("/e/<entity>/<int:record_id>")
def detail(entity, record_id):
    ent = entity_or_404(entity)
    if records() is None:
        return _pending(ent)
    abort(501)
