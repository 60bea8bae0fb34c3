"""Duplicate checks on write (R14): find matches, describe them for the caller, refuse or report.

A match, as the API and the web form receive it (``DuplicatesFound.matches``), best score first:

- one the caller may read: ``{"id", "score", "visible": true, "matched_on": [{"rule", "fields",
  "match", "score"}], "title", "owner", "owner_name", "department", "department_label", "values":
  {field: value of each matched field the caller may see}, "follow_ups": [latest 3: {"id", "date",
  "owner", "owner_name", "summary", "record"}] or null when the caller may not read follow-ups}``;
- one outside the caller's row scope or entity rights: ``{"id": null, "score", "visible": false,
  "matched_on", "department", "department_label", "message"}`` — only "a matching record exists,
  owned by <department>"; never its title, owner, values or follow-ups.

Fields the caller may not see (permissions.field_access "hidden") never appear, not even in titles.
"""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from ..errors import DuplicatesFound
from ..i18n import language
from ..metadata.model import Label
from .followups import follow_up_source, latest_follow_ups
from .index import DedupIndex, in_memory_matches
from .rules import DedupRule

MAX_REPORTED = 20
FOLLOW_UPS_SHOWN = 3

TEXTS = {
    "refused": {"zh": "可能与已有记录重复：{items}。如确认不是重复，请确认后再保存。",
                "en": "Possible duplicate of {items}. Confirm it is not a duplicate to save anyway."},
    "item": {"zh": "#{id}「{title}」（相似度 {score}%）", "en": "#{id} “{title}” (score {score})"},
    "hidden_item": {"zh": "一条{owner}的记录（相似度 {score}%）", "en": "a record {owner} (score {score})"},
    "hidden": {"zh": "已存在匹配的记录，归属部门：{department}", "en": "A matching record exists, owned by {department}"},
    "hidden_nodept": {"zh": "已存在匹配的记录", "en": "A matching record exists"},
    "owned_by": {"zh": "归属{department}", "en": "owned by {department}"},
    "row": {"zh": "与第 {row} 行重复（相似度 {score}%）", "en": "duplicate of row {row} (score {score})"},
    "row_record": {"zh": "可能与已有记录重复：{item}", "en": "possible duplicate of {item}"},
    "more": {"zh": "等 {n} 条", "en": "and {n} more"},
}


def text(key: str, locale: str | None, **params) -> str:
    return TEXTS[key][language(locale)].format(**params)


def _score_text(score: float) -> str:
    return f"{score:.0f}" if float(score).is_integer() else f"{score:.1f}"


@contextmanager
def _connection(tenant, connection):
    if connection is not None:
        yield connection
    else:
        with tenant.write() as conn:  # ensure() may have to (re)build the index
            yield conn


def changed_rules(rules: list[DedupRule], record: dict, old: dict | None) -> list[DedupRule]:
    """On update only the rules whose fields changed are checked."""
    if old is None:
        return rules
    return [r for r in rules if any(record.get(f) != old.get(f) for f in r.fields)]


def find_duplicates(tenant, entity, record: dict, old: dict | None = None, user=None, connection=None,
                    locale: str | None = None, limit: int = MAX_REPORTED, index: DedupIndex | None = None
                    ) -> list[dict]:
    """The stored records `record` duplicates under the entity's rules, described for `user`.

    `record` holds coerced values (as the records service prepares them); on update pass `old`:
    only rules whose fields changed are checked, and the record never matches itself.
    """
    if isinstance(entity, str):
        entity = tenant.model.entity(entity)
    index = index or DedupIndex.for_tenant(tenant)
    rules = changed_rules(index.rules(entity), record, old)
    if not rules:
        return []
    exclude = old.get("id") if old else None
    with _connection(tenant, connection) as conn:
        index.ensure(conn, entity)
        hits: dict[int, list[tuple[DedupRule, float]]] = {}
        for rule in rules:
            value = index.normalized(rule, record)
            if value is None:
                continue
            for rid, score in index.lookup(conn, rule, value, exclude=exclude):
                hits.setdefault(rid, []).append((rule, score))
        if not hits:
            return []
        return describe(tenant, conn, entity, hits, user, locale, limit)


