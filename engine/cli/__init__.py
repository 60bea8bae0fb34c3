"""The `formwork` command line: engine verbs here, more from the `formwork.commands` entry points."""
from __future__ import annotations

import importlib

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
    """Verbs from entry points (`formwork.commands`) and from plugins (formwork_cli_commands) are looked
    up only for a name that is not a built-in verb, or for a listing (help): `formwork import` neither
    scans the installed packages' entry points nor imports the web app for `serve`. A built-in verb
    wins over an entry point's, which wins over a plugin's."""

    def _entry_points(self) -> dict:
        if not hasattr(self, "_verb_entry_points"):
            from importlib.metadata import entry_points  # (about 25 ms: only when needed)

            self._verb_entry_points = {ep.name: ep for ep in entry_points(group="formwork.commands")}
        return self._verb_entry_points

    def _plugin_commands(self) -> dict:
        """Verbs of the built-in and installed plugins (formwork_cli_commands)."""
        if not hasattr(self, "_plugin_verbs"):
            from ..plugins import make_plugin_manager

            self._plugin_verbs = {}
            for batch in make_plugin_manager().hook.formwork_cli_commands():
                for command in batch or []:
                    self._plugin_verbs.setdefault(command.name, command)
        return self._plugin_verbs

    def get_command(self, ctx, cmd_name):
        command = super().get_command(ctx, cmd_name)
        if command is None:
            ep = self._entry_points().get(cmd_name)
            command = ep.load() if ep is not None else self._plugin_commands().get(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._entry_points()) | set(self._plugin_commands()))


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
