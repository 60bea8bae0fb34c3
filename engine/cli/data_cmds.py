"""`formwork import`, `export` and `demo`: bulk data through the records service."""
from __future__ import annotations

import gc
import sys
from typing import Iterator

import click

from .common import (acting_user, config_argument, db_option, entity_name, ready_tenant, reports_errors,
                     utf8_stdout)





@click.command("import")
@config_argument
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
@click.option("--as", "as_user", metavar="USER", help="Import as this user (owner, audit, permissions).")
@click.option("--dry-run", is_flag=True, help="Validate every row, write nothing.")
@click.option("--skip-invalid", is_flag=True, help="Write the valid rows, report the others.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), help="Default: from the file extension.")
@click.option("--on-duplicate", type=click.Choice(["skip", "create", "update"]),
              help="Rows that duplicate a stored record or an earlier row (the entity's duplicates: rules): "
                   "leave them out, import them anyway, or update the stored record. Default: report them "
                   "as errors.")
@reports_errors
def import_(config, entity, file, db_url, as_user, dry_run, skip_invalid, fmt, on_duplicate):
    """Import a CSV (UTF-8, UTF-8 with BOM, GB18030) or JSON file; all-or-nothing by default."""
    from ..io.transfer import computed_stripper, read_rows
    from ..dedup.imports import import_rows
    from ..records.service import BulkFailed, RowError

    tenant = ready_tenant(config, db_url)
    ent = tenant.model.entity(entity_name(tenant, entity))
    user = acting_user(tenant, as_user)
    rows = read_rows(ent, file, fmt)
    total = len(rows)
    strip_computed = computed_stripper(ent, tenant.field_types)
    dropped: set[str] = set()
    pre_errors = []
    for i, row in enumerate(rows):
        if "__extra__" in row:
            extra = row.pop("__extra__")
            if any(c.strip() for c in extra):
                pre_errors.append(RowError(i + 1, "_row", "more cells than header columns"))
        rows[i], d = strip_computed(row)
        if d:
            dropped |= d
    if dropped:
        click.echo(f"note: computed column(s) recomputed, not imported: {', '.join(sorted(dropped))}", err=True)
    if pre_errors and not skip_invalid:
        for e in pre_errors:
            click.echo(f"row {e.row}: {e.field}: {e.message}", err=True)
        click.echo(f"nothing imported: {len(pre_errors)} error(s)", err=True)
        sys.exit(1)
    skip = {e.row for e in pre_errors}
    source = [r for n, r in enumerate(rows, start=1) if n not in skip] if skip else rows
    del rows
    count = len(source)
    if on_duplicate in (None, "create"):  # (the other modes go back to rows by number)
        source = _handed_over(source)
    show_bar = sys.stderr.isatty() and count > 1000
    # A bulk load allocates many long-lived objects and next to no cyclic garbage (about one object
    # per two rows): the collector's repeated full scans would only cost time (~5% of 100,000 rows).
    collecting = gc.isenabled()
    gc.disable()
    try:
        if show_bar:
            with click.progressbar(length=count, label=f"validating {count} rows",
                                   file=sys.stderr) as bar:
                result = import_rows(tenant, ent.name, source, user, on_duplicate, skip_invalid=skip_invalid,
                                                    dry_run=dry_run, progress=lambda _n: bar.update(1))
        else:
            result = import_rows(tenant, ent.name, source, user, on_duplicate, skip_invalid=skip_invalid,
                                                dry_run=dry_run)
    except BulkFailed as exc:
        for e in exc.row_errors:
            click.echo(f"row {_orig_row(e.row, skip)}: {e.field}: {e.message}", err=True)
        bad = len({e.row for e in exc.row_errors})
        click.echo(f"nothing imported: {bad} invalid row(s) of {total}", err=True)
        sys.exit(1)
    finally:
        if collecting:
            gc.enable()
    for e in pre_errors + [RowError(_orig_row(e.row, skip), e.field, e.message) for e in result.errors]:
        click.echo(f"row {e.row}: {e.field}: {e.message}", err=True)
    for e in getattr(result, "skipped_duplicates", []):
        click.echo(f"row {_orig_row(e.row, skip)}: {e.field}: left out, {e.message}", err=True)
    if on_duplicate in ("skip", "update"):
        click.echo(f"{'would update' if dry_run else 'updated'} {len(result.updated)} existing record(s), "
                   f"left out {len(result.skipped_duplicates)} duplicate row(s)", err=True)
    verb = "would import" if dry_run else "imported"
    skipped = result.skipped + len(pre_errors)
    click.echo(f"{verb} {len(result.created)} {ent.name} record(s)" + (f", skipped {skipped} invalid" if skipped else ""))


def _handed_over(rows: list) -> Iterator[dict]:
    """The rows in order, each dropped from the list as it is handed over: the memory of a long
    file's raw rows is reused for the records built from them instead of growing beside them."""
    rows.reverse()
    while rows:
        yield rows.pop()


def _orig_row(n: int, skipped: set[int]) -> int:
    """Map a row number among the rows sent back to its number in the file."""
    if not skipped or n < min(skipped):  # (every row of a file without pre-errors: no walk)
        return n
    orig = 0
    count = 0
    while count < n:
        orig += 1
        if orig not in skipped:
            count += 1
    return orig


@click.command()
@config_argument
@click.argument("entity")
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--as", "as_user", metavar="USER", help="Export what this user may see.")
@click.option("--system", "with_system", is_flag=True, help="Also export id, owner and audit stamps.")
@reports_errors
def export(config, entity, db_url, fmt, as_user, with_system):
    """Write every record of ENTITY to stdout in normalised form (CSV cells safe for spreadsheets)."""
    from ..io.transfer import write_csv, write_json

    tenant = ready_tenant(config, db_url)
    ent = tenant.model.entity(entity_name(tenant, entity))
    user = acting_user(tenant, as_user)
    records = tenant.records.export(ent.name, user, channel="cli")  # scope, limit and the export log
    utf8_stdout()
    out = sys.stdout
    writer = write_csv if fmt == "csv" else write_json
    n = writer(tenant.records, ent, records, out, with_system, tenant.records.permissions.visible_fields(ent, user))
    out.flush()
    click.echo(f"exported {n} {ent.name} record(s)", err=True)


@click.command()
@config_argument
@db_option
@click.option("--size", default=20, show_default=True, help="Records per entity.")
@click.option("--seed", default=None, type=int, help="Random seed for repeatable data.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the tenant already has records.")
@reports_errors
def demo(config, db_url, size, seed, if_empty):
    """Fill every entity with realistic demo data (faker, in the tenant's locale)."""
    from ..demo.generate import generate_demo

    tenant = ready_tenant(config, db_url)
    if if_empty and any(tenant.records.count(name) for name in tenant.model.entities):
        click.echo("demo data: skipped, the tenant already has records")
        return
    counts = generate_demo(tenant, size=size, seed=seed)
    click.echo("demo data: " + ", ".join(f"{n} {name}" for name, n in counts.items()))


commands = [import_, export, demo]
