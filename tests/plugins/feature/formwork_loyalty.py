"""A third-party feature plugin used by the tests: loyalty points for one entity's records.

It adds what a real feature adds, through hooks only, touching no core file: a config key
(`loyalty:`) with its schema and checks, a system table, a tenant service, its own hook, a page, an
API route, a template variable and a CLI verb. docs/architecture.md walks through it.
"""
from __future__ import annotations

import sys

import click
import pluggy
import sqlalchemy as sa

hookimpl = pluggy.HookimplMarker("formwork")
hookspec = pluggy.HookspecMarker("formwork")


class LoyaltySpecs:
    """The plugin's own hook (pytest's addhooks pattern)."""

    @hookspec
    def formwork_loyalty_awarded(self, tenant, entity, record_id, points):
        """`points` were awarded to a record of `entity`."""


@hookimpl
def formwork_plugins_addhooks(pm):
    pm.add_hookspecs(LoyaltySpecs)


@hookimpl
def formwork_config_schema():
    tiers = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
             "description": "Tier names and the points each needs."}
    return {"tenant": {"loyalty": {
        "type": "object", "additionalProperties": False, "required": ["entity", "tiers"],
        "properties": {"entity": {"type": "string"}, "tiers": tiers,
                       "points_per_record": {"type": "integer", "minimum": 1}}}}}


@hookimpl
def formwork_model_build(builder, model):
    raw = builder.data.get("loyalty")
    if not isinstance(raw, dict):
        return
    entity = raw.get("entity")
    if entity not in model.entities:
        builder.error(("loyalty", "entity"), f"loyalty: no entity '{entity}'", at="value")
        return
    model.extensions["loyalty"] = {"entity": entity, "tiers": dict(raw.get("tiers") or {}),
                                   "points": int(raw.get("points_per_record", 10))}


@hookimpl
def formwork_schema_tables(metadata, model):
    if "loyalty" not in model.extensions:
        return {}
    return {"loyalty_points": sa.Table(
        "fw_loyalty_points", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("entity", sa.String(100), nullable=False),
        sa.Column("record_id", sa.BigInteger, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Index("ix_fw_loyalty_points_record", "entity", "record_id"))}


class Loyalty:
    """The tenant service: award and read points."""

    def __init__(self, tenant):
        self.tenant = tenant
        self.settings = tenant.model.extensions["loyalty"]
        self.table = tenant.schema.system["loyalty_points"]

    def award(self, conn, entity: str, record_id: int, points: int) -> None:
        conn.execute(self.table.insert().values(entity=entity, record_id=record_id, points=points))
        self.tenant.pm.hook.formwork_loyalty_awarded(tenant=self.tenant, entity=entity, record_id=record_id,
                                                     points=points)

    def balance(self, record_id: int) -> int:
        with self.tenant.db.connect() as conn:
            total = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(self.table.c.points), 0))
                                 .where(self.table.c.entity == self.settings["entity"],
                                        self.table.c.record_id == record_id)).scalar_one()
        return int(total)

    def tier(self, record_id: int) -> str | None:
        points = self.balance(record_id)
        reached = [(need, name) for name, need in self.settings["tiers"].items() if points >= need]
        return max(reached)[1] if reached else None


@hookimpl
def formwork_tenant_services():
    return {"loyalty": Loyalty}


@hookimpl
def formwork_records_after_create(tenant, entity, record, user, connection):
    settings = tenant.model.extensions.get("loyalty")
    if settings and entity.name == settings["entity"]:
        tenant.service("loyalty").award(connection, entity.name, record["id"], settings["points"])


@hookimpl
def formwork_web_setup(app, tenant):
    from flask import Blueprint, abort, jsonify

    from web.context import tenant as serving

    if "loyalty" not in tenant.model.extensions:
        return
    bp = Blueprint("loyalty", __name__)

    @bp.get("/loyalty/<int:record_id>")
    def page(record_id):
        svc = serving().service("loyalty")
        return f"<h1>Loyalty</h1><p>{svc.balance(record_id)} points, tier {svc.tier(record_id)}</p>"

    @bp.get("/api/v1/loyalty/<int:record_id>")
    def api(record_id):
        if record_id <= 0:
            abort(404)
        svc = serving().service("loyalty")
        return jsonify({"record": record_id, "points": svc.balance(record_id), "tier": svc.tier(record_id)})

    app.register_blueprint(bp)


@hookimpl
def formwork_web_template_variables(tenant, user):
    return {"loyalty_enabled": "loyalty" in tenant.model.extensions}


@click.command("loyalty")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("record_id", type=int)
def loyalty_command(config, record_id):
    """Print a record's loyalty points and tier."""
    from engine.tenant import Tenant

    tenant = Tenant.load(config)
    svc = tenant.service("loyalty")
    click.echo(f"{svc.balance(record_id)} {svc.tier(record_id)}")
    sys.stdout.flush()


@hookimpl
def formwork_cli_commands():
    return [loyalty_command]
