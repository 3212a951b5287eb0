"""Analytics through the real gateway, fed by the real services: a rep's customer, order and
payment go through the customers API and an opportunity is won through the opportunities
API, a visit is logged through the visits API; the analytics service reads their feeds
through the gateway and the rep's dashboard, asked through the gateway, shows them. Who may
ask is decided on the way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import ok, organisation, wait_for

pytestmark = pytest.mark.e2e
PASSWORD = "correct-horse-" + uuid.uuid4().hex[:8]


async def test_a_reps_sales_reach_their_dashboard_through_the_feeds(gw, stack):
    admin_login = (stack.env["BOOTSTRAP_ADMIN_EMAIL"], stack.env["BOOTSTRAP_ADMIN_PASSWORD"])
    org = await organisation(gw, admin_login, PASSWORD)
    h, users, admin = org["h"], org["users"], org["admin"]
    today = datetime.now(UTC).date()
    rep = users["rep_a"]["id"]

    customer = await ok(
        await gw.post(
            "/api/v1/customers",
            json={"name": f"Lotus Trading {uuid.uuid4().hex[:6]}", "region": "east"},
            headers=h["rep_a"],
        ),
        201,
    )
    order = await ok(
        await gw.post(
            f"/api/v1/customers/{customer['id']}/orders",
            json={"order_date": today.isoformat(), "amount": "250.00", "gross_profit": "60.00"},
            headers=h["rep_a"],
        ),
        201,
    )
    await ok(
        await gw.post(
            f"/api/v1/orders/{order['id']}/payments",
            json={"amount": "100.00", "received_on": today.isoformat()},
            headers=h["rep_a"],
        ),
        201,
    )

    async def visited() -> Any:
        # The visits service learns the customer from the customers feed.
        now = datetime.now(UTC)
        resp = await gw.post(
            "/api/v1/visits",
            json={
                "customer_id": customer["id"],
                "channel": "phone",
                "purpose": "order_taking",
                "check_in_at": (now - timedelta(minutes=5)).isoformat(),
                "check_out_at": now.isoformat(),
                "effective": True,
                "order_taken": True,
                "order_amount": "250.00",
            },
            headers=h["rep_a"],
        )
        return resp.json() if resp.status_code == 201 else None

    await wait_for(visited)

    async def opened() -> Any:
        # The opportunities service learns the rep and the customer from their feeds.
        resp = await gw.post(
            "/api/v1/opportunities",
            json={"customer_id": customer["id"], "name": "First deal"},
            headers=h["rep_a"],
        )
        return resp.json() if resp.status_code == 201 else None

    opportunity = await wait_for(opened)
    await ok(
        await gw.post(
            f"/api/v1/opportunities/{opportunity['id']}/stage",
            json={"stage": "won", "amount": "900.00"},
            headers=h["rep_a"],
        )
    )

    params = {"scope": "rep", "scope_id": rep, "period": today.strftime("%Y-%m")}

    async def reflected() -> Any:
        resp = await gw.get("/api/v1/kpis/dashboard", params=params, headers=h["rep_a"])
        if resp.status_code != 200:
            return None
        figures = resp.json()["figures"]
        done = figures["avg_deal_size"]["value"] is not None
        done = done and figures["effective_visit_rate"]["denominator"] == 1
        return figures if done and figures["sales_amount"]["value"] == "250.00" else None

    figures = await wait_for(reflected, within=40)
    assert figures["new_customers"]["value"] == 1
    assert figures["developed_customers"]["value"] == 1
    assert figures["gross_profit"]["value"] == "60.00"
    assert (figures["collection_rate"]["numerator"], figures["collection_rate"]["value"]) == (
        "100.00",
        "0.4000",
    )
    assert figures["avg_deal_size"]["value"] == "900.00"
    # The visit, from the visits feed: effective and took an order.
    assert figures["effective_visit_rate"]["value"] == figures["transaction_rate"]["value"]
    assert figures["transaction_rate"]["value"] == "1.0000"
    assert figures["visits_per_customer"]["value"] == "1.00"
    assert figures["funnel"]["numerator"] == 0  # no lead: the opportunity was opened directly

    # The rep's manager sees the same; another rep does not see it at all.
    as_manager = await gw.get("/api/v1/kpis/dashboard", params=params, headers=h["manager"])
    assert as_manager.status_code == 200 and as_manager.json()["figures"] == figures
    other = await gw.get("/api/v1/kpis/dashboard", params=params, headers=h["rep_b"])
    assert other.status_code == 404
    company = {"scope": "company", "period": params["period"]}
    assert (
        await gw.get("/api/v1/kpis/dashboard", params=company, headers=h["rep_a"])
    ).status_code == 404
    assert (
        await gw.get("/api/v1/kpis/dashboard", params=company, headers=admin)
    ).status_code == 200

    # The analytics service follows the feeds it read all this from.
    async with httpx.AsyncClient(base_url=stack.running["analytics"].url) as direct:
        feeds = (await direct.get("/readyz")).json()["feeds"]
    assert feeds["customers"]["state"] == feeds["opportunities"]["state"] == "following"


async def test_an_incomplete_key_customers_alert_ends_once_its_data_is_filled_in(gw, stack):
    """The customers service scores a record as it changes and announces both edges: the
    A-level customer's thin record raises the alert, the PATCH that fills it in ends it."""
    admin_login = (stack.env["BOOTSTRAP_ADMIN_EMAIL"], stack.env["BOOTSTRAP_ADMIN_PASSWORD"])
    org = await organisation(gw, admin_login, PASSWORD)
    h = org["h"]
    # name 15 + region 10 + phone 15 + fresh 10 = 50, under the rule's floor of 60.
    thin = await ok(
        await gw.post(
            "/api/v1/customers",
            json={
                "name": f"Thin Key {uuid.uuid4().hex[:6]}",
                "region": "east",
                "phone": "13800000001",
                "level": "A",
            },
            headers=h["rep_a"],
        ),
        201,
    )

    async def alert(status: str) -> Any:
        params = {
            "rule": "incomplete_key_customer",
            "customer_id": thin["id"],
            "status": status,
        }
        resp = await gw.get("/api/v1/alerts", params=params, headers=h["rep_a"])
        items = resp.json()["items"] if resp.status_code == 200 else []
        return items[0] if items else None

    raised = await wait_for(lambda: alert("open"), within=40)
    assert (
        raised["figures"]["quality_score"] == 50 and raised["rep_id"] == org["users"]["rep_a"]["id"]
    )
    # Another rep does not see it.
    other = await gw.get(f"/api/v1/alerts/{raised['id']}", headers=h["rep_b"])
    assert other.status_code == 404

    # The missing required fields filled in: 70, complete; the alert resolves itself.
    await ok(
        await gw.patch(
            f"/api/v1/customers/{thin['id']}",
            json={"address": "1 Bund Road", "industry": "Printing"},
            headers={**h["rep_a"], "If-Match": '"1"'},
        )
    )
    resolved = await wait_for(lambda: alert("resolved"), within=40)
    assert resolved["id"] == raised["id"] and resolved["resolved_at"] is not None
    assert await alert("open") is None
