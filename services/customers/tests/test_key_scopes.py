"""Integration keys get what their scopes name and nothing more: every read is guarded by the
scope of its own endpoint, every part of a composite answer (a section of the full file or the
card, the purchase figures) by the scope of the endpoint that serves the same data, and a key
that only pushes orders finds a customer through the lookup, which tells how to address it
and nothing about it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"


def key(*scopes: str) -> Any:
    return make_principal("integration", kind="key", scopes=scopes)


async def _customer_with_an_order(customers: Any, org: Any) -> tuple[Any, Any]:
    c = await customers.create(
        org.rep_a,
        source="erp",
        external_ref="K-1",
        estimated_potential="10.00",
        contacts=[{"name": "Boss", "is_primary": True}],
    )
    order = await customers.post(
        f"{API}/{c['id']}/orders",
        # A recent order: one older than the settings' dormant_after_days makes it dormant.
        json={"order_date": datetime.now(UTC).date().isoformat(), "amount": "32.50"},
        as_=org.rep_a,
    )
    assert order.status_code == 201, order.text
    return c, order.json()


async def test_a_key_that_pushes_orders_reads_no_customer_data(customers, org):
    c, _ = await _customer_with_an_order(customers, org)
    erp = key("orders:write")
    base = f"{API}/{c['id']}"
    for path in (
        API,
        base,
        f"{base}/card",
        f"{base}/history",
        f"{base}/ownership",
        f"{base}/contacts",
        f"{API}/export",
        f"{API}/data-quality",
        f"{API}/level-proposals",
        f"{API}/settings",
    ):
        resp = await customers.get(path, as_=erp)
        assert resp.status_code == 403, (path, resp.text)
        assert c["name"] not in resp.text
    as_of = await customers.get(base, params={"as_of": "2030-01-01T00:00:00Z"}, as_=erp)
    assert as_of.status_code == 403
    # It pushes orders and reads the orders it pushed.
    pushed = await customers.post(
        f"{base}/orders", json={"order_date": "2026-02-01", "amount": "5.00"}, as_=erp
    )
    assert pushed.status_code == 201, pushed.text
    assert (
        await customers.get(f"/api/v1/orders/{pushed.json()['id']}", as_=erp)
    ).status_code == 200


@pytest.mark.parametrize("how", ["id", "code", "external_ref"])
async def test_the_lookup_resolves_a_customer_by_id_code_or_external_ref_and_no_more(
    customers, org, how
):
    c, _ = await _customer_with_an_order(customers, org)
    params = {
        "id": {"id": c["id"]},
        "code": {"code": c["code"].lower()},
        "external_ref": {"external_ref": "K-1", "source": "erp"},
    }[how]
    resp = await customers.get(f"{API}/lookup", params=params, as_=key("orders:write"))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "id": c["id"],
        "code": c["code"],
        "source": "erp",
        "external_ref": "K-1",
        "status": "active",
        "merged_into_id": None,
    }
    for scopes in (["orders:read"], ["customers:read"], ["customers:write"]):
        assert (
            await customers.get(f"{API}/lookup", params=params, as_=key(*scopes))
        ).status_code == 200
    refused = await customers.get(f"{API}/lookup", params=params, as_=key("leads:write"))
    assert refused.status_code == 403 and "orders:write" in refused.json()["detail"]
    # Users resolve only what they may see.
    assert (await customers.get(f"{API}/lookup", params=params, as_=org.rep_a)).status_code == 200
    assert (await customers.get(f"{API}/lookup", params=params, as_=org.rep_b)).status_code == 404
    south = await customers.get(f"{API}/lookup", params=params, as_=org.manager_south)
    assert south.status_code == 404


async def test_the_lookup_wants_exactly_one_key(customers, org):
    c = await customers.create(org.rep_a, source="erp", external_ref="X")
    erp = key("orders:write")
    for params, fields in (
        ({}, ["id", "code", "external_ref"]),
        ({"id": c["id"], "code": c["code"]}, ["id", "code"]),
        ({"code": c["code"], "source": "erp"}, ["source"]),
    ):
        resp = await customers.get(f"{API}/lookup", params=params, as_=erp)
        assert resp.status_code == 422, resp.text
        assert [e["loc"][-1] for e in resp.json()["errors"]] == fields
    unknown = await customers.get(f"{API}/lookup", params={"code": "NOPE-1"}, as_=erp)
    assert unknown.status_code == 404
    # Without its source, an external_ref names the customer that has none.
    no_source = await customers.get(f"{API}/lookup", params={"external_ref": "X"}, as_=erp)
    assert no_source.status_code == 404


async def test_composite_answers_show_each_part_by_its_own_scope(customers, org):
    c, order = await _customer_with_an_order(customers, org)
    base = f"{API}/{c['id']}"
    reader = key("customers:read")
    # /orders refuses the key...
    assert (await customers.get(f"{base}/orders", as_=reader)).status_code == 403
    assert (await customers.get(f"/api/v1/orders/{order['id']}", as_=reader)).status_code == 403
    # ...so the full file and the card show it no order figure either.
    file = (await customers.get(base, as_=reader)).json()
    assert set(file["sections"]) == {"contacts", "data_quality"}
    assert file["sections"]["contacts"][0]["name"] == "Boss"
    assert file["level_info"]["purchases_12m"] is None
    assert file["level_info"]["proposed_level"] in ("A", "B", "C")
    card = (await customers.get(f"{base}/card", as_=reader)).json()
    assert set(card["sections"]) == {"key_contact"}
    assert "32.50" not in str(file) + str(card)
    proposals = await customers.get(f"{API}/level-proposals", as_=reader)
    assert proposals.status_code == 200
    assert all(p["purchases_12m"] is None for p in proposals.json()["items"])

    both = key("customers:read", "orders:read")
    file = (await customers.get(base, as_=both)).json()
    assert set(file["sections"]) == {"contacts", "orders", "data_quality"}
    assert file["level_info"]["purchases_12m"] == "32.50"
    card = (await customers.get(f"{base}/card", as_=both)).json()
    assert card["sections"]["last_orders"][0]["amount"] == "32.50"
    # People see every part of a customer they may see.
    mine = (await customers.get(base, as_=org.rep_a)).json()
    assert set(mine["sections"]) == {"contacts", "orders", "data_quality", "visits"}
    assert mine["level_info"]["purchases_12m"] == "32.50"


async def test_change_requests_are_not_an_integrations_business(customers, org):
    c = await customers.create(org.rep_a)
    filed = await customers.patch(
        f"{API}/{c['id']}", json={"level": "A"}, as_=org.rep_a, headers={"If-Match": '"1"'}
    )
    assert filed.status_code == 202
    rid = filed.json()["id"]
    admin_key = key("customers:read", "customers:write")
    for method, path in (
        ("GET", f"{API}/change-requests"),
        ("GET", f"{API}/change-requests/{rid}"),
        ("POST", f"{API}/change-requests/{rid}/approve"),
        ("POST", f"{API}/change-requests/{rid}/reject"),
        ("POST", f"{API}/change-requests/{rid}/withdraw"),
    ):
        resp = await customers.request(
            method, path, as_=admin_key, **({"json": {}} if method == "POST" else {})
        )
        assert resp.status_code == 403, (path, resp.text)
