"""The closed loop: the next visit plan suggests a rep's customers with their reasons (a live
alert, an opportunity's due next action, the visits service's follow-up list) and the ids that
link back, and its plan body is created as is by the visits service.

The whole stack runs for the loop (the follow-up list is the visits service's, asked through
the gateway on the caller's behalf); who may ask and what bad input gets are checked on the
analytics service alone, as they are decided before any call.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import ok, organisation, wait_for
from servicekit.testing.tokens import make_principal

PLAN = "/api/v1/reports/next-plan"
PASSWORD = "next-plan-" + uuid.uuid4().hex[:8]


async def test_who_may_ask_and_bad_input(analytics, org):
    today = datetime.now(UTC).date().isoformat()
    for params, field in (
        ({"rep_id": org.rep_a.sub, "date": "2026-13-01"}, "date"),
        ({"rep_id": org.rep_a.sub, "date": "1700000000"}, "date"),
        # Found by schemathesis: a day the visits service refuses was a 502.
        ({"rep_id": org.rep_a.sub, "date": "0413-11-30"}, "date"),
        ({"rep_id": org.rep_a.sub, "date": "2100-01-01"}, "date"),
        ({"rep_id": "nobody", "date": today}, "rep_id"),
        ({"rep_id": org.rep_a.sub, "date": today, "limit": "51"}, "limit"),
        ({"rep_id": org.rep_a.sub}, "date"),
    ):
        resp = await analytics.get(PLAN, params=params, as_=org.rep_a)
        assert resp.status_code == 422, params
        assert resp.headers["content-type"] == "application/problem+json"
        assert field in resp.text
    mine = {"rep_id": org.rep_a.sub, "date": today}
    # Another rep, a manager of another team: nothing to know of (404); a key: people only.
    for who in (org.rep_b, org.manager_south):
        assert (await analytics.get(PLAN, params=mine, as_=who)).status_code == 404
    key = make_principal("integration", kind="key", scopes=["kpis:read"])
    assert (await analytics.get(PLAN, params=mine, as_=key)).status_code == 403


@pytest.mark.e2e
async def test_the_next_plan_names_its_reasons_and_becomes_a_plan_in_one_call(stack):
    async with httpx.AsyncClient(base_url=stack.running["gateway"].url, timeout=30) as gw:
        admin_login = (stack.env["BOOTSTRAP_ADMIN_EMAIL"], stack.env["BOOTSTRAP_ADMIN_PASSWORD"])
        org = await organisation(gw, admin_login, PASSWORD)
        h, rep = org["h"], org["users"]["rep_a"]["id"]
        today = datetime.now(UTC).date()
        tomorrow = today + timedelta(days=1)
        tag = uuid.uuid4().hex[:6]

        async def customer(name: str) -> dict[str, Any]:
            body = {"name": f"{name} {tag}", "region": "east", "owner_id": rep}
            made: dict[str, Any] = await ok(
                await gw.post(
                    "/api/v1/customers",
                    json=body,
                    params={"confirm_duplicates": "true"},
                    headers=org["admin"],
                ),
                201,
            )
            return made

        churning, dealing, due = (
            await customer("Churning"),
            await customer("Dealing"),
            await customer("Due"),
        )
        # A monthly rhythm that stopped 70 days ago: churn risk, raised as the orders arrive.
        for days in (130, 100, 70):
            day = (today - timedelta(days=days)).isoformat()
            await ok(
                await gw.post(
                    f"/api/v1/customers/{churning['id']}/orders",
                    json={"order_date": day, "amount": "100.00"},
                    headers=h["rep_a"],
                ),
                201,
            )

        async def opened() -> Any:
            resp = await gw.post(
                "/api/v1/opportunities",
                json={
                    "customer_id": dealing["id"],
                    "name": "Second line",
                    "next_action": "Send the quote",
                    "next_action_on": today.isoformat(),
                },
                headers=h["rep_a"],
            )
            return resp.json() if resp.status_code == 201 else None

        deal = await wait_for(opened)
        params = {"rep_id": rep, "date": tomorrow.isoformat(), "limit": "50"}

        async def suggested() -> Any:
            resp = await gw.get(PLAN, params=params, headers=h["rep_a"])
            if resp.status_code != 200:
                return None
            doc = resp.json()
            kinds = {
                (s["customer_id"], r["kind"]) for s in doc["suggestions"] for r in s["reasons"]
            }
            wanted = {
                (churning["id"], "alert"),
                (dealing["id"], "next_action"),
                (due["id"], "follow_up"),
            }
            return doc if wanted <= kinds else None

        doc = await wait_for(suggested, within=40)
        by_customer = {s["customer_id"]: s for s in doc["suggestions"]}
        (alert_reason,) = [
            r for r in by_customer[churning["id"]]["reasons"] if r["kind"] == "alert"
        ]
        assert alert_reason["rule"] == "churn_risk" and alert_reason["alert_id"]
        assert by_customer[churning["id"]]["purpose"] == "order_taking"
        (action,) = [r for r in by_customer[dealing["id"]]["reasons"] if r["kind"] == "next_action"]
        assert action["opportunity_id"] == deal["id"] and "Send the quote" in action["detail"]
        assert by_customer[due["id"]]["customer_name"] == due["name"]
        # The alert links back: the rep reads it by its id.
        alert = await ok(
            await gw.get(f"/api/v1/alerts/{alert_reason['alert_id']}", headers=h["rep_a"])
        )
        assert alert["customer_id"] == churning["id"] and alert["figures"]["orders"] == 3
        # Another rep is told nothing of it.
        other = await gw.get(PLAN, params=params, headers=h["rep_b"])
        assert other.status_code == 404

        # The plan body is created as is.
        plan = await ok(
            await gw.post("/api/v1/visit-plans", json=doc["plan"], headers=h["rep_a"]), 201
        )
        assert plan["plan_date"] == tomorrow.isoformat()
        assert [i["customer_id"] for i in plan["items"]] == [
            i["customer_id"] for i in doc["plan"]["items"]
        ]
        assert plan["items"][0]["note"].startswith("alert churn risk")
