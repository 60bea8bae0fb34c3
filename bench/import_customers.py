"""Load 100,000 customers through `formwork import` beside a plain SQLAlchemy Core insert of the same rows.

Usage: .venv/bin/python bench/import_customers.py [--rows N] [--db sqlite|postgresql] [--config PATH] [--rounds R]

Both sides write the same rows into identical, freshly migrated tables in the same run. The import
side is the real CLI in a subprocess (CSV parsing, coercion, validation, formulas, rules, uniqueness
and reference checks, autonumbers, the audit row per record, one transaction). The baseline is
`conn.execute(table.insert(), rows)` in chunks of 500 with already-typed values and nothing else.
Target: import ≥ 1/3 of Core's rows/s (the default config is issue 2's customer; with
`--config sample_tenant.yaml` the import also checks issue 6's duplicate rules, a much larger job). The two are measured in paired rounds (Core, then import, each
into fresh tables) and the median of the rounds' ratios is reported, with the ratio of CPU times
(the baseline's in-process CPU against the import process's), steadier on a shared machine.
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine.demo.generate import DemoGenerator  # noqa: E402
from engine.schema.migrate import migrate  # noqa: E402
from engine.tenant import Tenant  # noqa: E402
import benchdb  # noqa: E402



def database(kind: str, folder: Path, name: str) -> tuple[str, callable]:
    """A fresh database URL and a function that removes it."""
    return benchdb.database(kind, folder / (name + ".db"))


def distinct_company(gen) -> str:
    """A company name unlike the others (the duplicate rules would refuse near-identical ones)."""
    words = "".join(gen.faker.word() for _ in range(3))
    return f"{gen.faker.city_name()}{words}{gen.random.choice(['科技', '贸易', '制造', '咨询', '物流'])}有限公司"


def make_rows(tenant, n: int, seed: int = 1) -> list[dict]:
    """n valid customers in the form a person types them (demo values, unique names)."""
    gen = DemoGenerator(tenant, seed=seed)
    entity = tenant.model.entity("customer")
    rows: list[dict] = []
    attempt = 0
    while len(rows) < n:
        attempt += 1
        batch = []
        for _ in range(min(20_000, (n - len(rows)) * 11 // 10 + 10)):
            values = gen.values(entity)
            values.pop("owner", None)
            values[entity.title] = distinct_company(gen)
            batch.append(values)
        result = tenant.records.create_many("customer", batch, dry_run=True, skip_invalid=True)
        bad = {e.row for e in result.errors}
        rows.extend(r for i, r in enumerate(batch, start=1) if i not in bad)
        if len(rows) >= n:
            # rows of different batches may still duplicate each other: check the whole file once
            result = tenant.records.create_many("customer", rows[:n], dry_run=True, skip_invalid=True)
            bad = {e.row for e in result.errors}
            rows = [r for i, r in enumerate(rows[:n], start=1) if i not in bad]
        if attempt > 20:
            raise SystemExit("could not generate valid rows: " + str(result.errors[:5]))
    return rows[:n]


def write_csv(entity, rows: list[dict], path: Path) -> None:
    cols = [f.name for f in entity.fields.values() if any(f.name in r for r in rows[:500])]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r.get(c) is None else str(r[c]) for c in cols])


def core_rows(tenant, rows: list[dict]) -> list[dict]:
    """The same rows as typed database values with system columns, ready for a bare insert."""
    entity = tenant.model.entity("customer")
    ctx = tenant.field_context()
    now = datetime.now(timezone.utc)
    out = []
    for r in rows:
        row = {"created_at": now, "updated_at": now, "version": 1}
        for name, raw in r.items():
            f = entity.fields[name]
            ftype = tenant.field_types.for_field(f)
            row[name] = ftype.to_db(f, ftype.coerce(f, raw, ctx))
        out.append(row)
    return out


def core_insert(config: str, url: str, rows: list[dict]) -> tuple[float, float]:
    """(wall s, CPU s) of the baseline: typed rows, one transaction, executemany in chunks of 500."""
    core_tenant = Tenant.load(config, db_url=url)
    migrate(core_tenant)
    typed = core_rows(core_tenant, rows)
    table = core_tenant.schema.table("customer")
    t0, c0 = time.perf_counter(), time.process_time()
    with core_tenant.db.begin() as conn:
        for i in range(0, len(typed), 500):
            conn.execute(table.insert(), typed[i:i + 500])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    core_tenant.dispose()
    return wall, cpu


def cli_import(config: str, url: str, csv_path: Path) -> tuple[float, float]:
    """(wall s, CPU s) of `formwork import` in a fresh process, start-up included."""
    fresh = Tenant.load(config, db_url=url)
    migrate(fresh)
    fresh.dispose()
    cmd = [str(ROOT / ".venv" / "bin" / "formwork"), "import", config, "customer", str(csv_path), "--db", url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:])
        raise SystemExit("import failed")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--config", default=str(ROOT / "tests" / "data" / "crm_v1.yaml"),
                    help="tenant config (default: tests/data/crm_v1.yaml, issue 2's customer without duplicate "
                         "rules; sample_tenant.yaml adds issue 6's fuzzy and exact duplicate checks)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="paired rounds (Core insert, then import, each into fresh tables); default 3")
    args = ap.parse_args()

    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    # An installed Formwork has its modules' bytecode (pip compiles it); an editable checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every module at each start of the import process.
    subprocess.run([sys.executable, "-m", "compileall", "-q", "engine", "plugins", "web"], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gen_url, drop_gen = database(args.db, folder, "generate")
        try:
            tenant = Tenant.load(args.config, db_url=gen_url)
            migrate(tenant)
            t0 = time.perf_counter()
            rows = make_rows(tenant, args.rows)
            print(f"generated {len(rows):,} valid customers in {time.perf_counter() - t0:.1f}s "
                  f"({args.db}, {Path(args.config).name})")
            csv_path = folder / "customers.csv"
            write_csv(tenant.model.entity("customer"), rows, csv_path)
            tenant.dispose()
        finally:
            drop_gen()
        n = len(rows)
        results = []
        for r in range(1, args.rounds + 1):
            core_url, drop_core = database(args.db, folder, f"core{r}")
            import_url, drop_import = database(args.db, folder, f"import{r}")
            try:
                core = core_insert(args.config, core_url, rows)
                imp = cli_import(args.config, import_url, csv_path)
            finally:
                drop_core()
                drop_import()
            results.append((core, imp))
            print(f"round {r}: Core {core[0]:6.2f}s ({n / core[0]:8,.0f} rows/s, CPU {core[1]:5.2f}s)   "
                  f"import {imp[0]:6.2f}s ({n / imp[0]:7,.0f} rows/s, CPU {imp[1]:5.2f}s)   "
                  f"ratio {core[0] / imp[0]:.2f}")
        core_rate = statistics.median(n / c[0] for c, _ in results)
        import_rate = statistics.median(n / i[0] for _, i in results)
        ratio = statistics.median(c[0] / i[0] for c, i in results)
        cpu_ratio = statistics.median(c[1] for c, _ in results) / statistics.median(i[1] for _, i in results)
        print(f"plain Core insert : {core_rate:10,.0f} rows/s  (median; baseline, same rows)")
        print(f"formwork import   : {import_rate:10,.0f} rows/s  (median; CLI process incl. start-up, validation, audit)")
        print(f"ratio import/core : {ratio:.2f}  (median of rounds; target ≥ 0.33: "
              f"{'met' if ratio >= 1 / 3 else 'NOT met'});  by CPU time: {cpu_ratio:.2f}")
        print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
