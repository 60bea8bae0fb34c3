"""Duplicate detection, scan and merge (R14, R20) on SQLite and PostgreSQL, plus the pure parts."""
from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from rapidfuzz import fuzz

from engine.cli import build_cli
from engine.config import check_config
from engine.dedup.check import find_duplicates
from engine.dedup.index import DedupIndex, in_memory_matches
from engine.dedup.keys import fuzzy_keys, shared_bound, size_range
from engine.dedup.merge import merge
from engine.dedup.normalize import company_name, email, phone, readable, text
from engine.dedup.rules import rules_for
from engine.dedup.scan import scan
from engine.errors import BadRequest, DuplicatesFound, NotFound
from engine.permissions import PermissionDenied
from engine.records.service import BulkFailed
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).parent / "data"
CONFIG = DATA / "dedup.yaml"

STAR = "北京星河科技有限公司"
STAR_BRACKET = "星河科技(北京)有限公司"
STAR_SHORT = "北京星河科技"
CLOUD = "北京云帆科技有限公司"


# --- normalisers and bounds (no database) -----------------------------------------------------------

def test_r20_company_name_seed_cases_match():
    assert company_name(STAR) == company_name(STAR_BRACKET) == company_name(STAR_SHORT)
    assert readable(company_name(STAR)) == "星河‹科技›"
    assert company_name("星河科技（北京）有限公司") == company_name(STAR)  # full-width brackets
    assert fuzz.ratio(company_name(STAR), company_name(STAR_BRACKET)) >= 80


def test_r20_industry_words_weigh_one_symbol():
    def score(a, b):
        return fuzz.ratio(company_name(a), company_name(b))

    assert score("星河科技有限公司", "星河网络科技有限公司") >= 80     # same 字号, related industry
    assert score("星河科技有限公司", "星河") >= 80                     # the short name
    assert score("雷四房地产开发有限公司", "雷快木房地产开发有限公司") < 80  # only the industry in common
    assert score("Star River Technology Co., Ltd.", "Star River Tech Ltd") == 100


def test_r20_unrelated_companies_sharing_city_and_legal_form_do_not_match():
    assert fuzz.ratio(company_name(STAR), company_name(CLOUD)) < 80
    assert fuzz.ratio(company_name("上海华盛贸易有限公司"), company_name("上海华通贸易有限公司")) < 80


@pytest.mark.parametrize("raw, expected", [
    ("广东省深圳市腾讯计算机系统有限公司", "腾讯计算机‹系统›"),
    ("星河科技有限公司北京分公司", "星河‹科技›"),
    ("中国星河科技集团股份有限公司", "星河‹科技›"),
    ("星河(集团)有限公司", "星河"),
    ("Star River Technology Co., Ltd.", "starriver‹technology›"),
    ("Siemens (China) Co., Ltd.", "siemens"),
    ("ＡＢＣ Trading Inc.", "abc‹trading›"),
    ("北京银行", "北京‹银行›"),             # a city is kept when too little would remain
    ("北京金华信息技术有限公司", "金华‹信息›‹技术›"),  # only one place after a municipality
    ("上海华盛皮革制品有限公司", "华盛皮革制品"),        # words it does not know stay as they are
])
def test_r20_company_name_normaliser(raw, expected):
    assert readable(company_name(raw)) == expected


def test_r13_phone_email_text_normalisers():
    assert phone("+86 138-0013-8000") == phone("13800138000") == phone("138 0013 8000") == "+8613800138000"
    assert email("  Zhang.Wei@Example.COM ") == "zhang.wei@example.com"
    assert text("  Ｈｅｌｌｏ   World ") == "hello world"


