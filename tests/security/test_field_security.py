"""Field-level security (R40) beyond the sample tenant: hidden-ness runs through formulas of formulas,
subtables and reference paths, and every read path built on field access follows it.

The permission matrix (tests/web/test_permission_matrix.py) proves each read path on the sample
tenant; these tests use the small web tenant with formulas the sample does not have.
"""
from __future__ import annotations

import pytest
import yaml

from engine.errors import BadRequest

# A clerk reads customers and quotes but neither revenue nor quote lines (hence prices).
CLERK = {"label": {"zh": "文员", "en": "Clerk"},
         "entities": {"customer": {"read": "all"}, "quote": {"read": "all"}, "product": {"read": "all"}},
         "fields": {"customer.revenue": "hidden", "quote.lines": "hidden"}}
# An editor keeps customers tidy (and may clean up duplicates) without seeing their phone numbers.
EDITOR = {"label": "Editor", "entities": {"customer": {"read": "all", "update": "all"}},
          "fields": {"customer.phone": "hidden"}}
FORMULAS = {
    "customer": {"revenue_k": {"type": "formula", "label": "Revenue (k)", "returns": "decimal",
                               "expr": "revenue / 1000"},
                 "big": {"type": "formula", "label": "Big", "returns": "boolean", "expr": "revenue_k > 100"}},
    "quote": {"customer_revenue": {"type": "formula", "label": "Customer revenue", "returns": "money",
                                   "expr": "customer.revenue"},
              "customer_score": {"type": "formula", "label": "Customer score", "returns": "integer",
                                 "expr": "customer.score"}},
}


@pytest.fixture
def shop(db_url, tmp_path, h):
    config = yaml.safe_load(h.CRM.read_text(encoding="utf-8"))
    config["roles"]["clerk"] = CLERK
    config["roles"]["editor"] = EDITOR
    config["entities"]["customer"]["duplicates"] = [{"field": "phone", "match": "exact"}]
    for entity, fields in FORMULAS.items():
        config["entities"][entity]["fields"].update(fields)
    t = h.make_tenant(db_url, tmp_path, yaml.safe_dump(config, allow_unicode=True))
    t.users.add("clerk", ["clerk"], password="initial-pass-1")
    t.users.add("seller", ["sales"], password="initial-pass-1")
    t.users.add("editor", ["editor"], password="initial-pass-1")
    product = t.records.create("product", {"name": "Widget", "price": "10"})
    customer = t.records.create("customer", {"name": "Big Co", "industry": "制造业", "revenue": "250000",
                                             "rating": 4})
    t.records.create("quote", {"customer": customer["id"],
                               "lines": [{"product": product["id"], "quantity": 3, "unit_price": "777.5"}]})
    yield t
    t.dispose()


def test_security_hidden_ness_runs_through_formulas_subtables_and_paths(shop):
    perms = shop.records.permissions
    clerk, seller = shop.users.by_username("clerk"), shop.users.by_username("seller")
    customer, quote = shop.model.entity("customer"), shop.model.entity("quote")
    seen = perms.visible_fields(customer, clerk)
    assert not {"revenue", "revenue_k", "big"} & seen and {"score", "rating"} <= seen   # a chain; a control
    seen = perms.visible_fields(quote, clerk)
    assert not {"lines", "total", "customer_revenue"} & seen and "customer_score" in seen
    assert {"revenue", "revenue_k", "big"} <= perms.visible_fields(customer, seller)
    assert {"total", "customer_revenue"} <= perms.visible_fields(quote, seller)


def test_security_derived_fields_leave_every_read_of_the_clerk(shop):
    clerk = shop.users.by_username("clerk")
    rec = shop.records.list("quote", clerk).items[0]
    assert not {"lines", "total", "customer_revenue"} & set(rec) and rec["customer_score"] == 80
    cust = shop.records.get("customer", rec["customer"], clerk)
    assert not {"revenue", "revenue_k", "big"} & set(cust)
    for entity, rid, secret in (("customer", cust["id"], {"revenue", "revenue_k", "big"}),
                                ("quote", rec["id"], {"lines", "total", "customer_revenue"})):
        history = shop.records.history(entity, rid, clerk)
        assert history and not any(secret & set(h["changes"]) for h in history)
        assert "250000" not in str(history) and "2332.5" not in str(history)
    assert "total" not in shop.records.preview("quote", {"customer": cust["id"]}, clerk)


