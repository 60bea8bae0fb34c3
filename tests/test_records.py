"""The records service on SQLite and PostgreSQL: validation, formulas, locking, audit, lists, autonumbers."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.errors import BadRequest, Conflict, NotFound, ValidationFailed
from engine.schema.migrate import migrate
from engine.tenant import Tenant
from tests.dbtemplates import migrate_empty

DATA = Path(__file__).parent / "data"


@pytest.fixture
def tenant(db_url):
    t = Tenant.load(DATA / "crm_v1.yaml", db_url=db_url)
    migrate_empty(t)
    yield t
    t.dispose()


def customer(tenant, name="北京星河科技有限公司", **kw):
    return tenant.records.create("customer", {"name": name, "industry": "制造业", **kw})


def test_r12_create_collects_every_field_error_in_tenant_language(tenant):
    with pytest.raises(ValidationFailed) as exc:
        tenant.records.create("customer", {"industry": "互联网", "rating": "9", "phone": "12345", "bogus": 1})
    errors = exc.value.errors
    assert errors["name"] == ["必填"]
    assert "不在可选项中" in errors["industry"][0]
    assert errors["rating"] == ["不能大于 5"]
    assert "电话" in errors["phone"][0]
    assert errors["bogus"] == ["未知字段"]


def test_r12_rule_a_customer_requires_phone(tenant):
    with pytest.raises(ValidationFailed) as exc:
        customer(tenant, level="A")
    assert exc.value.errors == {"_record": ["A类客户必须填写电话"]}
    rec = customer(tenant, level="A", phone="138 0013 8000")
    assert rec["phone"] == "+8613800138000"  # R13: stored normalised


def test_defaults_formulas_and_english_messages(tenant):
    rec = customer(tenant, rating="4")
    assert rec["level"] == "C" and rec["score"] == 80
    with pytest.raises(ValidationFailed) as exc:
        tenant.records.create("customer", {"industry": "制造业"}, locale="en_US")
    assert exc.value.errors["name"] == ["This field is required"]


def test_formula_is_read_only(tenant):
    with pytest.raises(ValidationFailed) as exc:
        customer(tenant, rating=1, score=99)
    assert exc.value.errors["score"] == ["该字段只读"]


def test_unique_value_refused(tenant):
    customer(tenant)
    with pytest.raises(ValidationFailed) as exc:
        customer(tenant)
    assert exc.value.errors["name"] == ["已存在相同的值"]


def test_r19_follow_up_cannot_predate_customer(tenant):
    c = customer(tenant)
    before = (c["created_at"] - timedelta(days=3)).isoformat()
    with pytest.raises(ValidationFailed) as exc:
        tenant.records.create("follow_up", {"customer": c["id"], "contacted_at": before, "summary": "电话沟通"})
    assert exc.value.errors == {"contacted_at": ["跟进时间不能早于客户创建时间"]}
    ok = tenant.records.create("follow_up", {"customer": c["id"], "contacted_at": datetime.now(timezone.utc).isoformat(),
                                             "summary": "电话沟通"})
    assert ok["customer"] == c["id"]


def test_reference_must_exist_and_delete_refused_while_referenced(tenant):
    with pytest.raises(ValidationFailed) as exc:
        tenant.records.create("contact", {"name": "张伟", "customer": 999})
    assert "不存在" in exc.value.errors["customer"][0]
    c = customer(tenant)
    contact = tenant.records.create("contact", {"name": "张伟", "customer": c["id"]})
    with pytest.raises(ValidationFailed) as exc:
        tenant.records.delete("customer", c["id"])
    assert "引用" in exc.value.errors["_record"][0]
    tenant.records.delete("contact", contact["id"])
    tenant.records.delete("customer", c["id"])
    with pytest.raises(NotFound):
        tenant.records.get("customer", c["id"])


def test_subtable_lines_and_aggregate_total_exact_decimal(tenant):
    c = customer(tenant)
    p1 = tenant.records.create("product", {"name": "CRM 标准版", "price": "19999.90"})
    p2 = tenant.records.create("product", {"name": "实施服务", "price": "0.10"})
    q = tenant.records.create("quote", {"customer": c["id"], "lines": [
        {"product": p1["id"], "quantity": 3, "unit_price": "19999.90"},
        {"product": p2["id"], "quantity": "7", "unit_price": "0.10"}]})
    assert [l["line_total"] for l in q["lines"]] == [Decimal("59999.70"), Decimal("0.70")]
    assert q["total"] == Decimal("60000.40")
    q2 = tenant.records.update("quote", q["id"], {"lines": q["lines"][:1]}, version=q["version"])
    assert q2["total"] == Decimal("59999.70") and len(q2["lines"]) == 1
    with pytest.raises(ValidationFailed) as exc:
        tenant.records.create("quote", {"customer": c["id"], "lines": [{"product": p1["id"], "quantity": 0}]})
    assert set(exc.value.errors) == {"lines.0.quantity", "lines.0.unit_price"}


def test_autonumber_format(tenant):
    c = customer(tenant)
    year = datetime.now(tenant.timezone).year
    codes = [tenant.records.create("quote", {"customer": c["id"]})["code"] for _ in range(3)]
    assert codes == [f"BJ-{year}-0001", f"BJ-{year}-0002", f"BJ-{year}-0003"]


def test_autonumber_gap_free_under_concurrency(tenant):
    c = customer(tenant)
    codes, errors = [], []

    def worker():
        for _ in range(5):
            try:
                codes.append(tenant.records.create("quote", {"customer": c["id"]})["code"])
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    seqs = sorted(int(code.rsplit("-", 1)[1]) for code in codes)
    assert seqs == list(range(1, 21))


def test_autonumber_rolled_back_with_failed_record_leaves_no_gap(tenant):
    c = customer(tenant)
    tenant.records.create("quote", {"customer": c["id"]})
    with pytest.raises(ValidationFailed):
        with tenant.db.begin() as conn:
            tenant.records.create("quote", {"customer": c["id"]}, connection=conn)
            raise ValidationFailed({"_record": ["abort"]})
    third = tenant.records.create("quote", {"customer": c["id"]})
    assert third["code"].endswith("-0002")


def test_optimistic_lock_conflict_names_who_changed_it(tenant):
    c = customer(tenant)
    tenant.records.update("customer", c["id"], {"rating": 3}, version=c["version"])
    with pytest.raises(Conflict) as exc:
        tenant.records.update("customer", c["id"], {"rating": 4}, version=c["version"])
    assert exc.value.current_version == 2
    assert exc.value.changes == {"rating": [None, 3], "score": [None, 60]}
    assert "system" in str(exc.value)


def test_r43_audit_row_per_change_with_old_and_new(tenant):
    c = customer(tenant, rating=1)
    tenant.records.update("customer", c["id"], {"rating": 2, "level": "B"})
    tenant.records.update("customer", c["id"], {"rating": 2})  # no change → no audit row, no version bump
    history = tenant.records.history("customer", c["id"])
    assert [h["action"] for h in history] == ["update", "create"]
    assert history[0]["changes"] == {"rating": [1, 2], "level": ["C", "B"], "score": [20, 40]}
    assert history[1]["changes"]["name"] == [None, "北京星河科技有限公司"]
    assert tenant.records.get("customer", c["id"])["version"] == 2


def test_list_filters_sort_and_keyset_pagination(tenant):
    for i in range(25):
        customer(tenant, name=f"公司{i:02d}", rating=i % 6, level="ABC"[i % 3] if i % 3 else "C",
                 revenue=str(1000 * i))
    page = tenant.records.list("customer", sort="rating", limit=10)
    seen = [r["id"] for r in page.items]
    while page.next:
        page = tenant.records.list("customer", sort="rating", limit=10, after=page.next)
        seen += [r["id"] for r in page.items]
    assert len(seen) == 25 and len(set(seen)) == 25
    ratings = [tenant.records.get("customer", i)["rating"] for i in seen]
    assert ratings == sorted(ratings)
    assert tenant.records.count("customer", filters={"rating__gte": "4"}) == 8
    assert tenant.records.count("customer", filters={"revenue__between": "5000,9000"}) == 5
    assert tenant.records.count("customer", filters={"level__in": "B,C"}) == 25
    assert tenant.records.count("customer", search="公司1") == 10
    desc = tenant.records.list("customer", sort="-revenue", limit=3).items
    assert [r["revenue"] for r in desc] == [Decimal("24000.00"), Decimal("23000.00"), Decimal("22000.00")]
    with pytest.raises(BadRequest):
        tenant.records.list("customer", filters={"nope": "1"})
    with pytest.raises(BadRequest):
        tenant.records.list("customer", filters={"name__gte": "x"})
    with pytest.raises(BadRequest):
        tenant.records.list("customer", sort="lines")


def test_quick_search_by_name_and_phone(tenant):
    customer(tenant, phone="13800138000")
    customer(tenant, name="上海云帆贸易有限公司")
    hits = tenant.records.quick_search("星河")
    assert [h["title"] for h in hits] == ["北京星河科技有限公司"]
    hits = tenant.records.quick_search("138-0013-8000")
    assert [h["title"] for h in hits] == ["北京星河科技有限公司"]


def test_import_all_or_nothing_names_every_bad_row(tenant):
    from engine.records.service import BulkFailed

    rows = [{"name": "甲", "industry": "制造业"}, {"name": "乙", "industry": "外星"},
            {"name": "甲", "industry": "金融业"}, {"industry": "制造业"}]
    with pytest.raises(BulkFailed) as exc:
        tenant.records.create_many("customer", rows)
    assert sorted({(e.row, e.field) for e in exc.value.row_errors}) == [(2, "industry"), (3, "name"), (4, "name")]
    assert tenant.records.count("customer") == 0
    result = tenant.records.create_many("customer", rows, skip_invalid=True)
    assert len(result.created) == 1 and result.skipped == 3


def test_reference_by_unique_title_in_bulk(tenant):
    customer(tenant)
    result = tenant.records.create_many("contact", [{"name": "王芳", "customer": "北京星河科技有限公司"}])
    contact = tenant.records.get("contact", result.created[0])
    assert tenant.records.titles("customer", [contact["customer"]]) == {contact["customer"]: "北京星河科技有限公司"}
    with pytest.raises(ValidationFailed):
        tenant.records.create_many("contact", [{"name": "王芳", "customer": "不存在的公司"}])


def test_display_formats_for_people(tenant):
    c = customer(tenant, phone="13800138000", revenue="1234567.5", source="expo")
    shown = tenant.records.display("customer", c)
    assert shown["phone"] == "+86-138-0013-8000"
    assert shown["source"] == "展会获客"
    assert "1,234,567.50" in shown["revenue"]


def test_unknown_entity_and_record_are_not_found(tenant):
    with pytest.raises(NotFound):
        tenant.records.list("nope")
    with pytest.raises(NotFound):
        tenant.records.get("customer", 12345)
    with pytest.raises(NotFound):
        tenant.records.get("customer", "abc")


def test_audit_is_in_the_same_transaction(tenant):
    audit = tenant.schema.system["audit"]
    with pytest.raises(RuntimeError):
        with tenant.db.begin() as conn:
            customer_rec = tenant.records.create("customer", {"name": "回滚公司", "industry": "制造业"}, connection=conn)
            assert customer_rec["id"]
            raise RuntimeError("abort")
    with tenant.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar() == 0
    assert tenant.records.count("customer") == 0


def test_an_unreadable_required_value_gets_one_error_not_also_required(tenant):
    with pytest.raises(ValidationFailed) as exc:
        tenant.records.create("contact", {"name": "张伟", "customer": "abc", "mobile": "12345"})
    assert len(exc.value.errors["mobile"]) == 1 and "电话" in exc.value.errors["mobile"][0]
    assert exc.value.errors["customer"] != ["必填"]


def test_rows_that_leave_out_different_optional_fields_are_saved_together(tenant):
    c = customer(tenant)
    p = tenant.records.create("product", {"name": "实施服务"})
    q = tenant.records.create("quote", {"customer": c["id"], "lines": [
        {"product": p["id"], "quantity": 1, "unit_price": "5"},
        {"product": p["id"], "quantity": 2, "unit_price": "6"}]})
    assert len(q["lines"]) == 2
    result = tenant.records.create_many("customer", [
        {"name": "只有名称", "industry": "制造业"},
        {"name": "还有电话", "industry": "制造业", "phone": "13800138000", "rating": 3}])
    got = [tenant.records.get("customer", i) for i in result.created]
    assert got[0]["phone"] is None and got[1]["phone"] == "+8613800138000" and got[1]["score"] == 60


class _BatchValidator:
    """A plugin with both validation hooks: imports must use the batch one, single writes the other."""

    def __init__(self):
        self.batches, self.singles = [], 0

    @staticmethod
    def _bad(record) -> bool:
        return "禁用" in (record.get("name") or "")

    from engine.plugins import hookimpl

    @hookimpl
    def formwork_records_validate_many(self, tenant, entity, rows, locale):
        self.batches.append(len(rows))
        return [(n, "name", "含有禁用词") for n, record in rows if self._bad(record)]

    @hookimpl
    def formwork_records_validate(self, tenant, entity, values, old, errors, locale):
        self.singles += 1
        if self._bad(values):
            errors.setdefault("name", []).append("含有禁用词")


class _RowValidator:
    from engine.plugins import hookimpl

    def __init__(self):
        self.calls = 0

    @hookimpl
    def formwork_records_validate(self, tenant, entity, values, old, errors, locale):
        self.calls += 1


def test_r12_an_import_is_validated_by_batch_plugins_once_and_by_row_plugins_per_row(db_url):
    from engine.records.service import BulkFailed

    batch, row = _BatchValidator(), _RowValidator()
    t = Tenant.load(DATA / "crm_v1.yaml", db_url=db_url, plugins=(batch, row))
    migrate(t)
    rows = [{"name": f"公司{i}", "industry": "制造业"} for i in range(5)] + [{"name": "禁用公司", "industry": "制造业"}]
    with pytest.raises(BulkFailed) as exc:
        t.records.create_many("customer", rows)
    assert [(e.row, e.field, e.message) for e in exc.value.row_errors] == [(6, "name", "含有禁用词")]
    assert batch.batches == [6] and batch.singles == 0 and row.calls == 6
    with pytest.raises(ValidationFailed):
        t.records.create("customer", {"name": "禁用", "industry": "制造业"})
    assert batch.singles == 1
    t.dispose()


def test_an_id_too_large_for_the_database_is_a_validation_error_not_a_crash(tenant):
    from engine.records.service import BulkFailed

    huge = 10 ** 22
    for value in (huge, str(huge)):
        with pytest.raises(ValidationFailed) as exc:
            tenant.records.create("customer", {"name": "超大编号", "industry": "制造业", "owner": value})
        assert "owner" in exc.value.errors
    with pytest.raises(BulkFailed) as exc:
        tenant.records.create_many("customer", [{"name": "超大编号", "industry": "制造业", "owner": str(huge)}])
    assert [e.field for e in exc.value.row_errors] == ["owner"]
    with pytest.raises(BadRequest):
        tenant.records.list("customer", filters={"owner": str(huge)})