def test_shared_key_bound_never_excludes_a_match():
    """Every pair scoring ≥ t shares at least the bound's number of keys and lies in the size range."""
    rng = random.Random(7)
    checked = 0
    for alphabet in ("星河科技云帆华为盛通", "abcdefgh"):
        for _ in range(20000):
            a = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
            b = list(a)
            for _ in range(rng.randint(0, 3)):
                op = rng.random()
                if op < 0.33 and b:
                    b.pop(rng.randrange(len(b)))
                elif op < 0.66:
                    b.insert(rng.randrange(len(b) + 1), rng.choice(alphabet))
                elif b:
                    b[rng.randrange(len(b))] = rng.choice(alphabet)
            b = "".join(b)
            for t in (60, 80, 90):
                if b and fuzz.ratio(a, b) >= t:
                    checked += 1
                    lo, hi = size_range(len(a), t)
                    assert lo <= len(b) <= hi
                    need = shared_bound(a, len(b), t)
                    assert need is not None and len(fuzzy_keys(a) & fuzzy_keys(b)) >= need, (a, b, t)
    assert checked > 10000


def test_values_one_edit_apart_always_meet_through_extra_keys():
    from engine.dedup.keys import extra_keys, probe_keys

    for query, stored in [("欣花卉园艺", "雅花卉园艺"), ("欣花卉园艺", "欣花卉园艺苑"), ("花卉园艺", "欣花卉园艺"),
                          ("欣花卉园艺", "花卉园艺"), ("欣花卉园艺", "欣花卉园艺")]:
        assert set(probe_keys(query, 80)) & set(extra_keys(stored)), (query, stored)


def test_in_memory_matches_equal_brute_force():
    from engine.dedup.rules import DedupRule

    rng = random.Random(3)
    chars = "星河科技云帆华为盛通达信"
    values = ["".join(rng.choice(chars) for _ in range(rng.randint(3, 7))) for _ in range(400)]
    rule = DedupRule("customer", ("name",), "fuzzy", 80.0, ("company_name",), 0)
    found = in_memory_matches(rule, values, max_posting=10 ** 6)
    for i, v in enumerate(values):
        brute = {j for j in range(i) if fuzz.ratio(v, values[j]) >= 80}
        assert {j for j, _ in found[i]} == brute
    # every pair key "common" (skipped): values one edit apart still meet through the extra keys
    from rapidfuzz.distance import Levenshtein

    found = in_memory_matches(rule, values, max_posting=0)
    for i, v in enumerate(values):
        near = {j for j in range(i) if fuzz.ratio(v, values[j]) >= 80 and Levenshtein.distance(v, values[j]) <= 1}
        assert near <= {j for j, _ in found[i]}


# --- the database ------------------------------------------------------------------------------------

@pytest.fixture
def org(db_url):
    t = Tenant.load(CONFIG, db_url=db_url)
    migrate_empty(t)
    users = {}
    for name, roles, dept in [("rep_a", ["sales_rep"], "sales_east"), ("rep_b", ["sales_rep"], "sales_east"),
                              ("rep_n", ["sales_rep"], "sales_north"), ("boss", ["sales_manager"], "sales"),
                              ("viewer", ["no_follow_ups"], "sales"), ("root", ["admin"], None)]:
        users[name] = t.users.add(name, roles, department=dept, manages=["sales"] if name == "boss" else [],
                                  password="initial-pass-1")[0]
    yield t, users
    t.dispose()


def customer(t, name, user=None, confirm_duplicates=False, **kw):
    return t.records.create("customer", {"name": name, **kw}, user, confirm_duplicates=confirm_duplicates)


def test_r14_similar_company_name_asks_to_confirm(org):
    t, u = org
    first = customer(t, STAR, u["rep_a"], mobile="13900000001")
    for variant in (STAR_BRACKET, STAR_SHORT):
        with pytest.raises(DuplicatesFound) as exc:
            customer(t, variant, u["rep_a"])
        [m] = exc.value.matches
        assert m["id"] == first["id"] and m["score"] >= 80 and m["visible"] is True
        assert m["title"] == STAR and m["matched_on"][0]["fields"] == ["name"]
        assert f"#{first['id']}" in str(exc.value) and STAR in str(exc.value)
        assert exc.value.to_json() == {"duplicates": exc.value.matches}
        json.dumps(exc.value.matches)  # the API can send it as is
    confirmed = customer(t, STAR_BRACKET, u["rep_a"], confirm_duplicates=True)
    assert confirmed["name"] == STAR_BRACKET


def test_r14_unrelated_company_in_same_city_is_not_a_duplicate(org):
    t, u = org
    customer(t, STAR)
    assert customer(t, CLOUD)["name"] == CLOUD
    assert customer(t, "上海星辰物流有限公司")["id"]


def test_r14_phone_in_any_format_matches(org):
    t, u = org
    first = customer(t, STAR, mobile="+86 138-0013-8000")
    with pytest.raises(DuplicatesFound) as exc:
        customer(t, "完全不同的公司", mobile="13800138000")
    [m] = exc.value.matches
    assert m["id"] == first["id"] and m["score"] == 100 and m["matched_on"][0]["fields"] == ["mobile"]
    assert m["values"] == {"mobile": "+8613800138000"}


def test_r14_composite_rule_same_contact_at_same_customer(org):
    t, u = org
    a, b = customer(t, STAR), customer(t, CLOUD)
    t.records.create("contact", {"name": "张伟", "customer": a["id"]})
    assert t.records.create("contact", {"name": "张伟", "customer": b["id"]})  # other customer: fine
    assert t.records.create("contact", {"name": "李娜", "customer": a["id"]})  # other name: fine
    with pytest.raises(DuplicatesFound):
        t.records.create("contact", {"name": " 张伟 ", "customer": a["id"]})


def test_r14_update_checks_only_changed_rule_fields(org):
    t, u = org
    a = customer(t, STAR, mobile="13800000001")
    b = customer(t, CLOUD, mobile="13800000002")
    t.records.update("customer", a["id"], {"needs": "ERP"})  # no rule field changed
    with pytest.raises(DuplicatesFound) as exc:
        t.records.update("customer", b["id"], {"name": STAR_SHORT})
    assert exc.value.matches[0]["id"] == a["id"]
    with pytest.raises(DuplicatesFound):
        t.records.update("customer", b["id"], {"mobile": "138 0000 0001"})
    # a record never matches itself; confirming saves it and the index follows the new name
    t.records.update("customer", a["id"], {"name": STAR_BRACKET})
    t.records.update("customer", b["id"], {"name": STAR_SHORT}, confirm_duplicates=True)
    ids = {m["id"] for m in find_duplicates(t, "customer", {"name": "星河科技"})}
    assert ids == {a["id"], b["id"]}
    assert find_duplicates(t, "customer", {"name": CLOUD}) == []


def test_r14_index_follows_delete(org):
    t, u = org
    a = customer(t, STAR)
    t.records.delete("customer", a["id"])
    assert customer(t, STAR_SHORT)["id"]


def test_r14_match_shows_latest_three_follow_ups_the_user_may_see(org):
    t, u = org
    c = customer(t, STAR, u["rep_a"])
    today = date.today()
    for i in range(4):
        fu = t.records.create("follow_up", {"customer": c["id"], "summary": f"第{i + 1}次拜访",
                                            "followed_on": (today - timedelta(days=10 - i)).isoformat()}, u["rep_a"])
        t.records.update("follow_up", fu["id"], {"secret": "内部备注"})  # reps may not see or write it
    t.records.create("follow_up", {"customer": c["id"], "followed_on": today.isoformat(), "summary": "第5次拜访",
                                   "owner": u["boss"].id, "department": "sales"})
    [m] = find_duplicates(t, "customer", {"name": STAR_SHORT}, user=u["rep_a"])
    assert [f["summary"] for f in m["follow_ups"]] == ["第4次拜访", "第3次拜访", "第2次拜访"]  # boss's is not theirs
    assert all(f["owner_name"] == "rep_a" and f["date"] for f in m["follow_ups"])
    assert "内部备注" not in json.dumps(m, ensure_ascii=False)
    [m] = find_duplicates(t, "customer", {"name": STAR_SHORT}, user=u["boss"])
    assert m["follow_ups"][0]["summary"] == "第5次拜访" and "内部备注" in json.dumps(m, ensure_ascii=False)
    [m] = find_duplicates(t, "customer", {"name": STAR_SHORT}, user=u["viewer"])
    assert m["visible"] is True and m["follow_ups"] is None  # may read customers, not follow-ups


