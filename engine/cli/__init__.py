"""The `formwork` command line: engine verbs here, more from the `formwork.commands` entry points."""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points

import click

# Each module exposes `commands`, a list of click commands.
COMMAND_MODULES = (
    "engine.cli.config_cmds",    # check, schema
    "engine.cli.schema_cmds",    # plan, migrate
    "engine.cli.data_cmds",      # import, export, demo
    "engine.cli.user_cmds",      # user, token
    "engine.cli.dedup_cmds",     # duplicates, quality
    "engine.cli.permission_cmds",  # permissions
    "engine.cli.workflow_cmds",  # stalled, approvals
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="formwork")
def cli() -> None:
    """Formwork: a CRM engine driven by a tenant YAML config."""


def build_cli() -> click.Group:
    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).commands:
            cli.add_command(command)
    # Other packages (the web app's `serve`, third-party plugins) add verbs through entry points.
    for ep in entry_points(group="formwork.commands"):
        cli.add_command(ep.load(), ep.name)
    return cli


def main() -> None:
    build_cli()(prog_name="formwork")
