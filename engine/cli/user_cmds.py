"""CLI verbs for accounts: `formwork user add|disable|list|reset-password` and `formwork token create`."""
from __future__ import annotations

import functools
import sys
import unicodedata

import click
import sqlalchemy as sa

from .common import config_argument, db_option, load_tenant, reports_errors


def needs_tables(func):
    """Say "run formwork migrate" instead of a traceback when the fw_ tables are missing."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            click.echo(f"error: the database is not ready ({str(exc.orig).splitlines()[0]}); "
                       "run `formwork migrate` first", err=True)
            sys.exit(1)

    return wrapper


@click.group()
def user() -> None:
    """Manage user accounts (initial passwords must be changed at first login)."""


@user.command("add")
@config_argument
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="A role from the config (repeatable).")
@click.option("--department", default=None, help="The user's department.")
@click.option("--manages", multiple=True, help="A department this user manages (repeatable).")
@click.option("--password", default=None, help="Initial password (default: a random one, printed).")
@click.option("--display-name", default=None, help="The name shown in the app.")
@click.option("--email", default=None)
@db_option
@reports_errors
@needs_tables
def user_add(config, username, roles, department, manages, password, display_name, email, db_url):
    """Create USERNAME with one or more roles."""
    tenant = load_tenant(config, db_url)
    try:
        account, generated = tenant.users.add(username, roles, department=department, password=password,
                                              manages=manages, display_name=display_name, email=email)
    finally:
        tenant.dispose()
    click.echo(f"created user {account.username} (roles: {', '.join(account.roles)})")
    if generated:
        click.echo(f"initial password (must be changed at first login): {generated}")


@user.command("disable")
@config_argument
@click.argument("username")
@click.option("--transfer-to", "transfer_to", default=None, metavar="OTHER",
              help="Who takes over USERNAME's records (default: the manager of their department).")
@db_option
@reports_errors
@needs_tables
def user_disable(config, username, transfer_to, db_url):
    """Disable USERNAME at once (sessions end, API tokens stop working) and hand every record they own
    over to OTHER or their manager, as one audited operation (R44)."""
    from ..departure import depart

    tenant = load_tenant(config, db_url)
    try:
        result = depart(tenant, username, transfer_to)
    finally:
        tenant.dispose()
    click.echo(f"disabled user {username}; sessions and tokens revoked")
    if result.counts:
        click.echo(f"handed {result.total} record(s) over to {result.successor}:")
        for entity, n in result.counts.items():
            click.echo(f"  {entity}: {n}")
    else:
        click.echo("no records to hand over")


@user.command("enable")
@config_argument
@click.argument("username")
@db_option
@reports_errors
@needs_tables
def user_enable(config, username, db_url):
    """Enable USERNAME again (old tokens stay revoked)."""
    tenant = load_tenant(config, db_url)
    try:
        tenant.users.enable(username)
    finally:
        tenant.dispose()
    click.echo(f"enabled user {username}")


@user.command("reset-password")
@config_argument
@click.argument("username")
@click.option("--password", default=None, help="New password (default: a random one, printed).")
@db_option
@reports_errors
@needs_tables
def user_reset_password(config, username, password, db_url):
    """Set a new password for USERNAME, to be changed at next login."""
    tenant = load_tenant(config, db_url)
    try:
        _account, generated = tenant.users.reset_password(username, password)
    finally:
        tenant.dispose()
    click.echo(f"password reset for {username}; it must be changed at next login")
    if generated:
        click.echo(f"new password: {generated}")


@user.command("list")
@config_argument
@db_option
@reports_errors
@needs_tables
def user_list(config, db_url):
    """List every user with roles, department and status."""
    tenant = load_tenant(config, db_url)
    try:
        accounts = tenant.users.list()
    finally:
        tenant.dispose()
    if not accounts:
        click.echo("no users")
        return
    rows = [("USERNAME", "NAME", "ROLES", "DEPARTMENT", "STATUS")]
    for a in accounts:
        status = "active" if a.active else "disabled"
        if a.active and a.must_change_password:
            status = "active (must change password)"
        rows.append((a.username, a.display_name, ",".join(a.roles), a.department or "", status))
    widths = [max(_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(r, widths)).rstrip())


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


@click.group()
def token() -> None:
    """Manage API tokens (send as `Authorization: Bearer <token>`)."""


@token.command("create")
@config_argument
@click.argument("username")
@click.option("--label", default="", help="What the token is for.")
@db_option
@reports_errors
@needs_tables
def token_create(config, username, label, db_url):
    """Create an API token for USERNAME; the token is the last word printed."""
    tenant = load_tenant(config, db_url)
    try:
        plaintext = tenant.users.create_token(username, label)
    finally:
        tenant.dispose()
    click.echo(f"API token for {username} (shown once, store it now): {plaintext}")


commands = [user, token]
