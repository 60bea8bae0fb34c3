"""Shared CLI plumbing: the --db option, loading a tenant, and printing errors without tracebacks."""
from __future__ import annotations

import functools
import sys

import click

from ..errors import ConfigError, FormworkError

db_option = click.option("--db", "db_url", envvar="FORMWORK_DB", default=None, metavar="URL",
                         help="Database URL (default: $FORMWORK_DB, else sqlite:///instance/<tenant>.db "
                              "beside the config).")
config_argument = click.argument("config", type=click.Path(dir_okay=False))


def load_tenant(config: str, db_url: str | None):
    """Load a tenant or exit 1 printing every config issue as FILE:LINE:COL: message."""
    from ..tenant import Tenant

    try:
        return Tenant.load(config, db_url=db_url)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(str(issue), err=True)
        click.echo(f"{len(exc.issues)} error(s) in {config}", err=True)
        sys.exit(1)


def reports_errors(func):
    """Turn engine errors into a message and exit 1 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            for issue in exc.issues:
                click.echo(str(issue), err=True)
            sys.exit(1)
        except FormworkError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper
