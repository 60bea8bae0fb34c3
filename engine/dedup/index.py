"""The duplicate index: blocking keys kept with every write, and candidate lookup through them.

Tables (engine/schema/system.py, created by `formwork migrate`):

- ``fw_dedup_keys (entity, rule, key, size, record_id)`` indexed on (entity, rule, key, size,
  record_id): a fuzzy rule's distinct q-grams of each record's normalised value (``size`` is the
  value's length), or an exact rule's whole normalised value;
- ``fw_dedup_values (entity, rule, record_id) → value``: the normalised value a fuzzy rule scores;
- ``fw_dedup_state (entity, rule) → signature``: which rule definition the rows were built for. A
  rule with no state row, or a changed definition, is rebuilt (in the write transaction that
  first needs it, or by ``formwork duplicates … --reindex``).

Plain SQL on both SQLite and PostgreSQL (no pg_trgm), so both give the same candidates and scores.
"""
from __future__ import annotations

import hashlib
import time
from collections import Counter
from itertools import chain
from typing import Iterable

import sqlalchemy as sa
from rapidfuzz import fuzz

from ..tenant import phone_region
from .keys import exact_key, extra_keys, fuzzy_keys, needs, probe_keys, skipped_in_chain
from .normalize import NormalizeContext, collect_normalizers
from .rules import DedupRule, raw_text, rules_for

# A key whose posting list is longer than this carries no signal ("科技", "有限"): skipped.
MAX_POSTING = 500
CHUNK = 500
REBUILD_CHUNK = 5000
ADD_BATCH = 20_000            # key rows per INSERT when indexing many records
MEMO_SIZE = 100_000
NEVER = 10 ** 9           # normalised values remembered per normaliser
MAX_REMEMBERED = 500_000      # posting lengths remembered per rule (a few dozen MB at most)
POSTING_TTL = 600.0           # seconds

# The hot path as fixed-shape SQL (no expression building per check); identifiers quoted for both
# SQLite and PostgreSQL. Keys and sizes are bound parameters.
_LOCK_SQL = sa.text("SELECT pg_advisory_xact_lock(:k)")
_ANY_SQL = sa.text('SELECT 1 FROM fw_dedup_keys WHERE entity = :e AND "rule" = :r LIMIT 1')
_STATE_SQL = sa.text('SELECT "rule", signature FROM fw_dedup_state WHERE entity = :e')
_EXACT_SQL = sa.text('SELECT record_id FROM fw_dedup_keys WHERE entity = :e AND "rule" = :r AND "key" = :k')
_COMMON_PART = ('SELECT {i} AS i, count(*) AS n FROM (SELECT 1 AS one FROM fw_dedup_keys '
                'WHERE entity = :e AND "rule" = :r AND "key" = :k{i} LIMIT :lim) AS p{i}')
_CANDIDATES_SQL = (
    'SELECT c.record_id, v."value" FROM ('
    'SELECT record_id FROM ('
    'SELECT record_id, "size" AS sz, count(*) AS n FROM fw_dedup_keys '
    'WHERE entity = :e AND "rule" = :r AND "key" IN ({keys}) AND "size" BETWEEN :lo AND :hi '
    'GROUP BY record_id, "size") AS g WHERE g.n >= CASE g.sz {case} ELSE :never END '
    'UNION SELECT record_id FROM fw_dedup_keys '
    'WHERE entity = :e AND "rule" = :r AND "key" IN ({wholes}) AND "size" < 0) AS c '
    'JOIN fw_dedup_values AS v ON v.entity = :e AND v."rule" = :r AND v.record_id = c.record_id '
    'WHERE c.record_id <> :ex')


PM_NAME = "formwork-dedup-index"