def check_write(tenant, entity, record: dict, old: dict | None, user, connection, locale: str | None) -> None:
    """Raise DuplicatesFound when `record` duplicates stored records (what the plugin's hook runs).

    Runs in the write transaction, which then holds the entity's dedup lock until it commits."""
    index = DedupIndex.for_tenant(tenant)
    if not changed_rules(index.rules(entity), record, old):
        return
    index.serialize(connection, entity)
    matches = find_duplicates(tenant, entity, record, old, user, connection, locale, index=index)
    if matches:
        raise DuplicatesFound(refusal_message(matches, locale), matches, entity.name)


def refusal_message(matches: list[dict], locale: str | None, shown: int = 3) -> str:
    items = "；".join(item_text(m, locale) for m in matches[:shown]) if language(locale) == "zh" else \
        "; ".join(item_text(m, locale) for m in matches[:shown])
    if len(matches) > shown:
        items += (" " if language(locale) == "en" else "") + text("more", locale, n=len(matches))
    return text("refused", locale, items=items)


def item_text(match: dict, locale: str | None) -> str:
    score = _score_text(match["score"])
    if match["visible"]:
        return text("item", locale, id=match["id"], title=match["title"], score=score)
    owner = text("owned_by", locale, department=match["department_label"]) if match.get("department") else ""
    return text("hidden_item", locale, owner=owner, score=score).replace("  ", " ")


def describe(tenant, conn, entity, hits: dict[int, list[tuple[DedupRule, float]]], user,
             locale: str | None, limit: int = MAX_REPORTED, follow_ups: bool = True) -> list[dict]:
    """Match dicts for `hits` ({record id: [(rule, score)]}) as `user` may see them, best first."""
    best = {rid: max(s for _, s in rules) for rid, rules in hits.items()}
    ids = sorted(hits, key=lambda rid: (-best[rid], rid))[:limit]
    infos = record_infos(tenant, conn, entity, ids, user, locale, follow_ups)
    return [_match(rid, hits[rid], infos[rid]) for rid in ids if rid in infos]


def record_infos(tenant, conn, entity, ids: list[int], user, locale: str | None,
                 follow_ups: bool = True) -> dict[int, dict]:
    """What `user` may see of each matched record, fetched in a few queries for all of them."""
    records = tenant.records
    perms = records.permissions
    t = tenant.schema.table(entity)
    stored: dict[int, dict] = {}
    for i in range(0, len(ids), 500):
        for row in conn.execute(sa.select(t).where(t.c.id.in_(ids[i:i + 500]))).mappings():
            stored[row["id"]] = records._from_row(entity, row)
    visible_ids: set[int] = set()
    if stored and perms.can(entity, user, "read"):
        scope = perms.row_filter(entity, t, user, "read")
        if scope is None:
            visible_ids = set(stored)
        else:
            found = list(stored)
            for i in range(0, len(found), 500):
                visible_ids.update(conn.execute(sa.select(t.c.id).where(t.c.id.in_(found[i:i + 500]), scope)).scalars())
    visible_fields = perms.visible_fields(entity, user)
    follow = None
    source = follow_up_source(tenant.model, entity) if follow_ups else None
    if source is not None and visible_ids:
        follow = latest_follow_ups(tenant, conn, source, sorted(visible_ids), user, FOLLOW_UPS_SHOWN, locale)
    owners = _user_names(tenant, conn, {stored[rid].get("owner") for rid in visible_ids})
    out = {}
    for rid, rec in stored.items():
        dept = rec.get("department")
        info = {"visible": rid in visible_ids, "department": dept,
                "department_label": department_label(tenant, dept, locale)}
        if rid in visible_ids:
            masked = perms.mask(entity, user, rec)
            info.update(json=records.to_json(entity, masked), visible_fields=visible_fields,
                        title=_title(records, entity, masked, visible_fields), owner=rec.get("owner"),
                        owner_name=owners.get(rec.get("owner"), ""),
                        follow_ups=None if follow is None else follow.get(rid, []))
        else:
            info["message"] = (text("hidden", locale, department=info["department_label"]) if dept
                               else text("hidden_nodept", locale))
        out[rid] = info
    return out


def _match(rid: int, rule_scores: list[tuple[DedupRule, float]], info: dict) -> dict:
    matched_on = [{"rule": r.position, "fields": list(r.fields), "match": r.match, "score": s}
                  for r, s in sorted(rule_scores, key=lambda x: -x[1])]
    score = max(s for _, s in rule_scores)
    if not info["visible"]:
        return {"id": None, "score": score, "visible": False, "matched_on": matched_on,
                "department": info["department"], "department_label": info["department_label"],
                "message": info["message"]}
    fields = sorted({f for r, _ in rule_scores for f in r.fields if f in info["visible_fields"]})
    return {"id": rid, "score": score, "visible": True, "matched_on": matched_on, "title": info["title"],
            "owner": info["owner"], "owner_name": info["owner_name"], "department": info["department"],
            "department_label": info["department_label"],
            "values": {f: info["json"].get(f) for f in fields}, "follow_ups": info["follow_ups"]}


