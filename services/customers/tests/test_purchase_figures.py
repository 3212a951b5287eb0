"""A customer's purchase figures on the full file and the card, from a known order history."""

from __future__ import annotations

from datetime import timedelta

API = "/api/v1/customers"


async def test_repeat_purchase_reorder_interval_and_collections_of_a_known_history(
    customers, org, clock
):
    c = await customers.create(org.rep_a)
    today = clock.now().date()
    # Order days 400, 100, 70, 40 and 10 days ago (two orders on day 40): gaps of 300, 30,
    # 30 and 30 days, median 30. The first order is outside the 12 months.
    history = [
        (400, "1000.00", "200.00"),
        (100, "200.00", "50.00"),
        (70, "300.00", None),
        (40, "100.00", "10.00"),
        (40, "50.00", None),
        (10, "350.00", "70.00"),
    ]
    ids = []
    for days, amount, profit in history:
        body = {"order_date": (today - timedelta(days=days)).isoformat(), "amount": amount}
        if profit:
            body["gross_profit"] = profit
        resp = await customers.post(f"{API}/{c['id']}/orders", json=body, as_=org.rep_a)
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    for order_id, amount in ((ids[1], "200.00"), (ids[5], "100.00")):
        paid = await customers.post(
            f"/api/v1/orders/{order_id}/payments",
            json={"amount": amount, "received_on": today.isoformat()},
            as_=org.rep_a,
        )
        assert paid.status_code == 201, paid.text

    file = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()
    summary = file["sections"]["orders"]["summary"]
    assert summary == {
        "count": 6,
        "total": "2000.00",
        "lifetime_value": "2000.00",
        "lifetime_gross_profit": "330.00",
        "paid_total": "300.00",
        "outstanding_total": "1700.00",
        "first_order_date": (today - timedelta(days=400)).isoformat(),
        "last_order_date": (today - timedelta(days=10)).isoformat(),
        "days_since_last_order": 10,
        "trailing_12m_amount": "1000.00",
        # Every order after the first is a repeat; all of the trailing amount came from them.
        "repeat_orders": 5,
        "repeat_share_12m": "1.0000",
        "usual_reorder_interval_days": 30.0,
    }
    assert file["last_order_date"] == summary["last_order_date"]
    card = (await customers.get(f"{API}/{c['id']}/card", as_=org.rep_a)).json()
    assert card["sections"]["purchases"] == {
        "last_order_date": summary["last_order_date"],
        "days_since_last_order": 10,
        "outstanding_total": "1700.00",
    }
    # Ten days on, the rhythm shows on the record itself.
    clock.advance(days=10)
    later = (await customers.get(f"{API}/{c['id']}/card", as_=org.rep_a)).json()
    assert later["sections"]["purchases"]["days_since_last_order"] == 20


async def test_a_new_customers_first_orders_are_not_yet_a_rhythm(customers, org, clock):
    c = await customers.create(org.rep_a)
    today = clock.now().date()
    for days in (20, 5):
        await customers.post(
            f"{API}/{c['id']}/orders",
            json={"order_date": (today - timedelta(days=days)).isoformat(), "amount": "40.00"},
            as_=org.rep_a,
        )
    summary = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()["sections"]["orders"][
        "summary"
    ]
    # Two orders: one gap is no usual interval yet. Half of the year's amount is a repeat.
    assert summary["usual_reorder_interval_days"] is None
    assert (summary["repeat_orders"], summary["repeat_share_12m"]) == (1, "0.5000")