def test_r14_match_outside_scope_reveals_only_the_department(org):
    t, u = org
    customer(t, STAR, u["rep_a"], mobile="13800000001", needs="机密需求")
    with pytest.raises(DuplicatesFound) as exc:
        customer(t, STAR_BRACKET, u["rep_n"], mobile="13800000001")
    [m] = exc.value.matches
    assert m["visible"] is False and m["id"] is None
    assert m["message"] == "已存在匹配的记录，归属部门：华东组"
    text_sent = json.dumps(exc.value.matches, ensure_ascii=False) + str(exc.value)
    for secret in (STAR, "rep_a", "+8613800000001", "机密需求"):
        assert secret not in text_sent
    assert "华东组" in str(exc.value)


def test_r40_match_never_leaks_hidden_fields(org):
    t, u = org
    c = customer(t, STAR, u["rep_a"], mobile="13800000001")
    t.records.update("customer", c["id"], {"credit_limit": "880000"})  # reps may not see it
    with pytest.raises(DuplicatesFound) as exc:
        customer(t, STAR_SHORT, u["rep_a"])
    sent = json.dumps(exc.value.matches, ensure_ascii=False)
    assert "880000" not in sent and "credit_limit" not in sent
    [m] = find_duplicates(t, "customer", {"name": STAR_SHORT})  # the system sees everything
    assert m["visible"] and m["owner_name"] == "rep_a"


def test_r14_import_reports_duplicates_in_file_and_against_database(org):
    t, u = org
    stored = customer(t, STAR)
    rows = [{"name": CLOUD}, {"name": STAR_BRACKET}, {"name": "上海星辰物流有限公司", "mobile": "13800000009"},
            {"name": "北京云帆科技"}, {"name": "另一家公司", "mobile": "+86 138 0000 0009"}]
    with pytest.raises(BulkFailed) as exc:
        t.records.create_many("customer", rows)
    by_row = {(e.row, e.field): e.message for e in exc.value.row_errors}
    assert set(by_row) == {(2, "name"), (4, "name"), (5, "mobile")}
    assert f"#{stored['id']}" in by_row[(2, "name")]
    assert "第 1 行" in by_row[(4, "name")] and "第 3 行" in by_row[(5, "mobile")]
    assert t.records.count("customer") == 1
    result = t.records.create_many("customer", rows, skip_invalid=True)
    assert len(result.created) == 2 and result.skipped == 3
    result = t.records.create_many("customer", [{"name": "北京云帆科技有限责任公司"}], confirm_duplicates=True)
    assert len(result.created) == 1


def _cli(*args):
    return CliRunner().invoke(build_cli(), [str(a) for a in args], catch_exceptions=False)


def test_r14_import_on_duplicate_skip_create_update(org, tmp_path):
    t, u = org
    stored = customer(t, STAR, mobile="13800000001")
    csv = tmp_path / "customers.csv"
    csv.write_text("name,mobile,industry\n"
                   f"{STAR_BRACKET},,制造业\n"          # duplicate of the stored record
                   f"{CLOUD},13800000002,金融业\n"      # new
                   "北京云帆科技,,教育业\n", encoding="utf-8")  # duplicate of the row before
    db = ["--db", t.db_url]
    out = _cli("import", CONFIG, "customer", csv, *db)
    assert out.exit_code == 1 and "row 1: name:" in out.output and "row 3: name:" in out.output
    assert t.records.count("customer") == 1

    out = _cli("import", CONFIG, "customer", csv, *db, "--on-duplicate", "skip", "--dry-run")
    assert out.exit_code == 0, out.output
    assert t.records.count("customer") == 1
    out = _cli("import", CONFIG, "customer", csv, *db, "--on-duplicate", "skip")
    assert out.exit_code == 0, out.output
    assert "row 1: name: left out" in out.output and "row 3: name: left out" in out.output
    assert "imported 1 customer" in out.output
    assert sorted(r["name"] for r in t.records.list("customer").items) == sorted([STAR, CLOUD])

    csv.write_text("name,industry\n"
                   f"{STAR_BRACKET},制造业\n"
                   "上海星辰物流有限公司,教育业\n", encoding="utf-8")
    out = _cli("import", CONFIG, "customer", csv, *db, "--on-duplicate", "update")
    assert out.exit_code == 0, out.output
    updated = t.records.get("customer", stored["id"])
    assert updated["industry"] == "制造业" and updated["name"] == STAR  # the stored name is kept
    assert "updated 1 existing record" in out.output and "imported 1 customer" in out.output

    out = _cli("import", CONFIG, "customer", csv, *db, "--on-duplicate", "create")
    assert "row 2: name: 已存在相同的值" in out.output  # unique still applies; duplicates do not
    assert out.exit_code == 1


