"""URL parts checked before a view runs: an `<int:…>` id beyond a BIGINT matches no route (404)."""
from __future__ import annotations

from werkzeug.routing import IntegerConverter

from engine.ids import MAX_ID


class IdConverter(IntegerConverter):
    """Werkzeug's `int`, capped at the largest id the database can hold: a 30-digit "id" is a 404,
    not an overflow in the driver."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def init_app(app) -> None:
    """Use IdConverter for every `<int:…>` of this app (before any blueprint registers its rules)."""
    app.url_map.converters["int"] = IdConverter
