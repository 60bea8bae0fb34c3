"""`formwork plan` and `formwork migrate`: a data-aware diff first, then one transaction."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .common import config_argument, db_option, load_tenant, reports_errors


@click.command()
@config_argument
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@reports_errors
def plan(config, db_url, as_json):
    """Show what `migrate` would change, with counts from the live data."""
    from ..schema.plan import Planner

    tenant = load_tenant(config, db_url)
    result = Planner(tenant).plan()
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(result.render())


@click.command()
@config_argument
@db_option
@click.option("--yes", is_flag=True, help="Apply archiving and data-dependent changes without asking.")
@click.option("--purge-archived", is_flag=True,
              help="After a backup file is written, drop archived columns and tables for good.")
@reports_errors
def migrate(config, db_url, yes, purge_archived):
    """Apply the plan in one transaction; refuse, changing nothing, when stored data would not fit."""
    from ..schema.migrate import MigrationRefused, migrate as run_migrate, purge_archived as run_purge
    from ..schema.plan import ADDITIVE, Planner

    tenant = load_tenant(config, db_url)
    if purge_archived:
        backup_dir = Path(config).resolve().parent / "instance" / "backups"
        if not yes and not (sys.stdin.isatty() and click.confirm(
                f"Drop archived columns and tables after writing a backup to {backup_dir}?")):
            click.echo("nothing purged (pass --yes to confirm)", err=True)
            sys.exit(1)
        path, dropped = run_purge(tenant, backup_dir)
        click.echo(f"backup written: {path}")
        click.echo(f"purged: {', '.join(dropped) if dropped else 'nothing was archived'}")
        return
    current = Planner(tenant).plan()
    if current.empty:
        click.echo("no changes")
        return
    click.echo(current.render())
    if current.blocking:
        click.echo(f"migrate refused, nothing changed: {len(current.blocking)} change(s) would fail", err=True)
        sys.exit(1)
    risky = [c for c in current.changes if c.category != ADDITIVE]
    if risky and not yes:
        if not sys.stdin.isatty():
            click.echo("this plan archives, renames or converts data: pass --yes to apply it", err=True)
            sys.exit(1)
        if not click.confirm("Apply these changes?"):
            click.echo("nothing changed")
            sys.exit(1)
    try:
        applied = run_migrate(tenant, applied_by="cli")
    except MigrationRefused as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo(f"applied {len(applied.changes)} change(s); schema version {applied.schema_fingerprint[:12]}")


commands = [plan, migrate]
