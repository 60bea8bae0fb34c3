"""A duplicate scan of stored records: clusters of records linked by matching rules, with scores.

Each fuzzy rule's normalised values are read from the index and compared with the same keys and
bounds as a write check (in memory, one pass); exact rules group equal keys in SQL. Records linked
by any pair end up in one cluster (union-find). Only records the user may read are scanned.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import sqlalchemy as sa

from .index import DedupIndex, in_memory_matches


@dataclass
class Pair:
    a: int
    b: int
    score: float
    rule: str        # "name", "mobile", "name+customer"
    match: str


@dataclass
class Cluster:
    ids: list[int]
    titles: dict[int, str]
    pairs: list[Pair] = field(default_factory=list)

    @property
    def score(self) -> float:
        return max((p.score for p in self.pairs), default=0.0)

    def to_json(self) -> dict:
        return {"score": self.score, "records": [{"id": i, "title": self.titles.get(i, "")} for i in self.ids],
                "pairs": [dataclasses.asdict(p) for p in self.pairs]}


class _Sets:
    def __init__(self):
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def scan(tenant, entity, user=None, threshold: float | None = None, rule_fields: str | None = None,
         index: DedupIndex | None = None) -> list[Cluster]:
    """Clusters of likely duplicates among the stored records of `entity`, largest and best first.

    `threshold` overrides the fuzzy rules' thresholds (e.g. 70 to look wider); `rule_fields`
    ("name" or "name+customer") limits the scan to one rule.
    """
    if isinstance(entity, str):
        entity = tenant.model.entity(entity)
    index = index or DedupIndex.for_tenant(tenant)
    rules = index.rules(entity)
    if rule_fields:
        rules = [r for r in rules if r.label == rule_fields]
    records = tenant.records
    perms = records.permissions
    # Records grouped by a field the user may not see would tell them those hidden values are alike.
    visible = perms.visible_fields(entity, user)
    rules = [r for r in rules if set(r.fields) <= visible]
    t = tenant.schema.table(entity)
    pairs: list[Pair] = []
    with tenant.write() as conn:
        index.ensure(conn, entity)
        allowed = _allowed(conn, perms, entity, t, user)
        for rule in rules:
            if rule.match == "fuzzy":
                if threshold is not None:
                    rule = dataclasses.replace(rule, threshold=float(threshold))
                ids, values = [], []
                for rid, value in index.stored_values(conn, rule):
                    if allowed is None or rid in allowed:
                        ids.append(rid)
                        values.append(value)
                for i, found in enumerate(in_memory_matches(rule, values, index.max_posting)):
                    for j, score in found:
                        pairs.append(Pair(ids[j], ids[i], score, rule.label, rule.match))
            else:
                k = index.keys
                stmt = (sa.select(k.c.key, k.c.record_id)
                        .where(k.c.entity == entity.name, k.c.rule == rule.id,
                               k.c.key.in_(sa.select(k.c.key).where(k.c.entity == entity.name, k.c.rule == rule.id)
                                           .group_by(k.c.key).having(sa.func.count() > 1)))
                        .order_by(k.c.key, k.c.record_id))
                groups: dict[str, list[int]] = {}
                for key, rid in conn.execute(stmt):
                    if allowed is None or rid in allowed:
                        groups.setdefault(key, []).append(rid)
                for members in groups.values():
                    for other in members[1:]:
                        pairs.append(Pair(members[0], other, 100.0, rule.label, rule.match))
        sets = _Sets()
        for p in pairs:
            sets.union(p.a, p.b)
        grouped: dict[int, Cluster] = {}
        for p in sorted(pairs, key=lambda p: (min(p.a, p.b), max(p.a, p.b), -p.score)):
            root = sets.find(p.a)
            c = grouped.setdefault(root, Cluster([], {}))
            c.pairs.append(p)
        all_ids = set()
        for c in grouped.values():
            c.ids = sorted({i for p in c.pairs for i in (p.a, p.b)})
            all_ids.update(c.ids)
        titles = _titles(tenant, conn, entity, sorted(all_ids), user)
    for c in grouped.values():
        c.titles = {i: titles.get(i, "") for i in c.ids}
    return sorted(grouped.values(), key=lambda c: (-len(c.ids), -c.score, c.ids[0]))


def _allowed(conn, perms, entity, t, user) -> set[int] | None:
    if not perms.can(entity, user, "read"):
        return set()
    scope = perms.row_filter(entity, t, user, "read")
    if scope is None:
        return None
    return set(conn.execute(sa.select(t.c.id).where(scope)).scalars())


def _titles(tenant, conn, entity, ids: list[int], user) -> dict[int, str]:
    records = tenant.records
    perms = records.permissions
    t = tenant.schema.table(entity)
    visible = perms.visible_fields(entity, user)
    out = {}
    for i in range(0, len(ids), 500):
        for row in conn.execute(sa.select(t).where(t.c.id.in_(ids[i:i + 500]))).mappings():
            rec = perms.mask(entity, user, records._from_row(entity, row))
            if entity.title and entity.title not in visible:
                out[rec["id"]] = f"{entity.label.get()} #{rec['id']}"
            else:
                out[rec["id"]] = records.title_of(entity, rec)
    return out