def test_r14_index_rebuilds_itself_when_missing_or_rule_changed(org):
    t, u = org
    a = customer(t, STAR)
    idx = DedupIndex(t)
    tables = t.schema.metadata.tables
    with t.write() as conn:  # as after `formwork migrate` on a database that already has records
        for name in ("fw_dedup_keys", "fw_dedup_values", "fw_dedup_state"):
            conn.execute(tables[name].delete())
    [m] = find_duplicates(t, "customer", {"name": STAR_SHORT})
    assert m["id"] == a["id"]
    with t.write() as conn:  # a rule whose definition changed is rebuilt too
        conn.execute(tables["fw_dedup_state"].update().values(signature="old"))
    assert find_duplicates(t, "customer", {"name": STAR_SHORT})[0]["id"] == a["id"]
    with t.connect() if hasattr(t, "connect") else t.db.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(tables["fw_dedup_state"])).scalar()
    assert n == len(idx.rules(t.model.entity("customer")))


def test_r14_common_keys_are_skipped_without_losing_matches(org):
    t, u = org
    rows = [{"name": f"北京{a}{b}皮革制品有限公司"} for a in "甲乙丙丁戊己庚辛壬癸" for b in "子丑寅卯辰巳午未申酉"]
    rows.append({"name": "吉林皮革制品有限公司"})  # its 字号 is a place: it normalises to the industry alone
    t.records.create_many("customer", rows, confirm_duplicates=True)  # 甲子… and 甲丑… score 83
    idx = DedupIndex(t, max_posting=20)  # "皮革" is in every one of the 101 names
    rule = [r for r in idx.rules(t.model.entity("customer")) if r.match == "fuzzy"][0]
    with t.write() as conn:
        assert idx._common(conn, rule, ["皮革", "甲子"]) == {"皮革"}
        stored = dict(idx.stored_values(conn, rule).all())
        queries = [company_name("甲子皮革制品"), company_name("乙丑皮革制品股份有限公司")]
        brute = [{rid for rid, v in stored.items() if fuzz.ratio(q, v) >= 80} for q in queries]
        stats: dict = {}
        hits = idx.lookup(conn, rule, queries[0], stats=stats)
        many = idx.lookup_many(conn, rule, queries)
    assert {rid for rid, _ in hits} == brute[0] and len(brute[0]) == 20  # 19 one 字号 character apart …
    assert sorted(s for _, s in hits)[0] == 80.0                         # … and, by probe, 皮革制品 itself
    assert stats["skipped"] >= 5 and stats["scored"] <= 30
    assert [{rid for rid, _ in x} for x in many] == brute


def test_r20_scan_lists_clusters_with_scores(org):
    t, u = org
    a = customer(t, STAR, mobile="13800000001")
    b = customer(t, STAR_BRACKET, confirm_duplicates=True)
    c = customer(t, "无关实业", mobile="+86 138 0000 0001", confirm_duplicates=True)
    customer(t, CLOUD)
    clusters = scan(t, "customer")
    assert len(clusters) == 1
    [cl] = clusters
    assert cl.ids == sorted([a["id"], b["id"], c["id"]]) and cl.score == 100
    assert {(p.a, p.b, p.rule) for p in cl.pairs} == {(a["id"], b["id"], "name"), (a["id"], c["id"], "mobile")}
    assert scan(t, "customer", rule_fields="mobile")[0].ids == [a["id"], c["id"]]
    assert scan(t, "customer", user=u["rep_a"]) == []  # none of them are rep_a's

    out = _cli("duplicates", CONFIG, "customer", "--db", t.db_url)
    assert out.exit_code == 0, out.output
    assert "1 cluster(s)" in out.output and STAR_BRACKET in out.output and "(mobile)" in out.output
    out = _cli("duplicates", CONFIG, "customer", "--db", t.db_url, "--reindex", "--format", "json")
    data = json.loads(out.stdout)
    assert data["total"] == 1 and data["clusters"][0]["score"] == 100
    assert "indexed 4 customer record(s)" in out.output


