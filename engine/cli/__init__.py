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


class _Verbs(click.Group):
    """Verbs from entry points are loaded when named or listed (help), not on every start: `formwork
    import` does not import the web app for `serve`. An entry point still replaces a built-in verb of
    the same name."""

    def _entry_points(self) -> dict:
        if not hasattr(self, "_verb_entry_points"):
            self._verb_entry_points = {ep.name: ep for ep in entry_points(group="formwork.commands")}
            self._loaded_verbs: set[str] = set()
        return self._verb_entry_points

    def get_command(self, ctx, cmd_name):
        ep = self._entry_points().get(cmd_name)
        if ep is not None and cmd_name not in self._loaded_verbs:
            self.add_command(ep.load(), cmd_name)
            self._loaded_verbs.add(cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._entry_points()))


@click.group(cls=_Verbs, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="formwork")
def cli() -> None:
    """Formwork: a CRM engine driven by a tenant YAML config."""


def build_cli() -> click.Group:
    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).commands:
            cli.add_command(command)
    # Other packages (the web app's `serve`, third-party plugins) add verbs through entry points,
    # loaded by _Verbs when used.
    return cli


def main() -> None:
    build_cli()(prog_name="formwork")
