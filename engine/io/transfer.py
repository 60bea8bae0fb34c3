"""Read CSV/JSON files into rows for the records service, and write records out in normalised form."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import IO, Iterator

from ..errors import FormworkError
from ..metadata.model import Entity

ENCODINGS = ("utf-8-sig", "gb18030")
# A leading one of these makes spreadsheet programs evaluate a cell as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ImportFileError(FormworkError):
    """The file itself cannot be read (encoding, format, header)."""


def neutralise(cell: str) -> str:
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def unneutralise(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:2] in FORMULA_STARTS and len(cell) > 1 else cell


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 — the encodings Chinese spreadsheets save in."""
    for enc in ENCODINGS:
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ImportFileError("the file is neither UTF-8 nor GB18030 text")


def header_map(entity: Entity, header: list[str], locale: str | None = None) -> dict[int, str]:
    """Column index → field name; a header cell may be a field name or its label in any language."""
    by_label: dict[str, str] = {}
    for f in entity.fields.values():
        for _lang, text in f.label.texts:
            by_label.setdefault(text.strip(), f.name)
    out: dict[int, str] = {}
    unknown = []
    for i, cell in enumerate(header):
        name = cell.strip()
        if name in entity.fields or name in ("owner", "department"):
            out[i] = name
        elif name in by_label:
            out[i] = by_label[name]
        elif name in ("id", "created_at", "created_by", "updated_at", "updated_by", "version"):
            continue  # system columns of an export are the engine's to assign
        elif name:
            unknown.append(name)
    if unknown:
        raise ImportFileError(f"unknown column(s) for {entity.name}: {', '.join(unknown)}")
    return out


def read_rows(entity: Entity, path: str | Path, fmt: str | None = None) -> list[dict]:
    """The data rows of a CSV or JSON file as {field: raw value} dicts (values still unparsed)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"cannot read {path}: {exc.strerror}") from None
    text = decode(data)
    if fmt == "json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ImportFileError(f"{path}: expected a JSON list of objects")
        return [_subtables_from_text(entity, {k: v for k, v in r.items() if k not in _SYSTEM_SKIP}) for r in rows]
    if fmt != "csv":
        raise ImportFileError(f"unsupported format '{fmt}' (csv or json)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{path}: the file is empty") from None
    columns = header_map(entity, header)
    pairs = list(columns.items())
    width = max(columns, default=-1) + 1   # a row with this many cells has every mapped one
    subtables = bool(entity.subtables())
    quoted = "'" in text  # without an apostrophe in the file no cell can be a neutralised formula
    names = [name for _, name in pairs]
    in_order = list(columns) == list(range(len(pairs)))  # cells map to names by position: zip
    rows = []
    for cells in reader:
        first = cells[0] if cells else ""
        if (not first or first.isspace()) and not "".join(cells).strip():
            continue  # a blank line (every cell empty or white space)
        if len(cells) >= width:
            row = dict(zip(names, cells)) if in_order else {name: cells[i] for i, name in pairs}
        else:
            row = {name: cells[i] for i, name in pairs if i < len(cells)}
        if quoted and "'" in "".join(cells):
            for name, cell in row.items():
                if cell[:1] == "'":  # only such cells can be neutralised formulas
                    row[name] = unneutralise(cell)
        if len(cells) > len(header):
            row["__extra__"] = cells[len(header):]
        rows.append(_subtables_from_text(entity, row) if subtables else row)
    return rows


_SYSTEM_SKIP = ("id", "created_at", "created_by", "updated_at", "updated_by", "version")


def _subtables_from_text(entity: Entity, row: dict) -> dict:
    for sub in entity.subtables():
        v = row.get(sub.name)
        if isinstance(v, str) and v.strip():
            try:
                row[sub.name] = json.loads(v)
            except json.JSONDecodeError:
                pass  # the field type reports it as not a list
    return row


def computed_stripper(entity: Entity, types):
    """``strip_computed(entity, types, row)`` for many rows of one entity that the caller owns: a row
    without any computed or subtable key (the usual case) comes back as it is."""
    special = {name for name, f in entity.fields.items() if types.for_field(f).computed or f.child is not None}
    nothing: frozenset = frozenset()

    def strip(row: dict) -> tuple[dict, set[str] | frozenset[str]]:
        if special.isdisjoint(row):
            return row, nothing
        return strip_computed(entity, types, row)

    return strip


def strip_computed(entity: Entity, types, row: dict) -> tuple[dict, set[str]]:
    """Drop formula/autonumber values (the engine recomputes them); returns the names dropped."""
    dropped = set()
    out = {}
    for k, v in row.items():
        f = entity.fields.get(k)
        if f is not None and types.for_field(f).computed:
            dropped.add(k)
            continue
        if f is not None and f.child is not None and isinstance(v, list):
            rows = []
            for r in v:
                if isinstance(r, dict):
                    clean, d = strip_computed(f.child, types, {kk: vv for kk, vv in r.items() if kk != "id"})
                    dropped.update(f"{k}.{x}" for x in d)
                    rows.append(clean)
                else:
                    rows.append(r)
            v = rows
        out[k] = v
    return out, dropped


def export_columns(entity: Entity, with_system: bool, visible: set[str] | None = None) -> list[str]:
    cols = [name for name in entity.fields if visible is None or name in visible]
    if with_system:
        cols = ["id", *cols, "owner", "department", "created_at", "created_by", "updated_at", "updated_by",
                "version"]
    return cols


def csv_cell(service, entity: Entity, name: str, record: dict) -> str:
    f = entity.fields.get(name)
    v = record.get(name)
    if f is None:
        text = "" if v is None else (v.isoformat() if hasattr(v, "isoformat") else str(v))
    elif f.child is not None:
        rows = service.to_json(entity, {name: v})[name] if v else []
        rows = [{k: x for k, x in r.items() if k not in ("id", "parent_id", "position")} for r in rows]
        text = json.dumps(rows, ensure_ascii=False, separators=(",", ":")) if rows else ""
    else:
        text = service.types.for_field(f).to_csv(f, v)
    return neutralise(text)


def write_csv(service, entity: Entity, records: Iterator[dict], out: IO[str], with_system: bool = False,
              visible: set[str] | None = None) -> int:
    cols = export_columns(entity, with_system, visible)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(cols)
    n = 0
    for rec in records:
        writer.writerow([csv_cell(service, entity, c, rec) for c in cols])
        n += 1
    return n


def write_json(service, entity: Entity, records: Iterator[dict], out: IO[str], with_system: bool = False,
               visible: set[str] | None = None) -> int:
    keep = set(export_columns(entity, with_system, visible))
    out.write("[")
    n = 0
    for rec in records:
        data = service.to_json(entity, rec)
        data = {k: v for k, v in data.items() if k in keep}
        for sub in entity.subtables():
            data[sub.name] = [{k: x for k, x in r.items() if k not in ("id", "parent_id", "position")}
                              for r in data.get(sub.name) or []]
        out.write(("\n" if n == 0 else ",\n") + json.dumps(data, ensure_ascii=False, default=str))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n