def test_cli_duplicates_reports_bad_input_without_traceback(org):
    t, u = org
    for args, expected in [(["nosuch"], "unknown entity 'nosuch'"),
                           (["follow_up"], "follow_up has no duplicates: rules"),
                           (["customer", "--rule", "email"], "customer has no rule on 'email'"),
                           (["customer", "--as", "ghost"], "no such user: ghost")]:
        out = _cli("duplicates", CONFIG, *args, "--db", t.db_url)
        assert out.exit_code != 0 and expected in out.output and "Traceback" not in out.output


def _audit(t, entity, rid):
    return t.records.history(entity, rid)


def test_r20_merge_repoints_children_and_keeps_history(org):
    t, u = org
    keep = customer(t, STAR, u["rep_a"], mobile="13800000001")
    dup = customer(t, STAR_BRACKET, u["rep_a"], email="info@star.example", needs="ERP", confirm_duplicates=True)
    dup2 = customer(t, STAR_SHORT, u["rep_a"], confirm_duplicates=True)
    t.records.update("customer", dup["id"], {"industry": "金融业"}, u["rep_a"])
    t.records.update("customer", dup2["id"], {"parent": dup["id"]}, u["rep_a"])
    t.records.update("customer", keep["id"], {"parent": dup2["id"]}, u["rep_a"])
    other = customer(t, CLOUD, u["rep_a"], parent=dup["id"])
    contact = t.records.create("contact", {"name": "张伟", "customer": dup["id"]}, u["rep_a"])
    t.records.create("contact", {"name": "张伟", "customer": keep["id"]}, u["rep_a"])
    fu = t.records.create("follow_up", {"customer": dup2["id"], "followed_on": date.today().isoformat(),
                                        "summary": "拜访"}, u["rep_a"])
    deal = t.records.create("deal", {"name": "ERP项目", "customer": dup["id"],
                                     "parties": [{"party": dup2["id"], "role": "甲方"}, {"party": other["id"], "role": "乙方"}]},
                            u["rep_a"])

    result = merge(t, "customer", keep["id"], [dup["id"], dup2["id"]], {"industry": dup["id"]}, u["rep_a"])

    assert result["merged"] == [dup["id"], dup2["id"]]
    survivor = t.records.get("customer", keep["id"])
    assert survivor["industry"] == "金融业"                      # chosen from a merged record
    assert survivor["email"] == "info@star.example" and survivor["needs"] == "ERP"   # gaps filled
    assert survivor["name"] == STAR and survivor["mobile"] == "+8613800000001"       # the survivor's own
    assert survivor["parent"] is None                             # it would have pointed at itself
    for rid in (dup["id"], dup2["id"]):
        with pytest.raises(NotFound):
            t.records.get("customer", rid)
    assert t.records.get("customer", other["id"])["parent"] == keep["id"]
    moved_contact = t.records.get("contact", contact["id"])
    assert moved_contact["customer"] == keep["id"] and moved_contact["version"] == 2
    assert t.records.get("follow_up", fu["id"])["customer"] == keep["id"]
    d = t.records.get("deal", deal["id"])
    assert d["customer"] == keep["id"] and [p["party"] for p in d["parties"]] == [keep["id"], other["id"]]
    assert result["moved"]["contact.customer"] == 1 and result["moved"]["deal__parties.party"] == 1

    history = _audit(t, "customer", keep["id"])
    assert history[0]["action"] == "merge" and f"#{dup['id']}" in history[0]["note"]
    merged_notes = [h for h in history if (h["note"] or "").startswith(f"merged from #{dup['id']}")]
    assert {h["action"] for h in merged_notes} == {"create", "update"}   # dup's own timeline came along
    assert any(h["changes"].get("industry") == [None, "金融业"] for h in merged_notes)
    deal_history = _audit(t, "deal", deal["id"])
    assert deal_history[0]["changes"]["customer"] == [dup["id"], keep["id"]]
    # the index follows: the merged names are gone, the contact pair is now a duplicate at one customer
    assert {m["id"] for m in find_duplicates(t, "customer", {"name": "星河科技"})} == {keep["id"]}
    assert [c.ids for c in scan(t, "contact")] == [sorted([contact["id"], contact["id"] + 1])]


