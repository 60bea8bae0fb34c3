"""`formwork duplicates` (clusters of likely duplicates, index rebuild) and `formwork quality` (R18 figures)."""
from __future__ import annotations

import json
import sys
import unicodedata

import click

from .common import acting_user, config_argument, db_option, ready_tenant, reports_errors, utf8_stdout





def _describe_rule(rule) -> str:
    if rule.match == "fuzzy":
        return f"{rule.label} fuzzy ≥ {rule.threshold:g} ({rule.normalize[0]})"
    return f"{rule.label} exact"


@click.command("duplicates")
@config_argument
@click.argument("entity")
@db_option
@click.option("--reindex", is_flag=True, help="Rebuild the duplicate index of ENTITY from its records first.")
@click.option("--threshold", type=click.FloatRange(1, 100), help="Use this fuzzy threshold instead of the rules'.")
@click.option("--rule", "rule_fields", metavar="FIELD[+FIELD]", help="Only this rule (e.g. name, or name+customer).")
@click.option("--as", "as_user", metavar="USER", help="Only records this user may read, as they see them.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--limit", default=50, show_default=True, help="Show at most this many clusters (0: all).")
@reports_errors
def duplicates(config, entity, db_url, reindex, threshold, rule_fields, as_user, fmt, limit):
    """List clusters of likely duplicate records of ENTITY with their scores (R14, R20)."""
    from ..dedup.index import DedupIndex
    from ..dedup.scan import scan

    tenant = ready_tenant(config, db_url)
    if entity not in tenant.model.entities:
        raise click.ClickException(f"unknown entity '{entity}' (entities: {', '.join(tenant.model.entities)})")
    ent = tenant.model.entity(entity)
    index = DedupIndex(tenant)
    rules = index.rules(ent)
    if not rules:
        raise click.ClickException(f"{entity} has no duplicates: rules in {config} (see docs/config-format.md)")
    if rule_fields and rule_fields not in {r.label for r in rules}:
        raise click.ClickException(f"{entity} has no rule on '{rule_fields}' (rules: "
                                   f"{', '.join(r.label for r in rules)})")
    user = acting_user(tenant, as_user)
    utf8_stdout()
    if reindex:
        with tenant.write() as conn:
            n = index.rebuild(conn, ent)
        click.echo(f"indexed {n} {entity} record(s) under {len(rules)} rule(s)", err=True)
    clusters = scan(tenant, ent, user, threshold=threshold, rule_fields=rule_fields, index=index)
    shown = clusters if not limit else clusters[:limit]
    if fmt == "json":
        click.echo(json.dumps({"entity": entity, "clusters": [c.to_json() for c in shown],
                               "total": len(clusters)}, ensure_ascii=False, indent=2))
        return
    used = [r for r in rules if not rule_fields or r.label == rule_fields]
    click.echo(f"{len(clusters)} cluster(s) of likely duplicates in {entity} — rules: "
               + "; ".join(_describe_rule(r) for r in used)
               + (f" (fuzzy threshold {threshold:g})" if threshold else ""))
    for i, c in enumerate(shown, start=1):
        click.echo("")
        click.echo(f"cluster {i}: {len(c.ids)} records, best score {c.score:g}")
        for rid in c.ids:
            click.echo(f"  #{rid}  {c.titles.get(rid, '')}")
        click.echo("  pairs: " + ", ".join(f"#{p.a}–#{p.b} {p.score:g} ({p.rule})" for p in c.pairs))
    if len(shown) < len(clusters):
        click.echo(f"\n… {len(clusters) - len(shown)} more (use --limit 0 or --format json)")


def _fmt_check(check) -> str:
    if check.value is None:
        value = "—"
    elif check.name == "unowned":
        value = f"{check.value}"
    else:
        value = f"{check.value:.1f}%"
    if check.threshold is None:
        return value
    unit = "" if check.name == "unowned" else "%"
    mark = "pass" if check.passed else ("FAIL" if check.passed is False else "—")
    return f"{value} ({'≥' if check.comparison == '>=' else '≤'} {check.threshold:g}{unit} {mark})"


_NAMES = {"completeness": "key-field completeness", "followed_up": "followed up", "unowned": "no or inactive owner"}


@click.command("quality")
@config_argument
@click.argument("entity", required=False)
@db_option
@click.option("--as", "as_user", metavar="USER", help="Figures over the records this user may read.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--strict", is_flag=True, help="Exit 1 when a threshold fails (for scheduled checks).")
@reports_errors
def quality(config, entity, db_url, as_user, fmt, strict):
    """Live data-quality figures (R18, R36) per entity, department and user, with pass/fail."""
    from ..quality import quality_entities, quality_report

    tenant = ready_tenant(config, db_url)
    names = None
    if entity:
        if entity not in tenant.model.entities:
            raise click.ClickException(f"unknown entity '{entity}' (entities: {', '.join(tenant.model.entities)})")
        if tenant.model.entity(entity) not in quality_entities(tenant.model):
            raise click.ClickException(f"{entity} has no quality: settings in {config} (see docs/config-format.md)")
        names = [entity]
    elif not quality_entities(tenant.model):
        raise click.ClickException(f"no entity has quality: settings in {config} (see docs/config-format.md)")
    user = acting_user(tenant, as_user)
    report = quality_report(tenant, names, user)
    utf8_stdout()
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in report], ensure_ascii=False, indent=2))
    else:
        for r in report:
            _print_entity(r)
    if strict and any(r.passed is False for r in report):
        sys.exit(1)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _ljust(text: str, width: int) -> str:
    """Pad to a terminal width, counting CJK characters as two columns; cut what does not fit."""
    out = ""
    for ch in text:
        if _width(out + ch) > width:
            break
        out += ch
    return out + " " * (width - _width(out))


def _print_entity(r) -> None:
    g = r.overall
    verdict = {True: "pass", False: "FAIL", None: "no thresholds"}[r.passed]
    click.echo(f"{r.entity} ({r.label}): {g.records} record(s) — {verdict}")
    for c in g.checks:
        name = _NAMES[c.name] + (f" ({r.followed_up_days} days)" if c.name == "followed_up" else "")
        click.echo(f"  {name:<32} {_fmt_check(c)}")
    if r.key_fields and g.records:
        click.echo("  by field: " + ", ".join(f"{f} {100.0 * g.by_field.get(f, 0) / g.records:.1f}%"
                                              for f in r.key_fields))
        click.echo(f"  complete records: {g.complete_records} of {g.records}")
    for title, groups in (("by department", r.by_department), ("by user", r.by_user)):
        if not groups:
            continue
        click.echo(f"  {title}:")
        names = [c.name for c in g.checks]
        header = "    " + f"{'':<20} {'records':>8} " + " ".join(f"{_NAMES[n][:22]:>24}" for n in names)
        click.echo(header)
        for grp in groups:
            cells = []
            for c in grp.checks:
                cells.append(f"{_fmt_check(c) if c.name != 'unowned' else str(c.value):>24}")
            click.echo(f"    {_ljust(str(grp.label), 20)} {grp.records:>8} " + " ".join(cells))
    click.echo("")


commands = [duplicates, quality]