@pytest.mark.parametrize("entity, name", [("customer", "revenue_k"), ("customer", "big"),
                                          ("quote", "total"), ("quote", "customer_revenue")])
def test_security_a_derived_field_is_refused_like_an_unknown_one(shop, entity, name):
    clerk = shop.users.by_username("clerk")
    for key in (name, f"{name}__contains", f"{name}__between", f"{name}__empty"):
        with pytest.raises(BadRequest) as hidden:
            shop.records.list(entity, clerk, filters={key: "1"})
        with pytest.raises(BadRequest) as unknown:
            shop.records.list(entity, clerk, filters={key.replace(name, "no_such"): "1"})
        assert str(hidden.value) == str(unknown.value).replace("no_such", name)
    for sort in (name, f"-{name}"):
        with pytest.raises(BadRequest) as hidden:
            shop.records.list(entity, clerk, sort=sort)
        with pytest.raises(BadRequest) as unknown:
            shop.records.list(entity, clerk, sort=sort.replace(name, "no_such"))
        assert str(hidden.value) == str(unknown.value).replace("no_such", name)


def test_security_boolean_filters_answer_and_refuse_ranges_instead_of_crashing(shop):
    """Who may see a boolean (formula) gets it filtered, and a clear 400 for a range on it, not a 500."""
    seller = shop.users.by_username("seller")
    with pytest.raises(BadRequest, match="operator 'between' is not allowed on formula field 'big'"):
        shop.records.list("customer", seller, filters={"big__between": "0,1"})
    assert [r["name"] for r in shop.records.list("customer", seller, filters={"big": "true"}).items] == ["Big Co"]
    assert shop.records.list("customer", seller, filters={"listed": "true"}).items == []


def test_security_duplicate_scan_does_not_group_by_a_hidden_field(shop):
    """Two customers sharing a phone number form a cluster for who sees phones, not for the editor
    (the cluster would tell them the hidden numbers are alike)."""
    from engine.dedup.scan import scan

    for name in ("Twin A", "Twin B"):
        shop.records.create("customer", {"name": name, "industry": "制造业", "phone": "021-55501234"},
                            confirm_duplicates=True)
    seller, editor = shop.users.by_username("seller"), shop.users.by_username("editor")
    assert [sorted(c.titles.values()) for c in scan(shop, "customer", seller)] == [["Twin A", "Twin B"]]
    assert scan(shop, "customer", editor) == []


def test_security_stage_history_of_a_hidden_stage_field_is_hidden(db_url, tmp_path, h):
    """Who may not see a record's stage does not see when it moved either (the stage history)."""
    config = yaml.safe_load(h.CRM.read_text(encoding="utf-8"))
    config["entities"]["deal"] = {"label": "Deal", "title": "name", "fields": {
        "name": {"type": "text", "label": "Name", "required": True}, "amount": {"type": "money", "label": "Amount"}}}
    config["pipelines"] = {"deals": {"label": "Deals", "entity": "deal", "field": "stage", "amount": "amount",
                                     "stages": [{"name": "new", "probability": 10}, {"name": "offer", "probability": 50}]}}
    config["roles"]["watcher"] = {"label": "Watcher", "entities": {"deal": {"read": "all"}},
                                  "fields": {"deal.stage": "hidden"}}
    config["roles"]["sales"]["entities"]["deal"] = {"read": "all", "create": True, "update": "all"}
    t = h.make_tenant(db_url, tmp_path, yaml.safe_dump(config, allow_unicode=True))
    try:
        t.users.add("watcher", ["watcher"], password="initial-pass-1")
        t.users.add("seller", ["sales"], password="initial-pass-1")
        deal = t.records.create("deal", {"name": "Big deal", "amount": "5000", "stage": "new"})
        t.records.update("deal", deal["id"], {"stage": "offer"})
        seller, watcher = t.users.by_username("seller"), t.users.by_username("watcher")
        assert [e["stage"] for e in t.pipelines.history("deal", deal["id"], seller)] == ["new", "offer"]
        assert t.pipelines.history("deal", deal["id"], watcher) == []
        assert [e["action"] for e in t.records.history("deal", deal["id"], watcher)] == ["create"]
    finally:
        t.dispose()
