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


def ready_tenant(config: str, db_url: str | None):
    """A loaded tenant whose database matches the config (else: run `formwork plan`)."""
    from ..schema.migrate import check_schema

    tenant = load_tenant(config, db_url)
    check_schema(tenant)
    return tenant


def acting_user(tenant, username: str | None):
    """The user named by --as (None: the engine itself); disabled or unknown users are refused."""
    if not username:
        return None
    user = tenant.users.by_username(username)
    if user is None:
        raise click.ClickException(f"no such user: {username}")
    if not user.active:
        raise click.ClickException(f"user {username} is disabled")
    return user


def entity_name(tenant, entity: str) -> str:
    if entity not in tenant.model.entities:
        raise click.ClickException(f"unknown entity '{entity}' (entities: {', '.join(tenant.model.entities)})")
    return entity


def utf8_stdout():
    """Chinese text on stdout even from a C-locale terminal."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")