def test_r20_merge_is_permission_checked(org):
    t, u = org
    mine = customer(t, STAR, u["rep_a"])
    theirs = customer(t, STAR_SHORT, u["rep_n"], confirm_duplicates=True)
    with pytest.raises(NotFound):  # outside rep_a's scope: no oracle
        merge(t, "customer", mine["id"], [theirs["id"]], {}, u["rep_a"])
    with pytest.raises(PermissionDenied):  # may read customers, not update or delete them
        merge(t, "customer", mine["id"], [theirs["id"]], {}, u["viewer"])
    assert t.records.get("customer", theirs["id"])["name"] == STAR_SHORT
    merge(t, "customer", mine["id"], [theirs["id"]], {"name": {"value": "北京星河科技股份有限公司"}}, u["boss"])
    assert t.records.get("customer", mine["id"])["name"] == "北京星河科技股份有限公司"


def test_r20_merge_rejects_bad_choices(org):
    t, u = org
    a, b = customer(t, STAR), customer(t, STAR_SHORT, confirm_duplicates=True)
    for choices, expected in [({"bogus": a["id"]}, "unknown field 'bogus'"),
                              ({"name": {"from": 999999}}, "not part of this merge"),
                              ({"name": {"x": 1}}, "give a record id")]:
        with pytest.raises(BadRequest, match=expected):
            merge(t, "customer", a["id"], [b["id"]], choices)
    with pytest.raises(BadRequest, match="at least one record"):
        merge(t, "customer", a["id"], [a["id"]], {})
    assert t.records.count("customer") == 2
    # the unique name can be taken from the merged record: it is deleted first
    merge(t, "customer", a["id"], [b["id"]], {"name": b["id"]})
    assert t.records.get("customer", a["id"])["name"] == STAR_SHORT


# --- config ------------------------------------------------------------------------------------------

BAD_RULES = """tenant: {name: bad}
entities:
  follow_up:
    fields:
      customer: {type: reference, to: customer}
      summary: {type: text}
  customer:
    fields:
      name: {type: text}
      mobile: {type: phone}
      lines: {type: subtable, fields: {x: {type: text}}}
    duplicates:
      - {field: nmae, match: fuzzy}
      - {fields: [name, mobile], match: fuzzy}
      - {field: mobile, match: exact, threshold: 90}
      - {field: name, match: fuzzy, normalize: compnay_name}
      - {match: exact}
      - {field: lines, match: exact}
      - {field: name, match: fuzzy, normalize: my_plugin_normaliser}
    follow_ups: {entity: follow_up, date: summary}
    quality:
      key_fields: [name, phone]
      followed_up_min: 80
"""


def test_duplicate_and_quality_settings_are_checked_with_locations(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_RULES, encoding="utf-8")
    model, issues = check_config(path)
    text = "\n".join(str(i) for i in issues)
    expected = [
        ":13:", "field: 'nmae' is not a field of customer (did you mean 'name'?)",
        ":14:", "a fuzzy rule compares one field",
        ":15:", "threshold: only a fuzzy rule has a threshold",
        ":16:", "unknown normaliser 'compnay_name' (did you mean 'company_name'?)",
        ":17:", "needs field: (one field) or fields:",
        ":18:", "'lines' is a subtable field and cannot be compared",
        ":20:", "date: 'follow_up.summary' is a text field",
        ":22:", "key_fields: 'phone' is not a field of customer",
        ":19:", "unknown normaliser 'my_plugin_normaliser' (known: company_name, email, phone, text)",
        ":23:", "followed_up_min: give the period too",
    ]
    for piece in expected:
        assert piece in text, (piece, text)
    assert len(issues) == 10  # check_config without plugin arguments knows the built-in plugins


