"""Duplicate check at a million customers: the indexed check beside brute-force rapidfuzz, same run.

Usage: .venv/bin/python bench/dedup.py [--rows 1000000] [--queries 1000] [--brute-queries 100]
                                       [--db sqlite|postgresql] [--keep PATH]

Setup (not measured): a freshly migrated tenant whose customer has the contract's rules
(``{field: name, match: fuzzy, threshold: 80, normalize: company_name}`` and
``{field: mobile, match: exact}``); N customers with faker zh_CN-style company names (city, 字号 from
faker's company prefixes and person names, an industry — a fifth of them words the normaliser does
not know — and a legal form) plus planted near-duplicates
(bracketed city, short name, one character changed, dropped or added), bulk-inserted with Core
together with their dedup keys and values (the same functions the write hooks use).

Measured, in one process:
- the indexed check: the dedup plugin's ``formwork_records_before_write`` hook (what
  ``records.create`` runs before inserting) on 1,000 new customers — half near-duplicates of stored
  ones, half new names — p50/p95 latency in a warm process (after 1,000 other queries, whose cold
  figures are printed too);
- ``records.create`` end to end (validation, check, insert, audit, index upkeep; rolled back);
- brute force: ``rapidfuzz.process.extract(query, all_normalised_names, scorer=fuzz.ratio,
  score_cutoff=80)`` on a sample of the same queries, p50/p95;
- recall of the indexed check against brute force (every stored name scoring ≥ 80) on all queries;
- memory: RSS, and tracemalloc's peak during checks.
Targets: p95 ≤ 10 ms, ≥ 30× faster than brute force, recall ≥ 99%.
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from rapidfuzz import fuzz, process

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine.dedup.index import DedupIndex  # noqa: E402
from engine.dedup.normalize import company_name  # noqa: E402
from engine.errors import DuplicatesFound  # noqa: E402
from engine.schema.migrate import migrate  # noqa: E402
from engine.tenant import Tenant  # noqa: E402
import benchdb  # noqa: E402
from plugins import dedup as dedup_plugin  # noqa: E402


CONFIG = """tenant: {name: dedupbench, locale: zh_CN, timezone: Asia/Shanghai}
entities:
  customer:
    title: name
    fields:
      name: {type: text, required: true, unique: true, max_length: 200}
      mobile: {type: phone}
    duplicates:
      - {field: name, match: fuzzy, threshold: 80, normalize: company_name}
      - {field: mobile, match: exact}
