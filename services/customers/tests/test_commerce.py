"""Contacts, orders and payments over real HTTP on a migrated database."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"
ORDERS = "/api/v1/orders"


async def _order(customers, principal, customer_id: str, **fields: Any) -> Any:
    body = {"order_date": "2026-03-01", "amount": "100.00", **fields}
    return await customers.client.post(
        f"{API}/{customer_id}/orders", json=body, headers=customers.headers(principal)
    )


# --- contacts -------------------------------------------------------------------------------


async def test_contacts_crud_with_one_primary(customers, org):
    c = await customers.create(org.rep_a)
    h = customers.headers(org.rep_a)
    url = f"{API}/{c['id']}/contacts"
    first = await customers.client.post(
        url, json={"name": "Li Wei", "title": "CEO", "is_primary": True}, headers=h
    )
    assert first.status_code == 201, first.text
    second = await customers.client.post(
        url,
        json={
            "name": "Wang Fang",
            "email": "wf@example.com",
            "is_decision_maker": True,
            "is_primary": True,
        },
        headers=h,
    )
    assert second.status_code == 201, second.text
    listed = (await customers.client.get(url, headers=h)).json()
    assert [x["name"] for x in listed if x["is_primary"]] == ["Wang Fang"]
    assert {x["name"] for x in listed} == {"Li Wei", "Wang Fang"}

    cid = first.json()["id"]
    patched = await customers.client.patch(
        f"{url}/{cid}", json={"phone": "021-5555", "is_primary": True}, headers=h
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["phone"] == "021-5555"
    listed = (await customers.client.get(url, headers=h)).json()
    assert [x["name"] for x in listed if x["is_primary"]] == ["Li Wei"]

    bad = await customers.client.post(url, json={"name": "", "email": "nope"}, headers=h)
    assert bad.status_code == 422
    assert {e["loc"][-1] for e in bad.json()["errors"]} >= {"name", "email"}

    deleted = await customers.client.delete(f"{url}/{cid}", headers=h)
    assert deleted.status_code == 204
    assert len((await customers.client.get(url, headers=h)).json()) == 1
    gone = await customers.client.delete(f"{url}/{cid}", headers=h)
    assert gone.status_code == 404

    types = [
        e.type
        for e in await customers.events({"contact.created", "contact.updated", "contact.deleted"})
    ]
    assert types.count("contact.created") == 2
    assert "contact.updated" in types and "contact.deleted" in types
    (updated_event,) = await customers.events({"contact.updated"})
    updated = updated_event.data
    assert updated["owner_id"] == org.rep_a.sub and updated["team_id"] == org.team_north
    assert set(updated["changed"]) == {"phone", "is_primary"}


async def test_contacts_given_on_create_are_stored(customers, org):
    c = await customers.create(
        org.rep_a, contacts=[{"name": "Zhao", "is_primary": True}, {"name": "Qian"}]
    )
    listed = (
        await customers.client.get(
            f"{API}/{c['id']}/contacts", headers=customers.headers(org.rep_a)
        )
    ).json()
    assert [x["name"] for x in listed] == ["Zhao", "Qian"]
    card = await customers.client.get(f"{API}/{c['id']}/card", headers=customers.headers(org.rep_a))
    assert card.status_code == 200, card.text
    assert card.json()["sections"]["key_contact"]["name"] == "Zhao"


async def test_other_reps_customer_sub_resources_are_404(customers, org):
    c = await customers.create(org.rep_a)
    await customers.client.post(
        f"{API}/{c['id']}/contacts", json={"name": "X"}, headers=customers.headers(org.rep_a)
    )
    order = (await _order(customers, org.rep_a, c["id"])).json()
    other = customers.headers(org.rep_b)
    for method, url, body in (
        ("GET", f"{API}/{c['id']}/contacts", None),
        ("POST", f"{API}/{c['id']}/contacts", {"name": "Y"}),
        ("GET", f"{API}/{c['id']}/orders", None),
        ("POST", f"{API}/{c['id']}/orders", {"order_date": "2026-01-01", "amount": "1.00"}),
        ("GET", f"{ORDERS}/{order['id']}", None),
        ("GET", f"{ORDERS}/{order['id']}/payments", None),
        (
            "POST",
            f"{ORDERS}/{order['id']}/payments",
            {"amount": "1.00", "received_on": "2026-01-02"},
        ),
    ):
        resp = await customers.client.request(method, url, json=body, headers=other)
        assert resp.status_code == 404, (method, url, resp.text)
        # Exactly what a customer or order that does not exist answers: no hint.
        missing = url.replace(c["id"], str(uuid.uuid4())).replace(order["id"], str(uuid.uuid4()))
        twin = await customers.client.request(method, missing, json=body, headers=other)
        assert twin.status_code == 404 and twin.json()["title"] == resp.json()["title"]
    # The manager of the team sees them; a manager of another team does not.
    mine = await customers.client.get(
        f"{ORDERS}/{order['id']}", headers=customers.headers(org.manager_north)
    )
    assert mine.status_code == 200
    theirs = await customers.client.get(
        f"{ORDERS}/{order['id']}", headers=customers.headers(org.manager_south)
    )
    assert theirs.status_code == 404


# --- orders ---------------------------------------------------------------------------------


async def test_order_with_lines_and_outstanding(customers, org):
    c = await customers.create(org.rep_a)
    resp = await _order(
        customers,
        org.rep_a,
        c["id"],
        amount="250.50",
        gross_profit="80.00",
        due_date="2026-04-01",
        lines=[
            {"product": "Paper A4", "quantity": "10", "unit_price": "20.05"},
            {"product": "Toner", "quantity": "1", "unit_price": "50.00"},
        ],
    )
    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["amount"] == "250.50"
    assert order["paid_amount"] == "0.00" or Decimal(order["paid_amount"]) == 0
    assert order["outstanding_amount"] == "250.50"
    assert order["lines"][0]["product"] == "Paper A4"
    assert resp.headers["location"] == f"{ORDERS}/{order['id']}"
    got = await customers.client.get(
        f"{ORDERS}/{order['id']}", headers=customers.headers(org.rep_a)
    )
    assert got.json()["gross_profit"] == "80.00"


async def test_amount_must_equal_lines_total(customers, org):
    c = await customers.create(org.rep_a)
    resp = await _order(
        customers,
        org.rep_a,
        c["id"],
        amount="99.00",
        lines=[{"product": "Paper", "quantity": "2", "unit_price": "50.00"}],
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["loc"] == ["amount"]
    assert "100.00" in resp.json()["detail"]
    listed = await customers.client.get(
        f"{API}/{c['id']}/orders", headers=customers.headers(org.rep_a)
    )
    assert listed.json()["items"] == []


async def test_same_external_ref_twice_gives_one_order(customers, org):
    c = await customers.create(org.rep_a)
    erp = make_principal("integration", kind="key", scopes=["orders:write"])
    body = {"external_ref": "SO-1001", "source": "erp", "amount": "500.00"}
    first = await _order(customers, erp, c["id"], **body)
    assert first.status_code == 201, first.text
    again = await _order(customers, erp, c["id"], **body)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    # Pushed concurrently, still one.
    pushes = await asyncio.gather(
        *[_order(customers, erp, c["id"], external_ref="SO-2002", source="erp") for _ in range(5)]
    )
    assert sorted(p.status_code for p in pushes) == [200, 200, 200, 200, 201]
    assert len({p.json()["id"] for p in pushes}) == 1
    listed = await customers.client.get(
        f"{API}/{c['id']}/orders", headers=customers.headers(org.rep_a)
    )
    assert len(listed.json()["items"]) == 2
    # The same ref on another customer is a conflict naming the order.
    other = await customers.create(org.rep_b)
    clash = await _order(customers, erp, other["id"], **body)
    assert clash.status_code == 409
    assert clash.json()["existing_id"] == first.json()["id"]
    placed = await customers.events({"order.placed"})
    assert len(placed) == 2


async def test_integration_key_needs_orders_write(customers, org):
    c = await customers.create(org.rep_a)
    reader = make_principal("integration", kind="key", scopes=["customers:read"])
    resp = await _order(customers, reader, c["id"])
    assert resp.status_code == 403
    assert "orders:write" in resp.json()["detail"]
    erp = make_principal("integration", kind="key", scopes=["orders:write"])
    order = (await _order(customers, erp, c["id"])).json()
    pay = await customers.client.post(
        f"{ORDERS}/{order['id']}/payments",
        json={"amount": "10.00", "received_on": "2026-03-02"},
        headers=customers.headers(reader),
    )
    assert pay.status_code == 403


async def test_orders_are_keyset_paged_newest_first(customers, org):
    c = await customers.create(org.rep_a)
    for day in range(1, 8):
        r = await _order(customers, org.rep_a, c["id"], order_date=f"2026-01-0{day}")
        assert r.status_code == 201
    h = customers.headers(org.rep_a)
    page1 = (await customers.client.get(f"{API}/{c['id']}/orders?limit=3", headers=h)).json()
    page2 = (
        await customers.client.get(
            f"{API}/{c['id']}/orders",
            params={"limit": 3, "cursor": page1["next_cursor"]},
            headers=h,
        )
    ).json()
    dates = [o["order_date"] for o in page1["items"] + page2["items"]]
    assert dates == [
        "2026-01-07",
        "2026-01-06",
        "2026-01-05",
        "2026-01-04",
        "2026-01-03",
        "2026-01-02",
    ]


# --- payments -------------------------------------------------------------------------------


async def test_payments_and_overpayment(customers, org):
    c = await customers.create(org.rep_a)
    order = (await _order(customers, org.rep_a, c["id"], amount="100.00")).json()
    h = customers.headers(org.rep_a)
    url = f"{ORDERS}/{order['id']}/payments"
    paid = await customers.client.post(
        url, json={"amount": "60.00", "received_on": "2026-03-05", "method": "transfer"}, headers=h
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["order"]["outstanding_amount"] == "40.00"
    over = await customers.client.post(
        url, json={"amount": "40.01", "received_on": "2026-03-06"}, headers=h
    )
    assert over.status_code == 422
    assert over.json()["errors"][0]["loc"] == ["amount"]
    assert "40.00" in over.json()["detail"]
    rest = await customers.client.post(
        url,
        json={"amount": "40.00", "received_on": "2026-03-06", "external_ref": "BANK-9"},
        headers=h,
    )
    assert rest.status_code == 201
    retried = await customers.client.post(
        url,
        json={"amount": "40.00", "received_on": "2026-03-06", "external_ref": "BANK-9"},
        headers=h,
    )
    assert retried.status_code == 200 and retried.json()["id"] == rest.json()["id"]
    got = (await customers.client.get(f"{ORDERS}/{order['id']}", headers=h)).json()
    assert (got["paid_amount"], got["outstanding_amount"]) == ("100.00", "0.00")
    payments = (await customers.client.get(url, headers=h)).json()
    assert [p["amount"] for p in payments] == ["60.00", "40.00"]


async def test_concurrent_payments_cannot_overpay(customers, org):
    c = await customers.create(org.rep_a)
    order = (await _order(customers, org.rep_a, c["id"], amount="100.00")).json()
    h = customers.headers(org.rep_a)
    url = f"{ORDERS}/{order['id']}/payments"
    results = await asyncio.gather(
        *[
            customers.client.post(
                url, json={"amount": "30.00", "received_on": "2026-03-05"}, headers=h
            )
            for _ in range(8)
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 201, 201, 422, 422, 422, 422, 422], [r.text for r in results]
    got = (await customers.client.get(f"{ORDERS}/{order['id']}", headers=h)).json()
    assert got["paid_amount"] == "90.00"


async def test_order_and_payment_events_carry_context(customers, org):
    c = await customers.create(org.rep_a, level="B", region="west")
    order = (
        await _order(
            customers,
            org.rep_a,
            c["id"],
            amount="300.00",
            gross_profit="90.00",
            order_date="2026-02-10",
            due_date="2026-03-10",
        )
    ).json()
    await customers.client.post(
        f"{ORDERS}/{order['id']}/payments",
        json={"amount": "120.00", "received_on": "2026-02-20", "method": "cash"},
        headers=customers.headers(org.rep_a),
    )
    (placed,) = await customers.events({"order.placed"})
    assert placed.subject == order["id"]
    d = placed.data
    assert d["customer_id"] == c["id"] and d["customer_code"] == c["code"]
    assert (d["owner_id"], d["team_id"], d["region"], d["level"]) == (
        org.rep_a.sub,
        org.team_north,
        "WEST",
        "B",
    )
    assert (d["amount"], d["gross_profit"], d["order_date"], d["due_date"]) == (
        "300.00",
        "90.00",
        "2026-02-10",
        "2026-03-10",
    )
    (received,) = await customers.events({"payment.received"})
    r = received.data
    assert (r["order_id"], r["amount"], r["received_on"], r["method"]) == (
        order["id"],
        "120.00",
        "2026-02-20",
        "cash",
    )
    assert (r["outstanding_amount"], r["order_amount"], r["owner_id"]) == (
        "180.00",
        "300.00",
        org.rep_a.sub,
    )


async def test_full_file_shows_order_summary(customers, org):
    c = await customers.create(org.rep_a)
    await _order(customers, org.rep_a, c["id"], amount="100.00", order_date="2020-01-01")
    from datetime import date

    today = date.today().isoformat()
    await _order(customers, org.rep_a, c["id"], amount="250.00", order_date=today)
    file = await customers.client.get(f"{API}/{c['id']}", headers=customers.headers(org.rep_a))
    assert file.status_code == 200, file.text
    summary = file.json()["sections"]["orders"]["summary"]
    assert summary["count"] == 2
    assert Decimal(summary["total"]) == Decimal("350.00")
    assert Decimal(summary["trailing_12m_amount"]) == Decimal("250.00")
    assert summary["last_order_date"] == today


async def test_full_file_lists_only_its_own_recent_orders(customers, org):
    mine = await customers.create(org.rep_a)
    other = await customers.create(org.rep_b)
    await _order(customers, org.rep_a, mine["id"], amount="10.00", order_date="2020-01-01")
    await _order(customers, org.rep_b, other["id"], amount="20.00", order_date="2021-01-01")
    file = await customers.client.get(f"{API}/{mine['id']}", headers=customers.headers(org.rep_a))
    assert file.status_code == 200, file.text
    recent = file.json()["sections"]["orders"]["recent"]
    assert [(o["customer_id"], o["amount"]) for o in recent] == [(mine["id"], "10.00")]


async def test_unknown_ids_are_404(customers, org):
    h = customers.headers(org.admin)
    missing = uuid.uuid4()
    assert (await customers.client.get(f"{ORDERS}/{missing}", headers=h)).status_code == 404
    assert (await customers.client.get(f"{API}/{missing}/orders", headers=h)).status_code == 404
    assert (await customers.client.get(f"{ORDERS}/not-a-uuid", headers=h)).status_code == 404


async def test_commerce_sections_of_the_file_and_card_and_the_trailing_purchases(customers, org):
    from datetime import date, timedelta

    c = await customers.create(
        org.rep_a, contacts=[{"name": "First"}, {"name": "Boss", "is_decision_maker": True}]
    )
    other = await customers.create(org.rep_a)
    today = date.today()
    for day, amount in ((today - timedelta(days=400), "10.00"), (today, "32.50")):
        r = await _order(customers, org.rep_a, c["id"], order_date=day.isoformat(), amount=amount)
        assert r.status_code == 201
    h = customers.headers(org.rep_a)
    file = (await customers.client.get(f"{API}/{c['id']}", headers=h)).json()
    assert file["sections"]["orders"]["summary"] == {
        "count": 2,
        "total": "42.50",
        "last_order_date": today.isoformat(),
        "trailing_12m_amount": "32.50",
    }
    assert file["level_info"]["purchases_12m"] == "32.50"
    card = (await customers.client.get(f"{API}/{c['id']}/card", headers=h)).json()
    # No primary contact: the decision maker is the key contact.
    assert card["sections"]["key_contact"]["name"] == "Boss"
    assert [o["amount"] for o in card["sections"]["last_orders"]] == ["32.50", "10.00"]
    empty = (await customers.client.get(f"{API}/{other['id']}", headers=h)).json()
    assert empty["sections"]["orders"]["summary"]["count"] == 0
    assert empty["sections"]["orders"]["summary"]["last_order_date"] is None
    assert empty["level_info"]["purchases_12m"] == "0"
    empty_card = (await customers.client.get(f"{API}/{other['id']}/card", headers=h)).json()
    assert set(empty_card["sections"]) == {"key_contact", "last_orders", "visits"}
    assert empty_card["sections"]["key_contact"] is None
    assert empty_card["sections"]["last_orders"] == []
