"""Imports that settle duplicates: `formwork import … --on-duplicate skip|create|update`.

- default (no option): duplicates are row errors like any other (the bulk hook reports each row
  that matches a stored record or an earlier row): nothing is imported, or they are skipped with
  ``--skip-invalid``;
- ``create``: import them anyway (``confirm_duplicates``);
- ``skip``: leave out every row that matches a stored record or an earlier row, and say so;
- ``update``: a row matching a stored record the importer may see updates the best match with its
  non-empty values (a fuzzy rule's own field keeps the stored value: 星河科技(北京)有限公司 does not
  rename 北京星河科技有限公司); a row that only repeats an earlier row, or matches only records the
  importer may not see, is skipped and said so.

Everything happens in one transaction: any error and nothing is written (unless ``skip_invalid``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..errors import FormworkError, ValidationFailed
from ..records.prepare import Errors, is_empty
from ..records.service import BulkFailed, BulkResult, RowError
from .check import find_duplicates_many, item_text, text
from .index import DedupIndex

MODES = ("skip", "create", "update")


@dataclass
class ImportOutcome:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    skipped_duplicates: list[RowError] = field(default_factory=list)   # rows left out, with why
    errors: list[RowError] = field(default_factory=list)               # invalid rows skipped (skip_invalid)
    skipped: int = 0                                                   # how many invalid rows were skipped


def import_rows(tenant, entity_name: str, rows: Iterable[dict], user=None, on_duplicate: str | None = None,
                skip_invalid: bool = False, dry_run: bool = False, locale: str | None = None,
                progress=None) -> ImportOutcome:
    """Bulk-create `rows` (raw values as read from a file) settling duplicates as `on_duplicate` says.
    `rows` may be any iterable without `on_duplicate` or with "create"; "skip" and "update" go back
    to rows by number and need a list."""
    records = tenant.records
    entity = records.entity(entity_name)
    if on_duplicate not in (None, *MODES):
        raise FormworkError(f"--on-duplicate must be one of {', '.join(MODES)}")
    if on_duplicate in (None, "create"):
        result = records.create_many(entity.name, rows, user, locale=locale, skip_invalid=skip_invalid,
                                     dry_run=dry_run, progress=progress, confirm_duplicates=on_duplicate == "create")
        return ImportOutcome(created=result.created, errors=result.errors, skipped=result.skipped)
    loc = records._locale(user, locale)
    outcome = ImportOutcome()
    with tenant.write() as conn:
        prepared = _prepare(records, entity, rows, conn, loc, user)
        found = find_duplicates_many(tenant, entity, prepared, user, conn, loc, index=DedupIndex.for_tenant(tenant))
        leave_out: set[int] = set()
        errors: list[RowError] = []
        fuzzy_fields = {f for r in DedupIndex.for_tenant(tenant).rules(entity) if r.match == "fuzzy" for f in r.fields}
        for n, matches in sorted(found.items()):
            target = next((m for m in matches if m.get("visible") and m.get("id")), None)
            if on_duplicate == "update" and target is not None:
                values = {k: v for k, v in rows[n - 1].items() if not is_empty(v) and k not in fuzzy_fields}
                nested = conn.begin_nested()
                try:
                    records.update(entity.name, target["id"], values, user, locale=loc, connection=conn,
                                   confirm_duplicates=True)
                    nested.commit()
                    outcome.updated.append(target["id"])
                except ValidationFailed as exc:
                    nested.rollback()
                    errors.extend(RowError(n, k, m) for k, msgs in exc.errors.items() for m in msgs)
                except FormworkError as exc:
                    nested.rollback()
                    errors.append(RowError(n, "_record", str(exc)))
                leave_out.add(n)
                continue
            leave_out.add(n)
            outcome.skipped_duplicates.append(RowError(n, _field(matches[0]), _why(matches[0], loc)))
        rest = [n for n in range(1, len(rows) + 1) if n not in leave_out]
        try:
            result = records.create_many(entity.name, [rows[n - 1] for n in rest], user, locale=loc,
                                         skip_invalid=skip_invalid, progress=progress, confirm_duplicates=True,
                                         connection=conn)
        except BulkFailed as exc:
            errors.extend(RowError(rest[e.row - 1], e.field, e.message) for e in exc.row_errors)
            raise BulkFailed(sorted(errors, key=lambda e: (e.row, e.field))) from None
        if errors and not skip_invalid:
            raise BulkFailed(sorted(errors, key=lambda e: (e.row, e.field)))
        outcome.created = result.created
        outcome.errors = sorted(errors + [RowError(rest[e.row - 1], e.field, e.message) for e in result.errors],
                                key=lambda e: (e.row, e.field))
        outcome.skipped = len({e.row for e in outcome.errors})
        if dry_run:
            conn.rollback()
    return outcome


def _prepare(records, entity, rows: list[dict], conn, loc: str, user=None) -> list[tuple[int, dict]]:
    """(row number, coerced record) for the rows that coerce cleanly (the others are reported later);
    a reference named by title resolves only among the records the importer may read."""
    ctx = records.ctx(loc, conn, user=user)
    prep = records.preparer(entity)
    loader = records._loader(conn)
    out = []
    for n, values in enumerate(rows, start=1):
        errors = Errors(loc)
        clean = prep.coerce_input(dict(values), None, ctx, errors)
        record = prep.complete(clean, None, ctx, errors, loader=loader)
        if not errors:
            out.append((n, record))
    return out


def _field(match: dict) -> str:
    fields = match["matched_on"][0]["fields"]
    return fields[0] if len(fields) == 1 else "_record"


def _why(match: dict, loc: str) -> str:
    score = f"{match['score']:.0f}" if float(match["score"]).is_integer() else f"{match['score']:.1f}"
    if "row" in match:
        return text("row", loc, row=match["row"], score=score)
    return text("row_record", loc, item=item_text(match, loc))


__all__ = ["ImportOutcome", "MODES", "import_rows", "BulkResult"]