"""

INDUSTRIES = ("科技", "网络科技", "信息技术", "电子", "贸易", "商贸", "实业", "投资", "咨询", "文化传播", "传媒", "广告",
              "物流", "建筑工程", "装饰工程", "机械", "设备", "医疗器械", "生物科技", "环保科技", "新能源", "餐饮管理",
              "酒店管理", "教育科技", "软件", "数据服务", "智能科技", "电气", "新材料", "化工", "食品", "服装", "家居",
              "汽车服务", "房地产开发", "物业管理", "人力资源", "企业管理", "供应链管理", "农业发展",
              # not in the normaliser's industry words: compared character by character
              "皮革制品", "陶瓷", "茶叶", "玩具", "眼镜", "灯饰照明", "水产养殖", "石材", "乐器", "花卉园艺")
LEGAL = (("有限公司", 60), ("有限责任公司", 18), ("股份有限公司", 10), ("集团有限公司", 5), ("", 7))


def char_pool() -> list[str]:
    """字号 characters: those of faker zh_CN company prefixes and given names."""
    from faker.providers.company.zh_CN import Provider as Company
    from faker.providers.person.zh_CN import Provider as Person

    chars = set()
    for word in list(Company.company_prefixes) + list(Person.first_names):
        chars.update(ch for ch in word if "\u4e00" <= ch <= "\u9fff")
    return sorted(chars - set("有限公司集团股份责任"))


def cities() -> list[str]:
    from faker.providers.address.zh_CN import Provider as Address

    return sorted(set(Address.cities) | {p.rstrip("省市") for p in Address.provinces if len(p) <= 4})


class Names:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.pool = char_pool()
        self.cities = cities()
        self.legal = [w for w, n in LEGAL for _ in range(n)]

    def brand(self) -> str:
        n = self.rng.choices((2, 3, 4), weights=(45, 45, 10))[0]
        return "".join(self.rng.choice(self.pool) for _ in range(n))

    def compose(self, brand: str, industry: str, city: str | None, form: str) -> str:
        legal = self.rng.choice(self.legal)
        if city is None or form == "none":
            return brand + industry + legal
        if form == "bracket" and legal:
            return f"{brand}{industry}({city}){legal}"
        return city + brand + industry + legal

    def company(self) -> tuple[str, str, str | None]:
        brand, industry = self.brand(), self.rng.choice(INDUSTRIES)
        city = self.rng.choice(self.cities) if self.rng.random() < 0.85 else None
        return brand, industry, city

    def name(self, parts) -> str:
        form = self.rng.choices(("prefix", "bracket", "none"), weights=(75, 10, 15))[0]
        return self.compose(*parts, form)

    def near_duplicate(self, parts) -> str:
        """Another way of writing the same company, or a slip of the keyboard."""
        brand, industry, city = parts
        kind = self.rng.choice(("bracket", "short", "change", "drop", "add", "legal"))
        if kind == "bracket":
            return self.compose(brand, industry, city or self.rng.choice(self.cities), "bracket")
        if kind == "short":
            return (city or "") + brand + industry
        b = list(brand + industry)
        i = self.rng.randrange(len(brand))
        if kind == "change":
            b[i] = self.rng.choice(self.pool)
        elif kind == "drop" and len(b) > 3:
            b.pop(i)
        elif kind == "add":
            b.insert(i, self.rng.choice(self.pool))
        return self.compose("".join(b), "", city, "prefix")

    PREFIXES = tuple(f"13{d}" for d in range(10)) + ("150", "151", "152", "155", "156", "157", "158", "159",
                                                         "176", "177", "180", "181", "186", "187", "188", "189")

    def mobile(self) -> str:
        return "+86" + self.rng.choice(self.PREFIXES) + "".join(self.rng.choice("0123456789") for _ in range(8))


def database(kind: str, folder: Path, keep: str | None) -> tuple[str, callable]:
    return benchdb.database(kind, Path(keep).resolve() if keep else folder / "dedup_bench.db")


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values, p) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def generate(n_rows: int, names: Names, say) -> tuple[list[str], list[tuple], list[str]]:
    """n_rows unique company names (~2% planted near-duplicates), their parts and mobiles."""
    t0 = time.perf_counter()
    seen: set[str] = set()
    raw: list[str] = []
    parts_of: list[tuple] = []
    planted = int(n_rows * 0.02)
    while len(raw) < n_rows - planted:
        parts = names.company()
        name = names.name(parts)
        if name not in seen:
            seen.add(name)
            raw.append(name)
            parts_of.append(parts)
    while len(raw) < n_rows:
        i = names.rng.randrange(len(parts_of))
        name = names.near_duplicate(parts_of[i])
        if name not in seen:
            seen.add(name)
            raw.append(name)
            parts_of.append(parts_of[i])
    mobiles = [names.mobile() for _ in raw]
    say(f"generated {len(raw):,} names ({planted:,} planted near-duplicates) in {time.perf_counter() - t0:.1f}s")
    return raw, parts_of, mobiles


def setup(tenant, raw: list[str], mobiles: list[str], say) -> list[str]:
    """Insert the customers and their index rows (Core, the index's own row builder); → normalised names."""
    t0 = time.perf_counter()
    norm = [company_name(x) for x in raw]
    say(f"normalised them in {time.perf_counter() - t0:.1f}s "
        f"({len(set(norm)):,} distinct normalised names; e.g. {raw[0]} → {norm[0]})")

    entity = tenant.model.entity("customer")
    idx = DedupIndex(tenant)
    rules = idx.rules(entity)
    t = tenant.schema.table(entity)
    keys_t, values_t, state_t = idx.keys, idx.values, idx.state
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    ids = list(range(1, len(raw) + 1))
    with tenant.write() as conn:
        for i in range(0, len(raw), 20000):
            conn.execute(t.insert(), [{"id": ids[j], "name": raw[j], "mobile": mobiles[j], "created_at": now,
                                       "updated_at": now, "version": 1} for j in range(i, min(i + 20000, len(raw)))])
    say(f"inserted the customers (Core) in {time.perf_counter() - t0:.1f}s")

    t0 = time.perf_counter()
    lookup_ix = [ix for ix in keys_t.indexes if ix.name == "ix_fw_dedup_keys_lookup"][0]
    record_ix = [ix for ix in keys_t.indexes if ix.name == "ix_fw_dedup_keys_record"][0]
    n_keys = 0
    with tenant.write() as conn:
        lookup_ix.drop(conn)
        record_ix.drop(conn)
        for i in range(0, len(raw), 20000):
            key_rows, value_rows = [], []
            for j in range(i, min(i + 20000, len(raw))):
                for rule in rules:
                    value = norm[j] if rule.match == "fuzzy" else mobiles[j]
                    k, v = idx._rows(rule, ids[j], value)
                    key_rows.extend(k)
                    if v is not None:
                        value_rows.append(v)
            conn.execute(keys_t.insert(), key_rows)
            conn.execute(values_t.insert(), value_rows)
            n_keys += len(key_rows)
        say(f"inserted {n_keys:,} keys in {time.perf_counter() - t0:.1f}s")
        t1 = time.perf_counter()
        lookup_ix.create(conn)
        record_ix.create(conn)
        conn.execute(state_t.insert(), [{"entity": "customer", "rule": r.id, "signature": r.signature,
                                         "built_at": now, "records": len(raw)} for r in rules])
        say(f"built the key indexes in {time.perf_counter() - t1:.1f}s")
        conn.exec_driver_sql("ANALYZE")
    return norm


def make_queries(names: Names, parts_of: list[tuple], raw_seen: set, n: int) -> list[str]:
    out = []
    while len(out) < n:
        if len(out) % 2 == 0:
            q = names.near_duplicate(names.rng.choice(parts_of))
        else:
            q = names.name(names.company())
        if q not in raw_seen:
            out.append(q)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--brute-queries", type=int, default=100, help="queries timed with brute force")
    ap.add_argument("--creates", type=int, default=200, help="records.create calls timed end to end")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="SQLite file to write (kept afterwards)")
    ap.add_argument("--reuse", help="a SQLite file written by --keep with the same --rows and --seed")
    args = ap.parse_args()

    def say(text):
        print(text, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "tenant.yaml").write_text(CONFIG, encoding="utf-8")
        url, drop = database(args.db, folder, args.reuse or args.keep)
        try:
            tenant = Tenant.load(folder / "tenant.yaml", db_url=url)
            migrate(tenant)
            names = Names(args.seed)
            t_setup = time.perf_counter()
            raw, parts_of, mobiles = generate(args.rows, names, say)
            if args.reuse:
                values = tenant.schema.metadata.tables["fw_dedup_values"]
                with tenant.db.connect() as conn:
                    norm = list(conn.execute(sa.select(values.c.value).order_by(values.c.record_id)).scalars())
                assert len(norm) == len(raw), "--reuse needs a database built with the same --rows and --seed"
                say(f"reusing {args.reuse}: {len(norm):,} indexed customers")
            else:
                norm = setup(tenant, raw, mobiles, say)
            ids = list(range(1, len(norm) + 1))
            del raw, mobiles
            with tenant.db.connect() as conn:
                stored = set(conn.execute(sa.select(tenant.schema.table("customer").c.name)).scalars())
            queries = make_queries(names, parts_of, stored, 2 * args.queries)
            warmup, queries = queries[:args.queries], queries[args.queries:]
            del stored
            say(f"setup took {time.perf_counter() - t_setup:.0f}s; RSS {rss_mb():.0f} MB\n")
            run(tenant, args, norm, ids, queries, warmup, names, say)
            tenant.dispose()
        finally:
            drop()


