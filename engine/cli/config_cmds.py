"""`formwork check` and `formwork schema`."""
from __future__ import annotations

import sys

import click

from ..errors import ConfigIssue, SourceLocation


@click.command()
@click.argument("config", type=click.Path())
def check(config: str) -> None:
    """Check a tenant config: print every error as FILE:LINE:COL: message (exit 1), or a summary."""
    try:
        from ..config import check_config

        # the plugins the tenant uses: the built-in ones and those its `plugins:` key names
        model, issues = check_config(config)
    except Exception as exc:  # noqa: BLE001 - `check` never prints a traceback
        model, issues = None, [ConfigIssue(SourceLocation(config, 1, 1),
                                           f"internal error while checking: {type(exc).__name__}: {exc}")]
    if issues or model is None:
        for issue in issues:
            click.echo(str(issue))
        n = len(issues)
        click.echo(f"{n} error{'s' if n != 1 else ''} in {config}", err=True)
        sys.exit(1)
    click.echo(summary(model))


def summary(model) -> str:
    """One line: tenant, label, counts and the files used."""
    ents = list(model.entities.values())
    n_fields = sum(len(e.fields) for e in model.all_entities())
    label = model.tenant.label.get(model.tenant.locale)
    named = f"{model.tenant.name} ({label})" if label and label != model.tenant.name else model.tenant.name
    files = " ← ".join(reversed(model.files))

    def count(n: int, word: str, plural: str) -> str:
        return f"{n} {word if n == 1 else plural}"

    return (f"ok: {named} — {count(len(ents), 'entity', 'entities')}, {count(n_fields, 'field', 'fields')}, "
            f"{count(len(model.dictionaries), 'dictionary', 'dictionaries')}, from {files}")


@click.command()
@click.option("--path", "show_path", is_flag=True, help="Print the path of the schema file instead.")
def schema(show_path: bool) -> None:
    """Print the JSON Schema of tenant config files (or, with --path, its file) for editors.

    It describes one file as written (before `extends:` is merged): no key is required there and
    `{remove: true}` is allowed; `formwork check` applies the strict rules to the merged config.
    """
    from ..config.schema import SCHEMA_PATH, build_schema, schema_text
    from ..config.build import default_plugins

    if show_path:
        click.echo(str(SCHEMA_PATH))
        return
    field_types, _ = default_plugins()
    click.echo(schema_text(build_schema(field_types, for_editor=True)), nl=False)


commands = [check, schema]
