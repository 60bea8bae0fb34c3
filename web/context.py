"""Access to the tenant an app serves, and to the records service when the engine provides it."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app


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
    """The Tenant this app serves."""
    return current_app.extensions["formwork"].tenant


def records():
    """The tenant's records service, or None while the engine does not provide one."""
    try:
        return tenant().records
    except ImportError:
        return None