def _title(records, entity, masked: dict, visible_fields: set) -> str:
    if entity.title and entity.title not in visible_fields:
        return f"{entity.label.get()} #{masked.get('id')}"
    return records.title_of(entity, masked)


def department_label(tenant, dept: str | None, locale: str | None) -> str:
    if not dept:
        return ""
    raw = (tenant.model.config.get("departments") or {}).get(dept)
    label = raw.get("label") if isinstance(raw, dict) else None
    return Label.of(label, fallback=dept).get(locale)


def _user_names(tenant, conn, ids) -> dict:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    u = tenant.schema.system["users"]
    return {r.id: (r.display_name or r.username)
            for r in conn.execute(sa.select(u.c.id, u.c.username, u.c.display_name).where(u.c.id.in_(ids)))}


# --- many rows at once (imports) -------------------------------------------------------------------

def find_duplicates_many(tenant, entity, rows: list[tuple[int, dict]], user=None, connection=None,
                         locale: str | None = None, index: DedupIndex | None = None
                         ) -> dict[int, list[dict]]:
    """{row number: matches} for rows about to be created together: against the stored records
    (match dicts as find_duplicates gives, without follow-ups) and against earlier rows of the same
    batch (``{"row": n, "score", "matched_on"}``). Rows without matches are left out."""
    if isinstance(entity, str):
        entity = tenant.model.entity(entity)
    index = index or DedupIndex.for_tenant(tenant)
    rules = index.rules(entity)
    if not rules or not rows:
        return {}
    out: dict[int, list[dict]] = {}
    with _connection(tenant, connection) as conn:
        index.serialize(conn, entity)
        index.ensure(conn, entity)
        db_hits: dict[int, dict[int, list]] = {}
        row_hits: dict[int, dict[int, list]] = {}
        for rule in rules:
            values = [index.normalized(rule, rec) for _, rec in rows]
            for i, found in enumerate(index.lookup_many(conn, rule, values)):
                for rid, score in found:
                    db_hits.setdefault(i, {}).setdefault(rid, []).append((rule, score))
            for i, found in enumerate(in_memory_matches(rule, values, index.max_posting)):
                for j, score in found:
                    row_hits.setdefault(i, {}).setdefault(j, []).append((rule, score))
        wanted = {rid for hits in db_hits.values() for rid in hits}
        infos = record_infos(tenant, conn, entity, sorted(wanted), user, locale, follow_ups=False) if wanted else {}
        for i in sorted(set(db_hits) | set(row_hits)):
            n = rows[i][0]
            matches = []
            for j, rules_scores in sorted(row_hits.get(i, {}).items()):
                matches.append({"row": rows[j][0], "score": max(s for _, s in rules_scores),
                                "matched_on": [{"rule": r.position, "fields": list(r.fields), "match": r.match,
                                                "score": s} for r, s in rules_scores]})
            hits = db_hits.get(i, {})
            ranked = sorted(hits, key=lambda rid: (-max(s for _, s in hits[rid]), rid))[:MAX_REPORTED]
            matches.extend(_match(rid, hits[rid], infos[rid]) for rid in ranked if rid in infos)
            matches.sort(key=lambda m: -m["score"])
            if matches:
                out[n] = matches
    return out


def row_problems(tenant, entity, rows: list[tuple[int, dict]], user, connection, locale: str | None
                 ) -> list[tuple[int, str, str]]:
    """(row number, field, message) for every row of a bulk create that duplicates a stored record or
    an earlier row — what an import reports by default."""
    problems = []
    for n, matches in find_duplicates_many(tenant, entity, rows, user, connection, locale).items():
        for m in matches[:3]:
            fields = m["matched_on"][0]["fields"]
            key = fields[0] if len(fields) == 1 else "_record"
            if "row" in m:
                msg = text("row", locale, row=m["row"], score=_score_text(m["score"]))
            else:
                msg = text("row_record", locale, item=item_text(m, locale))
            problems.append((n, key, msg))
    return problems
