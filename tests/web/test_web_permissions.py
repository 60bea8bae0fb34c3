"""Pages follow the engine's permission layer (R3, R40): no buttons for what the engine would refuse."""
from __future__ import annotations

import pytest


@pytest.fixture
def viewer(app, tenant, h):
    tenant.users.add("kan.kan", ["viewer"], password="viewer-pass-1")
    tenant.users.change_password("kan.kan", "viewer-pass-1", "viewer-pass-2")
    client = app.test_client()
    h.login(client, "kan.kan", "viewer-pass-2")
    return client


@pytest.fixture
def customer_id(tenant, ready_user):
    return tenant.records.create("customer", {"name": "只读可见公司", "industry": "金融业", "revenue": "500000"},
                                 ready_user)["id"]


def test_r3_viewer_sees_only_readable_entities_and_no_write_buttons(viewer, customer_id):
    home = viewer.get("/").get_data(as_text=True)
    assert 'href="/e/customer/"' in home and 'href="/e/product/"' not in home
    assert "新建客户" not in home                                   # no create right, no quick action
    listing = viewer.get("/e/customer/").get_data(as_text=True)
    assert "只读可见公司" in listing and 'href="/e/customer/new"' not in listing
    detail = viewer.get(f"/e/customer/{customer_id}").get_data(as_text=True)
    assert "/edit" not in detail and "/delete" not in detail


def test_r3_forbidden_pages_are_403_not_500(viewer, customer_id):
    assert viewer.get("/e/customer/new").status_code == 403
    assert viewer.get(f"/e/customer/{customer_id}/edit").status_code == 403
    assert viewer.get(f"/e/customer/{customer_id}/delete").status_code == 403
    resp = viewer.get("/e/product/")
    assert resp.status_code == 403 and "没有权限" in resp.get_data(as_text=True)


def test_r40_hidden_field_is_not_shown_anywhere(viewer, signed_in, customer_id):
    for client, shown in ((signed_in, True), (viewer, False)):
        detail = client.get(f"/e/customer/{customer_id}").get_data(as_text=True)
        listing = client.get("/e/customer/").get_data(as_text=True)
        assert ("年营收" in detail) is shown and ("500,000" in detail) is shown
        assert ("年营收" in listing) is shown