class DedupIndex:
    """Index maintenance and candidate lookup for one tenant (holds no records; see for_tenant)."""

    @classmethod
    def for_tenant(cls, tenant) -> "DedupIndex":
        """The tenant's own instance, kept on its plugin manager (so it lives and dies with the tenant)."""
        index = tenant.pm.get_plugin(PM_NAME)
        if index is None:
            index = cls(tenant)
            if tenant.pm.get_plugin(PM_NAME) is None:
                tenant.pm.register(index, name=PM_NAME)
            else:
                index = tenant.pm.get_plugin(PM_NAME)
        return index

    def __init__(self, tenant, max_posting: int = MAX_POSTING):
        self.tenant = tenant
        self.model = tenant.model
        tables = tenant.schema.metadata.tables
        self.keys = tables["fw_dedup_keys"]
        self.values = tables["fw_dedup_values"]
        self.state = tables["fw_dedup_state"]
        self.max_posting = max_posting
        self.normalizers = collect_normalizers(tenant.pm)
        locale = self.model.tenant.locale
        self.ctx = NormalizeContext(region=phone_region(locale), locale=locale)
        self._sql: dict[tuple, sa.TextClause] = {}   # statement shapes, built once
        # Posting-list lengths seen recently, per rule definition: {key: (length capped at
        # max_posting + 1, when counted)}. They only decide which keys are skipped as common, which
        # changes the work a lookup does, never whether a candidate above the bound is found, except
        # for a key skipped while it was common; so they are remembered for a while.
        self._postings: dict[str, dict[str, tuple[int, float]]] = {}
        self._memo: dict[str, dict[str, str]] = {}   # normaliser → {raw text: normalised} (pure functions)

    def _text(self, shape: tuple, build) -> sa.TextClause:
        sql = self._sql.get(shape)
        if sql is None:
            sql = self._sql.setdefault(shape, sa.text(build()))
        return sql

    # --- values and keys ----------------------------------------------------------------------

    def rules(self, entity) -> list[DedupRule]:
        return rules_for(entity)

    def normalized(self, rule: DedupRule, record: dict) -> str | None:
        """The rule's normalised value of a record; None when a field is empty (never a duplicate)."""
        parts = []
        for name, norm in zip(rule.fields, rule.normalize):
            raw = raw_text(record.get(name))
            if raw is None:
                return None
            memo = self._memo.setdefault(norm, {})
            value = memo.get(raw)
            if value is None:
                value = self.normalizers[norm](raw, self.ctx)
                if len(memo) >= MEMO_SIZE:
                    memo.clear()
                memo[raw] = value
            if not value:
                return None
            parts.append(value)
        return "\x1f".join(parts)

    def _rows(self, rule: DedupRule, rid: int, value: str) -> tuple[list[dict], dict | None]:
        base = {"entity": rule.entity, "rule": rule.id, "record_id": rid}
        if rule.match == "fuzzy":
            size = len(value)
            keys = [{**base, "key": k, "size": size} for k in fuzzy_keys(value)]
            keys.extend({**base, "key": k, "size": -1} for k in extra_keys(value))
            return keys, {**base, "value": value}
        return [{**base, "key": exact_key(value), "size": 0}], None

    # --- maintenance --------------------------------------------------------------------------

    def add(self, conn, entity, records: Iterable[dict], rules: list[DedupRule] | None = None) -> None:
        """Index records (with ids) of `entity` under its rules (or `rules`)."""
        rules = self.rules(entity) if rules is None else rules
        if not rules:
            return
        key_rows: list[dict] = []
        value_rows: list[dict] = []
        for rec in records:
            for rule in rules:
                value = self.normalized(rule, rec)
                if value is None:
                    continue
                keys, val = self._rows(rule, rec["id"], value)
                key_rows.extend(keys)
                if val is not None:
                    value_rows.append(val)
            if len(key_rows) >= ADD_BATCH:
                self._write(conn, key_rows, value_rows)
                key_rows, value_rows = [], []
        self._write(conn, key_rows, value_rows)

    def _write(self, conn, key_rows: list[dict], value_rows: list[dict]) -> None:
        """Bulk inserts as plain tuples through the driver (SQLAlchemy's per-row dict handling
        dominated imports); the statements are fixed and portable, only the placeholder differs."""
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        if key_rows:
            conn.exec_driver_sql(
                f'INSERT INTO fw_dedup_keys (entity, "rule", "key", "size", record_id) VALUES '
                f'({mark}, {mark}, {mark}, {mark}, {mark})',
                [(r["entity"], r["rule"], r["key"], r["size"], r["record_id"]) for r in key_rows])
        if value_rows:
            conn.exec_driver_sql(
                f'INSERT INTO fw_dedup_values (entity, "rule", record_id, "value") VALUES ({mark}, {mark}, {mark}, {mark})',
                [(r["entity"], r["rule"], r["record_id"], r["value"]) for r in value_rows])

    def remove(self, conn, entity_name: str, ids: list[int], rules: list[DedupRule] | None = None) -> None:
        """Drop the index rows of records (all rules, or only `rules`)."""
        for i in range(0, len(ids), CHUNK):
            chunk = ids[i:i + CHUNK]
            for table in (self.keys, self.values):
                stmt = table.delete().where(table.c.entity == entity_name, table.c.record_id.in_(chunk))
                if rules is not None:
                    stmt = stmt.where(table.c.rule.in_([r.id for r in rules]))
                conn.execute(stmt)

    def replace(self, conn, entity, record: dict, rules: list[DedupRule]) -> None:
        if rules:
            self.remove(conn, entity.name, [record["id"]], rules)
            self.add(conn, entity, [record], rules)

    def stale_rules(self, conn, entity) -> tuple[list[DedupRule], list[str]]:
        """(rules whose index is missing or out of date, rule ids indexed but no longer configured)."""
        rules = self.rules(entity)
        built = dict(conn.execute(_STATE_SQL, {"e": entity.name}).all())
        stale = [r for r in rules if built.get(r.id) != r.signature]
        current = {r.id for r in rules}
        gone = [rid for rid in built if rid not in current]
        return stale, gone

    def ensure(self, conn, entity) -> list[DedupRule]:
        """Rebuild whatever is missing or stale (e.g. the first write after migrate, or a changed
        rule); returns the rules rebuilt. Cheap when everything is current (one query)."""
        stale, gone = self.stale_rules(conn, entity)
        if not stale and not gone:
            return []
        if conn.dialect.name == "postgresql":
            # Two first writers must not both rebuild: serialise on a per-entity advisory lock.
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_lock_key(entity.name))))
            stale, gone = self.stale_rules(conn, entity)
        self._drop_rules(conn, entity.name, gone)
        if stale:
            self.rebuild(conn, entity, stale)
        return stale

    def serialize(self, conn, entity) -> None:
        """Hold a per-entity lock until commit so that check-then-insert is atomic: two people saving
        the same new company at once get one record and one prompt. SQLite writers are serialised
        already (BEGIN IMMEDIATE); PostgreSQL takes a transaction-scoped advisory lock."""
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK_SQL, {"k": _lock_key("write:" + entity.name)})

    def _drop_rules(self, conn, entity_name: str, rule_ids: list[str]) -> None:
        for table in (self.keys, self.values, self.state):
            if rule_ids:
                conn.execute(table.delete().where(table.c.entity == entity_name, table.c.rule.in_(rule_ids)))

    def rebuild(self, conn, entity, rules: list[DedupRule] | None = None, progress=None) -> int:
        """Re-create the index rows of `rules` (default: all of the entity's) from the stored records."""
        rules = self.rules(entity) if rules is None else rules
        stale, gone = self.stale_rules(conn, entity)
        self._drop_rules(conn, entity.name, gone + [r.id for r in rules])
        for r in rules:
            self._postings.pop(r.signature, None)
        if not rules:
            return 0
        t = self.tenant.schema.table(entity)
        fields = sorted({f for r in rules for f in r.fields})
        types = self.tenant.field_types
        typed = [(entity.fields[f], types.for_field(entity.fields[f])) for f in fields]
        cols = [t.c.id] + [t.c[f] for f in fields]
        last = 0
        count = 0
        while True:
            rows = conn.execute(sa.select(*cols).where(t.c.id > last).order_by(t.c.id)
                                .limit(REBUILD_CHUNK)).all()
            if not rows:
                break
            records = []
            for row in rows:
                rec = {"id": row[0]}
                for (f, ftype), v in zip(typed, row[1:]):
                    rec[f.name] = ftype.from_db(f, v)
                records.append(rec)
            self.add(conn, entity, records, rules)
            last = rows[-1][0]
            count += len(rows)
            if progress:
                progress(len(rows))
        now = self.tenant.now()
        conn.execute(self.state.insert(), [{"entity": entity.name, "rule": r.id, "signature": r.signature,
                                            "built_at": now, "records": count} for r in rules])
        return count

    # --- lookup -------------------------------------------------------------------------------

    def _where(self, table, rule: DedupRule):
        return (table.c.entity == rule.entity, table.c.rule == rule.id)

    def lookup(self, conn, rule: DedupRule, value: str, exclude: int | None = None,
               stats: dict | None = None) -> list[tuple[int, float]]:
        """[(record id, score)] of stored records that match `value` (already normalised) under `rule`.

        Two queries: which of the value's keys are common (skipped), then — in one statement — the
        records sharing enough usable keys for their length (the bounds of engine/dedup/keys.py)
        with their normalised values, which rapidfuzz then scores. `stats`, when given, receives
        counts for benchmarks (keys, skipped keys, candidates scored)."""
        params = {"e": rule.entity, "r": rule.id}
        if rule.match != "fuzzy":
            rows = conn.execute(_EXACT_SQL, {**params, "k": exact_key(value)})
            return [(rid, 100.0) for (rid,) in rows if rid != exclude]
        keys = sorted(fuzzy_keys(value))
        common = self._common(conn, rule, keys)
        usable = [k for k in keys if k not in common] or [""]   # "" is no key: keeps the SQL valid
        wholes = probe_keys(value, rule.threshold)
        if stats is not None:
            stats.update(keys=len(keys), skipped=len(common), probes=len(wholes), scored=0)
        need = needs(value, rule.threshold, skipped_in_chain(value, common))
        if not need:
            return []
        lo, hi = min(need), max(need)
        params.update({f"k{i}": k for i, k in enumerate(usable)})
        params.update({f"w{i}": k for i, k in enumerate(wholes)})
        params.update({f"s{size}": size for size in need}, **{f"n{size}": n for size, n in need.items()})
        params.update(lo=lo, hi=hi, ex=-1 if exclude is None else exclude, never=10 ** 6)
        sizes = tuple(need)
        sql = self._text(("candidates", len(usable), len(wholes), sizes), lambda: _CANDIDATES_SQL.format(
            keys=", ".join(f":k{i}" for i in range(len(usable))),
            wholes=", ".join(f":w{i}" for i in range(len(wholes))),
            case=" ".join(f"WHEN :s{size} THEN :n{size}" for size in sizes)))
        rows = conn.execute(sql, params).all()
        if stats is not None:
            stats["scored"] = len(rows)
        out = []
        for rid, other in rows:
            score = fuzz.ratio(value, other, score_cutoff=rule.threshold)
            if score:
                out.append((rid, round(score, 1)))
        return out

    def _common(self, conn, rule: DedupRule, keys: list[str]) -> set[str]:
        """The keys whose posting list is longer than max_posting (counting stops there)."""
        seen = self._postings.setdefault(rule.signature, {})
        now = time.monotonic()
        fresh = {k: seen[k][0] for k in keys if k in seen and now - seen[k][1] < POSTING_TTL}
        todo = [k for k in keys if k not in fresh]
        if todo:
            params = {"e": rule.entity, "r": rule.id, "lim": self.max_posting + 1}
            params.update({f"k{i}": k for i, k in enumerate(todo)})
            sql = self._text(("common", len(todo)),
                             lambda: " UNION ALL ".join(_COMMON_PART.format(i=i) for i in range(len(todo))))
            for i, n in conn.execute(sql, params):
                fresh[todo[i]] = n
                if len(seen) < MAX_REMEMBERED:
                    seen[todo[i]] = (n, now)
        return {k for k, n in fresh.items() if n > self.max_posting}

    @staticmethod
    def _filter(rows, need: dict[int, int], exclude) -> list[int]:
        """Candidate ids among (record id, size, shared keys) rows that meet the bound for their size."""
        return [rid for rid, size, n in rows if rid != exclude and size in need and n >= need[size]]

    def lookup_many(self, conn, rule: DedupRule, values: list[str | None]) -> list[list[tuple[int, float]]]:
        """lookup() for many values at once (bulk imports): the same results, batched queries."""
        out: list[list[tuple[int, float]]] = [[] for _ in values]
        k = self.keys
        if conn.execute(_ANY_SQL, {"e": rule.entity, "r": rule.id}).first() is None:
            return out  # nothing indexed yet (a first import)
        if rule.match != "fuzzy":
            wanted: dict[str, list[int]] = {}
            for i, value in enumerate(values):
                if value is not None:
                    wanted.setdefault(exact_key(value), []).append(i)
            keys = list(wanted)
            for c in range(0, len(keys), CHUNK):
                stmt = sa.select(k.c.key, k.c.record_id).where(*self._where(k, rule), k.c.key.in_(keys[c:c + CHUNK]))
                for key, rid in conn.execute(stmt):
                    for i in wanted[key]:
                        out[i].append((rid, 100.0))
            return out
        keysets = [sorted(fuzzy_keys(v)) if v is not None else [] for v in values]
        all_keys = sorted(set().union(*keysets)) if keysets else []
        counts: Counter = Counter()
        for c in range(0, len(all_keys), CHUNK):
            stmt = (sa.select(k.c.key, sa.func.count()).where(*self._where(k, rule), k.c.key.in_(all_keys[c:c + CHUNK]))
                    .group_by(k.c.key))
            counts.update(dict(conn.execute(stmt).all()))
        usable = [key for key in all_keys if 0 < counts[key] <= self.max_posting]
        # (whole-value keys have size -1 and are never among these: sizes are filtered below)
        postings: dict[str, list[tuple[int, int]]] = {}
        for c in range(0, len(usable), CHUNK):
            stmt = sa.select(k.c.key, k.c.record_id, k.c.size).where(*self._where(k, rule),
                                                                     k.c.key.in_(usable[c:c + CHUNK]))
            for key, rid, size in conn.execute(stmt):
                if size >= 0:
                    postings.setdefault(key, []).append((rid, size))
        probe_sets = [probe_keys(v, rule.threshold) if v is not None else [] for v in values]
        all_probes = sorted(set().union(*probe_sets)) if probe_sets else []
        whole: dict[str, list[int]] = {}
        for c in range(0, len(all_probes), CHUNK):
            stmt = sa.select(k.c.key, k.c.record_id).where(*self._where(k, rule), k.c.size < 0,
                                                           k.c.key.in_(all_probes[c:c + CHUNK]))
            for key, rid in conn.execute(stmt):
                whole.setdefault(key, []).append(rid)
        wanted_ids: set[int] = set()
        per_row: list[list[int]] = []
        for value, keys, row_probes in zip(values, keysets, probe_sets):
            if value is None:
                per_row.append([])
                continue
            need = needs(value, rule.threshold,
                         skipped_in_chain(value, {key for key in keys if counts[key] > self.max_posting}))
            shared: Counter = Counter()
            for key in keys:
                for rid, size in postings.get(key, ()):
                    if size in need:
                        shared[(rid, size)] += 1
            ids = self._filter(((rid, size, n) for (rid, size), n in shared.items()), need, None)
            ids = list(dict.fromkeys(ids + [rid for key in row_probes for rid in whole.get(key, ())]))
            per_row.append(ids)
            wanted_ids.update(ids)
        stored = self._values(conn, rule, sorted(wanted_ids))
        for i, (value, ids) in enumerate(zip(values, per_row)):
            for rid in ids:
                score = fuzz.ratio(value, stored.get(rid, ""), score_cutoff=rule.threshold)
                if score:
                    out[i].append((rid, round(score, 1)))
        return out

    def _values(self, conn, rule: DedupRule, ids: list[int]) -> dict[int, str]:
        v = self.values
        out = {}
        for i in range(0, len(ids), CHUNK):
            stmt = sa.select(v.c.record_id, v.c.value).where(*self._where(v, rule), v.c.record_id.in_(ids[i:i + CHUNK]))
            out.update(dict(conn.execute(stmt).all()))
        return out

    def stored_values(self, conn, rule: DedupRule) -> Iterable[tuple[int, str]]:
        """Every (record id, normalised value) of a fuzzy rule, by id (for scans)."""
        v = self.values
        return conn.execute(sa.select(v.c.record_id, v.c.value).where(*self._where(v, rule)).order_by(v.c.record_id))


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha1(f"formwork-dedup:{name}".encode()).digest()[:8], "big", signed=True)


