"""`formwork demo` fills every entity of the sample tenant with records that pass every rule."""
from __future__ import annotations

from engine.demo.generate import entity_order, generate_demo
from engine.schema.migrate import migrate
from engine.tenant import Tenant
from tests.conftest import ROOT


def test_demo_fills_every_entity_of_the_sample_tenant(db_url):
    tenant = Tenant.load(ROOT / "sample_tenant.yaml", db_url=db_url)
    migrate(tenant)
    counts = generate_demo(tenant, size=8, seed=42)
    assert counts.pop("users") >= 1  # colleagues to own records and fill user fields
    assert counts == {e.name: 8 for e in entity_order(tenant.model)}
    quote = tenant.records.list("quote", limit=1).items[0]
    assert quote["lines"] and quote["subtotal"] == sum(line["line_total"] for line in quote["lines"])
    follow_up = tenant.records.list("follow_up", limit=1).items[0]
    assert follow_up["next_contact_at"] is not None  # R15


def test_entity_order_puts_referenced_entities_first():
    tenant = Tenant.load(ROOT / "sample_tenant.yaml", db_url="sqlite://")
    order = [e.name for e in entity_order(tenant.model)]
    assert order.index("customer") < order.index("contact") < order.index("follow_up")
    assert order.index("product") < order.index("quote")
