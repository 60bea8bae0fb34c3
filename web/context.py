"""Access to the tenant an app serves, and to the records service when the engine provides it."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app, g, has_request_context


@dataclass
class FormworkState:
    """What one app holds in app.extensions["formwork"]: its tenant and per-app settings."""

    tenant: object
    schema_problem: str | None = None           # set when the config waits for `formwork migrate`
    config_errors: list = field(default_factory=list)  # FILE:LINE:COL lines of a bad config on disk
    extra: dict = field(default_factory=dict)


def state() -> FormworkState:
    return current_app.extensions["formwork"]


def tenant():
    """The Tenant this request began with (web/reload.py pins it), else the one the app serves now."""
    # A reload may swap the served tenant mid-request: mixing the old config's entities with the
    # new one's tables is what broke creates, so a request sees only the tenant it started with.
    if has_request_context():
        pinned = g.get("formwork_tenant")
        if pinned is not None:
            return pinned
    return current_app.extensions["formwork"].tenant


def records():
    """The tenant's records service, or None while the engine does not provide one."""
    try:
        return tenant().records
    except ImportError:
        return None