def in_memory_matches(rule: DedupRule, values: list[str | None], max_posting: int = MAX_POSTING
                      ) -> list[list[tuple[int, float]]]:
    """For each value, the earlier values (by index) it matches under `rule`: duplicates within one file."""
    out: list[list[tuple[int, float]]] = [[] for _ in values]
    if rule.match != "fuzzy":
        first: dict[str, list[int]] = {}
        for i, value in enumerate(values):
            if value is None:
                continue
            out[i] = [(j, 100.0) for j in first.get(value, [])]
            first.setdefault(value, []).append(i)
        return out
    postings: dict[str, list[int]] = {}
    extras: dict[str, list[int]] = {}
    sizes = [len(v) if v is not None else -1 for v in values]
    for i, value in enumerate(values):
        if value is None:
            continue
        keys = fuzzy_keys(value)
        probed = {j for p in probe_keys(value, rule.threshold) for j in extras.get(p, ())}
        need = needs(value, rule.threshold,
                     skipped_in_chain(value, {key for key in keys if len(postings.get(key, ())) > max_posting}), keys)
        shared = Counter(chain.from_iterable(plist for plist in (postings.get(key, ()) for key in keys)
                                             if len(plist) <= max_posting))
        candidates = set(probed)
        for j, n in shared.items():
            if n >= need.get(sizes[j], NEVER):
                candidates.add(j)
        for j in sorted(candidates):
            score = fuzz.ratio(value, values[j], score_cutoff=rule.threshold)
            if score:
                out[i].append((j, round(score, 1)))
        for key in keys:
            postings.setdefault(key, []).append(i)
        for key in extra_keys(value):
            extras.setdefault(key, []).append(i)
    return out
