"""Template helpers shared by every page: translation, labels, navigation and the language menu."""
from __future__ import annotations

from flask import request
from flask_login import current_user

from . import access
from .context import state, tenant
from .i18n import LANGUAGES, get_lang, get_locale, gettext, label


def nav_entities() -> list:
    """The top-level entities the user may read, in config order, for the navigation."""
    return access.readable_entities(tenant().model)


def user_initials(name: str) -> str:
    name = (name or "?").strip()
    if not name:
        return "?"
    if name[0].isascii():
        parts = [p for p in name.replace("_", " ").replace(".", " ").split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or name[:1].upper()
    return name[-2:] if len(name) >= 2 else name


def init_app(app) -> None:
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    @app.context_processor
    def inject():
        t = tenant()
        return {
            "_": gettext,
            "lbl": label,
            "lang": get_lang(),
            "locale": get_locale(),
            "languages": LANGUAGES,
            "tenant": t,
            "tenant_label": label(t.model.tenant.label) or t.name,
            "nav_entities": nav_entities,
            "can": access.can,
            "can_on": access.can_on,
            "user_initials": user_initials,
            "current_path": request.full_path.rstrip("?"),
            "schema_banner": state().schema_problem if getattr(current_user, "is_admin", False)
            else None,
            "config_errors": state().config_errors if getattr(current_user, "is_admin", False) else [],
        }