def test_unknown_plugin_normaliser_is_reported_when_the_tenant_loads(tmp_path):
    from engine.errors import ConfigError

    path = tmp_path / "t.yaml"
    path.write_text("tenant: {name: t}\nentities:\n  customer:\n    fields: {name: {type: text}}\n"
                    "    duplicates:\n      - {field: name, match: fuzzy, normalize: pinyin}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t.yaml:6:.*unknown normaliser 'pinyin'"):
        Tenant.load(path, db_url=f"sqlite:///{tmp_path / 'x.db'}")

    class Pinyin:
        from engine.plugins import hookimpl

        @hookimpl
        def formwork_dedup_normalizers(self):
            return {"pinyin": lambda value, ctx: value.lower()}

    t = Tenant.load(path, db_url=f"sqlite:///{tmp_path / 'x.db'}", plugins=(Pinyin(),))
    assert rules_for(t.model.entity("customer"))[0].normalize == ("pinyin",)
    t.dispose()


class PhoneCn:
    """A plugin whose normaliser's name is close to a built-in one."""
    from engine.plugins import hookimpl

    @hookimpl
    def formwork_dedup_normalizers(self):
        return {"phone_cn": lambda value, ctx: value.replace("-", "")}


PLUGIN_RULE = ("tenant: {name: t}\nentities:\n  customer:\n    fields: {name: {type: text}}\n"
               "    duplicates:\n      - {field: name, match: fuzzy, normalize: %s}\n")


def test_r20_formwork_check_reports_an_unknown_normaliser_at_file_line_col(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(PLUGIN_RULE % "foobarqux", encoding="utf-8")
    r = CliRunner().invoke(build_cli(), ["check", str(path)])
    assert r.exit_code == 1
    assert f"{path}:6:48: normalize: unknown normaliser 'foobarqux' (known: company_name, email, phone, text)" \
        in r.output
    path.write_text(PLUGIN_RULE % "compnay_name", encoding="utf-8")
    r = CliRunner().invoke(build_cli(), ["check", str(path)])
    assert r.exit_code == 1 and f"{path}:6:48: normalize: unknown normaliser 'compnay_name' " \
                                 "(did you mean 'company_name'?)" in r.output


def test_r20_a_loaded_plugins_normaliser_is_not_reported_as_unknown(tmp_path):
    from engine.dedup.normalize import collect_normalizers
    from engine.errors import ConfigError
    from engine.plugins import make_plugin_manager

    path = tmp_path / "t.yaml"
    path.write_text(PLUGIN_RULE % "phone_cn", encoding="utf-8")
    # the tenant loads the plugin: its normaliser is known, even with a name near a built-in one
    t = Tenant.load(path, db_url=f"sqlite:///{tmp_path / 'x.db'}", plugins=(PhoneCn(),))
    assert rules_for(t.model.entity("customer"))[0].normalize == ("phone_cn",)
    t.dispose()
    model, issues = check_config(path, normalizers=collect_normalizers(make_plugin_manager((PhoneCn(),))))
    assert issues == [] and model is not None
    # without the plugin it is unknown, at its place, whichever way the config is read
    with pytest.raises(ConfigError, match=r"t.yaml:6:48: normalize: unknown normaliser 'phone_cn' "
                                          r"\(did you mean 'phone'\?\)"):
        Tenant.load(path, db_url=f"sqlite:///{tmp_path / 'x.db'}")
    _, issues = check_config(path)
    assert [str(i) for i in issues] == [f"{path}:6:48: normalize: unknown normaliser 'phone_cn' "
                                        "(did you mean 'phone'?)"]
