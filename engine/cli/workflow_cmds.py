"""`formwork stalled` (R27: deals stuck in a stage, optionally telling their owners) and
`formwork approvals` (R4: what is pending, and with whom)."""
from __future__ import annotations

import json

import click

from .common import acting_user, config_argument, db_option, ready_tenant, reports_errors, utf8_stdout


@click.command("stalled")
@config_argument
@db_option
@click.option("--pipeline", help="Only this pipeline.")
@click.option("--notify", is_flag=True, help="Notify each owner (once per stay in a stage); run it daily.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@reports_errors
def stalled(config, db_url, pipeline, notify, fmt):
    """List records that stay in a pipeline stage longer than its limit (R27)."""
    tenant = ready_tenant(config, db_url)
    if pipeline and pipeline not in tenant.model.pipelines:
        raise click.ClickException(f"unknown pipeline '{pipeline}' (pipelines: {', '.join(tenant.model.pipelines) or 'none'})")
    items = tenant.pipelines.stalled(pipeline)
    names = tenant.records.user_names({i["owner"] for i in items})
    utf8_stdout()
    if fmt == "json":
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        for i in items:
            click.echo(f"{i['pipeline']}  {i['entity']} #{i['id']}  {i['title']}  {i['stage']}  "
                       f"{i['days']} d (limit {i['limit']})  owner: {names.get(i['owner'], '-')}")
        click.echo(f"{len(items)} stalled record(s)")
    if notify:
        click.echo(f"notified {tenant.pipelines.notify_stalled(pipeline)} owner(s)", err=fmt == "json")


@click.command("approvals")
@config_argument
@db_option
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "withdrawn"]))
@click.option("--as", "as_user", metavar="USER", help="Only what this user may see.")
@click.option("--mine", is_flag=True, help="With --as: only what waits for that user's decision.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@reports_errors
def approvals(config, db_url, status, as_user, mine, fmt):
    """List approvals with their current step and approvers (R4)."""
    tenant = ready_tenant(config, db_url)
    user = acting_user(tenant, as_user)
    if mine and user is None:
        raise click.ClickException("--mine needs --as USER")
    items = tenant.approvals.list(user, mine=mine, status=status, limit=1000)
    utf8_stdout()
    if fmt == "json":
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    for a in items:
        step = next((s for s in a["steps"] if s["status"] == "active"), None)
        who = ", ".join(x["name"] for x in step["approvers"]) if step else ""
        click.echo(f"#{a['id']}  {a['flow_label']}  {a['entity']} #{a['record_id']} {a['title']}  "
                   f"{a['status_label']}" + (f"  → {step['label']}: {who}" if step else ""))
    click.echo(f"{len(items)} approval(s)")


commands = [stalled, approvals]
