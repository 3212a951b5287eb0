"""Orders cancelled and amended, payments reversed, and the orders list across customers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"
ORDERS = "/api/v1/orders"
PAYMENTS = "/api/v1/payments"


async def _order(customers, principal, customer_id: str, **fields: Any) -> dict[str, Any]:
    body = {"order_date": "2026-03-01", "amount": "100.00", **fields}
    resp = await customers.post(f"{API}/{customer_id}/orders", json=body, as_=principal)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_a_paid_order_is_cancelled_only_after_its_payment_is_reversed(customers, org, clock):
    c = await customers.create(org.rep_a)
    today = clock.now().date()
    order = await _order(customers, org.rep_a, c["id"], order_date=today.isoformat())
    paid = await customers.post(
        f"{ORDERS}/{order['id']}/payments",
        json={"amount": "60.00", "received_on": today.isoformat()},
        as_=org.rep_a,
    )
    assert paid.status_code == 201, paid.text
    payment = paid.json()
    cancel = f"{ORDERS}/{order['id']}/cancel"

    refused = await customers.post(cancel, json={"reason": "duplicate entry"}, as_=org.rep_a)
    assert refused.status_code == 409
    assert "reverse" in refused.json()["detail"] and refused.json()["paid_amount"] == "60.00"
    # Someone else's rep does not see the payment; a reason is required.
    reverse = f"{PAYMENTS}/{payment['id']}/reverse"
    assert (await customers.post(reverse, json={"reason": "x"}, as_=org.rep_b)).status_code == 404
    assert (await customers.post(reverse, json={}, as_=org.rep_a)).status_code == 422

    reversed_ = await customers.post(reverse, json={"reason": "bounced transfer"}, as_=org.rep_a)
    assert reversed_.status_code == 200, reversed_.text
    body = reversed_.json()
    assert body["reverse_reason"] == "bounced transfer" and body["reversed_at"]
    assert (
        body["order"]["paid_amount"] == "0.00" and body["order"]["outstanding_amount"] == "100.00"
    )
    again = await customers.post(reverse, json={"reason": "twice"}, as_=org.rep_a)
    assert again.status_code == 409

    h = {"Idempotency-Key": "cancel-1"}
    cancelled = await customers.post(
        cancel, json={"reason": "duplicate entry"}, headers=h, as_=org.rep_a
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "duplicate entry"
    replayed = await customers.post(
        cancel, json={"reason": "duplicate entry"}, headers=h, as_=org.rep_a
    )
    assert replayed.headers["idempotent-replayed"] == "true"
    assert (
        await customers.post(cancel, json={"reason": "again"}, as_=org.rep_a)
    ).status_code == 409
    # Nothing is paid on a cancelled order, and it counts nowhere.
    late = await customers.post(
        f"{ORDERS}/{order['id']}/payments",
        json={"amount": "1.00", "received_on": today.isoformat()},
        as_=org.rep_a,
    )
    assert late.status_code == 409
    file = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()
    summary = file["sections"]["orders"]["summary"]
    assert (summary["count"], summary["total"], summary["paid_total"]) == (0, "0.00", "0.00")
    assert file["sections"]["orders"]["recent"][0]["status"] == "cancelled"
    assert file["last_order_date"] is None

    # The events carry the corrections: what was paid and taken back, what was cancelled.
    (rev,) = await customers.events({"payment.reversed"})
    assert (rev.data["amount"], rev.data["paid_amount"], rev.data["reason"]) == (
        "60.00",
        "0.00",
        "bounced transfer",
    )
    assert rev.data["order_id"] == order["id"] and rev.data["owner_id"] == org.rep_a.sub
    assert rev.data["occurred_at"]
    (gone,) = await customers.events({"order.cancelled"})
    assert (gone.data["amount"], gone.data["order_date"], gone.data["reason"]) == (
        "100.00",
        today.isoformat(),
        "duplicate entry",
    )
    assert gone.data["order_status"] == "cancelled" and gone.data["region"] == "EAST"


async def test_an_unpaid_order_is_amended_with_if_match(customers, org):
    await customers.product(org.admin, "A", name="Item A")
    c = await customers.create(org.rep_a)
    order = await _order(
        customers,
        org.rep_a,
        c["id"],
        amount="20.00",
        lines=[{"sku": "A", "quantity": "2", "unit_price": "10.00"}],
    )
    url = f"{ORDERS}/{order['id']}"
    got = await customers.get(url, as_=org.rep_a)
    assert got.headers["etag"] == '"1"'
    change = {"lines": [{"sku": "A", "quantity": "3", "unit_price": "10.00"}], "reason": "one more"}
    assert (await customers.patch(url, json=change, as_=org.rep_a)).status_code == 428
    stale = await customers.patch(url, json=change, headers={"If-Match": '"5"'}, as_=org.rep_a)
    assert stale.status_code == 412
    other = await customers.patch(url, json=change, headers={"If-Match": '"1"'}, as_=org.rep_b)
    assert other.status_code == 404
    wrong = await customers.patch(
        url, json={"amount": "99.00"}, headers={"If-Match": '"1"'}, as_=org.rep_a
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["loc"] == ["amount"]
    unknown = await customers.patch(
        url,
        json={"lines": [{"sku": "ZZ", "quantity": "1", "unit_price": "1.00"}]},
        headers={"If-Match": '"1"'},
        as_=org.rep_a,
    )
    assert unknown.status_code == 422

    amended = await customers.patch(url, json=change, headers={"If-Match": '"1"'}, as_=org.rep_a)
    assert amended.status_code == 200, amended.text
    assert amended.headers["etag"] == '"2"'
    assert amended.json()["amount"] == "30.00" and amended.json()["lines"][0]["quantity"] == "3"
    (event,) = await customers.events({"order.amended"})
    assert event.data["changed_fields"] == ["amount", "lines"]
    assert event.data["changes"]["amount"] == {"old": "20.00", "new": "30.00"}
    assert event.data["reason"] == "one more" and event.data["amount"] == "30.00"

    await customers.post(
        f"{url}/payments", json={"amount": "5.00", "received_on": "2026-03-02"}, as_=org.rep_a
    )
    paid = await customers.patch(
        url, json={"due_date": "2026-05-01"}, headers={"If-Match": '"2"'}, as_=org.rep_a
    )
    assert paid.status_code == 409


async def test_the_orders_list_spans_the_customers_the_caller_sees(customers, org, clock):
    today = clock.now().date()
    mine = await customers.create(org.rep_a)
    also_mine = await customers.create(org.rep_a)
    theirs = await customers.create(org.rep_south)
    o1 = await _order(
        customers, org.rep_a, mine["id"], order_date=(today - timedelta(days=40)).isoformat()
    )
    o2 = await _order(customers, org.rep_a, also_mine["id"], order_date=today.isoformat())
    o3 = await _order(customers, org.rep_south, theirs["id"], order_date=today.isoformat())
    await customers.post(
        f"{ORDERS}/{o2['id']}/payments",
        json={"amount": "100.00", "received_on": today.isoformat()},
        as_=org.rep_a,
    )

    async def ids(principal, **params: str) -> list[str]:
        resp = await customers.get(ORDERS, params=params, as_=principal)
        assert resp.status_code == 200, resp.text
        return [o["id"] for o in resp.json()["items"]]

    assert await ids(org.rep_a) == [o2["id"], o1["id"]]
    assert await ids(org.manager_north) == [o2["id"], o1["id"]]
    assert set(await ids(org.admin)) == {o1["id"], o2["id"], o3["id"]}
    assert await ids(org.rep_a, status="outstanding") == [o1["id"]]
    assert await ids(org.rep_a, status="paid") == [o2["id"]]
    assert await ids(org.rep_a, customer_id=mine["id"]) == [o1["id"]]
    assert await ids(org.rep_a, customer_id=theirs["id"]) == []
    week = (today - timedelta(days=7)).isoformat()
    assert await ids(org.rep_a, **{"from": week}) == [o2["id"]]
    assert await ids(org.rep_a, to=week) == [o1["id"]]
    listed = (await customers.get(ORDERS, params={"limit": "1"}, as_=org.rep_a)).json()
    assert listed["items"][0]["paid_amount"] == "100.00" and listed["next_cursor"]
    assert listed["items"][0]["outstanding_amount"] == "0.00"
    page2 = await customers.get(
        ORDERS, params={"limit": "1", "cursor": listed["next_cursor"]}, as_=org.rep_a
    )
    assert [o["id"] for o in page2.json()["items"]] == [o1["id"]]

    erp = make_principal("integration", kind="key", scopes=["orders:read"])
    assert len(await ids(erp)) == 3
    nosy = make_principal("integration", kind="key", scopes=["leads:write"])
    assert (await customers.get(ORDERS, as_=nosy)).status_code == 403
    bad = await customers.get(
        ORDERS, params={"from": "2026-02-01", "to": "2026-01-01"}, as_=org.admin
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["to"]
    bad = await customers.get(ORDERS, params={"status": "lost"}, as_=org.admin)
    assert bad.status_code == 422
