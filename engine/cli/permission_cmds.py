"""`formwork permissions`: the who-can-see-what matrix, so a role change can be reviewed as a diff."""
from __future__ import annotations

import click

from ..permissions import ACTIONS
from .common import config_argument, load_tenant, reports_errors


@click.command()
@config_argument
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="Only this role (repeatable).")
@reports_errors
def permissions(config, roles):
    """Print, per role and entity, each action's scope and the fields that differ from the default."""
    tenant = load_tenant(config, "sqlite://")
    known = tenant.records.permissions.roles
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise click.ClickException(f"unknown role(s): {', '.join(unknown)} (roles: {', '.join(known)})")
    rows = tenant.records.permissions.matrix(list(roles) or None)
    header = ["role", "entity", *ACTIONS, "fields"]
    table = [[r["role"], r["entity"], *(r["actions"][a] for a in ACTIONS),
              ", ".join(f"{f}={a}" for f, a in sorted(r["fields"].items())) or "-"] for r in rows]
    widths = [max(len(str(row[i])) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


commands = [permissions]
