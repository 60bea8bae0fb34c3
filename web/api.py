"""JSON API v1 over the records service: /api/v1/<entity>[/<id>[/history]], /api/v1/search, /api/v1/."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