def check_all(tenant, entity, records, options) -> tuple[list[float], int]:
    times, refused = [], 0
    with tenant.write() as conn:
        for rec in records:
            t0 = time.perf_counter()
            try:
                dedup_plugin.formwork_records_before_write(tenant, entity, rec, None, None, conn, options)
            except DuplicatesFound:
                refused += 1
            times.append((time.perf_counter() - t0) * 1000)
    return times, refused


def run(tenant, args, norm: list[str], ids: list[int], queries: list[str], warmup: list[str], names: Names,
        say) -> None:
    entity = tenant.model.entity("customer")
    options = {"confirm_duplicates": False, "locale": "zh_CN"}
    records = [{"name": q, "mobile": names.mobile()} for q in queries]

    # a fresh process: compiled statements, the index's memory of posting lengths, the page cache
    cold, _ = check_all(tenant, entity, [{"name": q, "mobile": names.mobile()} for q in warmup], options)
    say(f"cold start ({len(warmup)} other queries, first in this process): p50 {pct(cold, 50):.2f} ms  "
        f"p95 {pct(cold, 95):.2f} ms")

    # 1. the indexed check, as the records service runs it, in a warm process
    times, refused = check_all(tenant, entity, records, options)
    p50, p95, p99 = pct(times, 50), pct(times, 95), pct(times, 99)
    say(f"indexed check (formwork_records_before_write hook, {len(records)} queries): "
        f"p50 {p50:.2f} ms  p95 {p95:.2f} ms  p99 {p99:.2f} ms  max {max(times):.1f} ms  "
        f"({refused} refused as duplicates)")

    # 2. records.create end to end, rolled back
    ctimes = []

    class Rollback(Exception):
        pass

    for rec in records[:args.creates]:
        try:
            with tenant.write() as conn:
                t0 = time.perf_counter()
                try:
                    tenant.records.create("customer", rec, connection=conn)
                except DuplicatesFound:
                    pass
                ctimes.append((time.perf_counter() - t0) * 1000)
                raise Rollback
        except Rollback:
            pass
    say(f"records.create end to end (check + insert + audit + keys, rolled back, {len(ctimes)}): "
        f"p50 {pct(ctimes, 50):.2f} ms  p95 {pct(ctimes, 95):.2f} ms")

    # 3. brute force over every normalised name, same run
    normalised_queries = [company_name(q) for q in queries]
    btimes = []
    for q in normalised_queries[:args.brute_queries]:
        t0 = time.perf_counter()
        process.extract(q, norm, scorer=fuzz.ratio, score_cutoff=80)
        btimes.append((time.perf_counter() - t0) * 1000)
    b50, b95 = pct(btimes, 50), pct(btimes, 95)
    say(f"brute force (process.extract over {len(norm):,} names, {len(btimes)} queries): "
        f"p50 {b50:.1f} ms  p95 {b95:.1f} ms")
    say(f"speed-up: {b50 / p50:.0f}× at p50, {b95 / p95:.0f}× at p95")

    # 4. recall of the indexed lookup against brute force, every query
    idx = DedupIndex(tenant)
    rule = [r for r in idx.rules(entity) if r.match == "fuzzy"][0]
    found_total = brute_total = hit = 0
    scored, skipped = [], []
    missed = []
    with tenant.write() as conn:
        for q in normalised_queries:
            brute = {ids[j] for _, _, j in process.extract(q, norm, scorer=fuzz.ratio, score_cutoff=80, limit=None)}
            stats: dict = {}
            got = {rid for rid, _ in idx.lookup(conn, rule, q, stats=stats)}
            scored.append(stats.get("scored", 0))
            skipped.append(stats.get("skipped", 0))
            brute_total += len(brute)
            found_total += len(got)
            hit += len(brute & got)
            if brute - got:
                missed.append((q, len(brute - got)))
    recall = 100.0 * hit / brute_total if brute_total else 100.0
    say(f"recall vs brute force ({len(normalised_queries)} queries, {brute_total} true matches ≥ 80): "
        f"{recall:.2f}%  (index found {found_total}, false positives {found_total - hit})")
    if missed:
        say("  missed e.g.: " + ", ".join(f"{q} ({n})" for q, n in missed[:5]))
    say(f"candidates scored per check (enough usable keys for their length, or a subsequence/one-edit probe): "
        f"p50 {pct(scored, 50):.0f} / p95 {pct(scored, 95):.0f} / max {max(scored)}; "
        f"common keys skipped p50 {pct(skipped, 50):.0f} / max {max(skipped)}")

    # 5. memory
    tracemalloc.start()
    with tenant.write() as conn:
        for rec in records[:100]:
            try:
                dedup_plugin.formwork_records_before_write(tenant, entity, rec, None, None, conn, options)
            except DuplicatesFound:
                pass
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = ""
    if tenant.db.url.get_backend_name() == "sqlite":
        size = f"; database file {Path(tenant.db.url.database).stat().st_size / 2**20:,.0f} MB"
    say(f"memory: tracemalloc peak during 100 checks {peak / 1024:.0f} KiB; RSS now {rss_mb():.0f} MB, "
        f"peak {maxrss:.0f} MB (the bench holds all {len(norm):,} names for brute force){size}")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    say(f"machine: {os.cpu_count()} CPUs, load average {load} (shared with other work; latencies include it)")
    ok = pct(times, 95) <= 10 and b50 / p50 >= 30 and recall >= 99
    say(f"\ntargets (p95 ≤ 10 ms, ≥ 30× brute force, recall ≥ 99%): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
