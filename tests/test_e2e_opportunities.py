"""The opportunities service through the real gateway, beside the real customers service: an
integration pushes leads with its API key, the rules assign them, a rep converts one and its
customer is created through the customers API under the rep's own authority (and no more),
the customers feed teaches the lead index the new customer, and the pipeline moves."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from conftest import ok, organisation, wait_for

pytestmark = pytest.mark.e2e
LEADS = "/api/v1/leads"
PASSWORD = "correct-horse-" + uuid.uuid4().hex[:8]
HOT = {
    "need_urgency": "high",
    "purchase_timing": "within_1_month",
    "purchase_cycle": "short",
    "decision_maker_identified": "yes",
    "budget_confirmed": "yes",
}


async def api_key(gw: httpx.AsyncClient, admin: dict[str, str], *scopes: str) -> dict[str, str]:
    made = await ok(
        await gw.post(
            "/api/v1/api-keys", json={"name": "e2e", "scopes": list(scopes)}, headers=admin
        ),
        201,
    )
    return {"X-API-Key": made["key"]}


async def north_rule(gw: httpx.AsyncClient, admin: dict[str, str], region: str, team: str) -> Any:
    """A rule sending `region`'s leads to `team`, made once the opportunities service has
    learned the team from the identity feed."""

    async def rule_made() -> Any:
        resp = await gw.post(
            f"{LEADS}/assignment-rules", json={"region": region, "team_id": team}, headers=admin
        )
        return resp.json() if resp.status_code == 201 else None

    return await wait_for(rule_made)


async def test_a_pushed_lead_converts_into_a_customer_made_under_the_reps_authority(
    gw, admin_login, stack
):
    org = await organisation(gw, admin_login, PASSWORD)
    h, users, teams, admin = org["h"], org["users"], org["teams"], org["admin"]
    region = f"R{uuid.uuid4().hex[:6]}".upper()

    await north_rule(gw, admin, region, teams["north"]["id"])
    intake = await api_key(gw, admin, "leads:write")
    company = f"Harmony Foods {uuid.uuid4().hex[:6]}"
    phone = f"+86 137{uuid.uuid4().int % 10**8:08d}"
    row = {
        "source": "web_form",
        "external_id": uuid.uuid4().hex,
        "company": company,
        "contact_name": "Wang Fang",
        "phone": phone,
        "region": region,
        "evaluation": HOT,
    }

    async def placed() -> Any:
        # Also waits for the north reps to reach the directory.
        result = await ok(await gw.post(f"{LEADS}/bulk", json={"rows": [row]}, headers=intake))
        (outcome,) = result["results"]
        return outcome if outcome["status"] == "assigned" else None

    outcome = await wait_for(placed)
    lead = await ok(await gw.get(f"{LEADS}/{outcome['id']}", headers=admin))
    owner = next(name for name, u in users.items() if u["id"] == lead["owner_id"])
    assert owner in ("rep_a", "rep_b", "rep_sub")
    others = [name for name in ("rep_a", "rep_b") if name != owner]
    assert (await gw.get(f"{LEADS}/{lead['id']}", headers=h[others[0]])).status_code == 404

    # The rep cannot create a customer they could not create themselves: one owned by another
    # rep is the customers service's 422, relayed; nothing is written.
    path = f"{LEADS}/{lead['id']}/convert"
    refused = await gw.post(
        path, json={"customer": {"owner_id": users[others[0]]["id"]}}, headers=h[owner]
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"][0] == "customer"
    # An integration converting needs the customers scope for the customer it would create.
    keyed = await api_key(gw, admin, "leads:write", "opportunities:write")
    forbidden = await gw.post(path, json={}, headers=keyed)
    assert forbidden.status_code == 403 and "customers:write" in forbidden.text
    assert (await ok(await gw.get(f"{LEADS}/{lead['id']}", headers=h[owner])))[
        "status"
    ] == "assigned"

    done = await ok(
        await gw.post(
            path, json={"amount": "25000.00"}, headers={**h[owner], "X-Request-ID": "e2e-convert-1"}
        ),
        201,
    )
    assert done["customer_created"] is True
    customer_id = done["customer_id"]
    customer = await ok(await gw.get(f"/api/v1/customers/{customer_id}", headers=h[owner]))
    assert customer["owner_id"] == users[owner]["id"] and customer["team_id"] == lead["team_id"]
    assert customer["name"] == company and customer["source"] == "web_form"
    assert customer["external_ref"] == f"lead:{lead['id']}"
    history = await ok(await gw.get(f"/api/v1/customers/{customer_id}/history", headers=h[owner]))
    assert history["items"][0]["actor_id"] == users[owner]["id"]
    assert (
        await gw.get(f"/api/v1/customers/{customer_id}", headers=h[others[0]])
    ).status_code == 404

    # One trail: the customers service logged the call with the rep's request id and the
    # opportunities service as the acting app.
    log = stack.running["customers"].log_path

    async def logged() -> Any:
        for line in log.read_text().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("request_id") == "e2e-convert-1" and entry.get("method") == "POST":
                return entry
        return None

    entry = await wait_for(logged)
    assert entry["act"] == ["opportunities"] and entry["status"] == 201

    opportunity = done["opportunity"]
    assert (
        opportunity["customer_id"] == customer_id and opportunity["owner_id"] == users[owner]["id"]
    )
    moved = await gw.post(
        f"/api/v1/opportunities/{opportunity['id']}/stage",
        json={"stage": "won", "amount": "26000.00"},
        headers=h[owner],
    )
    assert (await ok(moved))["won_at"] is not None

    # The customers feed reaches the opportunities service's index: the same phone pushed
    # again, from another source, is this customer's lead.
    again = {**row, "source": "referral", "external_id": uuid.uuid4().hex, "region": "ELSEWHERE"}

    async def matched() -> Any:
        result = await ok(await gw.post(f"{LEADS}/bulk", json={"rows": [again]}, headers=intake))
        found = await ok(await gw.get(f"{LEADS}/{result['results'][0]['id']}", headers=admin))
        again["external_id"] = uuid.uuid4().hex
        return found if found["customer_id"] == customer_id else None

    await wait_for(matched)


async def test_a_likely_duplicate_customer_comes_back_as_409_with_candidates(gw, admin_login):
    org = await organisation(gw, admin_login, PASSWORD)
    h, users, admin = org["h"], org["users"], org["admin"]
    name = f"Jade Logistics {uuid.uuid4().hex[:6]}"
    existing = await ok(
        await gw.post(
            "/api/v1/customers", json={"name": name, "region": "east"}, headers=h["rep_a"]
        ),
        201,
    )
    intake = await api_key(gw, admin, "leads:write")
    pushed = await ok(
        await gw.post(
            LEADS,
            json={
                "source": "trade_show",
                "company": f"{name} Co., Ltd.",
                "region": "east",
                "evaluation": HOT,
            },
            headers=intake,
        ),
        201,
    )

    async def assigned() -> Any:
        resp = await gw.post(
            f"{LEADS}/{pushed['id']}/assign",
            json={"owner_id": users["rep_a"]["id"]},
            headers=h["manager"],
        )
        return resp.json() if resp.status_code == 200 else None

    await wait_for(assigned)
    path = f"{LEADS}/{pushed['id']}/convert"
    # A new customer asked for (a level given): the customers service finds the duplicate.
    conflict = await gw.post(path, json={"customer": {"level": "B"}}, headers=h["rep_a"])
    assert conflict.status_code == 409, conflict.text
    problem = conflict.json()
    assert problem["type"] == "/problems/duplicates-found"
    assert [c["id"] for c in problem["candidates"]] == [existing["id"]]
    picked = await ok(
        await gw.post(path, json={"customer_id": existing["id"]}, headers=h["rep_a"]), 201
    )
    assert picked["customer_id"] == existing["id"] and picked["customer_created"] is False

    # A customer the caller may not see cannot be picked.
    other = await ok(
        await gw.post(
            "/api/v1/customers",
            json={"name": f"Hidden {uuid.uuid4().hex[:6]}", "region": "north"},
            headers=h["rep_b"],
        ),
        201,
    )
    second = await ok(
        await gw.post(
            LEADS,
            json={
                "source": "trade_show",
                "company": "Another",
                "region": "east",
                "evaluation": HOT,
            },
            headers=intake,
        ),
        201,
    )
    await ok(
        await gw.post(
            f"{LEADS}/{second['id']}/assign",
            json={"owner_id": users["rep_a"]["id"]},
            headers=h["manager"],
        )
    )
    hidden = await gw.post(
        f"{LEADS}/{second['id']}/convert", json={"customer_id": other["id"]}, headers=h["rep_a"]
    )
    assert hidden.status_code == 422 and hidden.json()["errors"][0]["loc"] == ["customer_id"]


async def test_a_forged_internal_token_is_refused_at_the_gateway(gw):
    forged = {"X-Internal-Token": "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
    resp = await gw.get("/api/v1/customers", headers=forged)
    assert resp.status_code == 401 and resp.headers["content-type"] == "application/problem+json"


async def test_deactivating_a_rep_hands_their_leads_and_opportunities_on(gw, admin_login):
    org = await organisation(gw, admin_login, PASSWORD)
    h, users, teams, admin = org["h"], org["users"], org["teams"], org["admin"]
    region = f"R{uuid.uuid4().hex[:6]}".upper()

    await north_rule(gw, admin, region, teams["north"]["id"])
    intake = await api_key(gw, admin, "leads:write")

    def row() -> dict[str, Any]:
        return {
            "source": "trade_show",
            "external_id": uuid.uuid4().hex,
            "company": f"Leaving Co {uuid.uuid4().hex[:6]}",
            "phone": f"+86 139{uuid.uuid4().int % 10**8:08d}",
            "region": region,
            "evaluation": HOT,
        }

    async def placed() -> Any:
        # Waits for the three north reps to reach the directory: six leads, two each.
        result = await ok(
            await gw.post(f"{LEADS}/bulk", json={"rows": [row() for _ in range(6)]}, headers=intake)
        )
        leads = [
            await ok(await gw.get(f"{LEADS}/{r['id']}", headers=admin)) for r in result["results"]
        ]
        owners = [lead["owner_id"] for lead in leads]
        return leads if None not in owners and len(set(owners)) == 3 else None

    leads = await wait_for(placed)
    leaving = next(
        n for n in ("rep_a", "rep_b") if users[n]["id"] in {x["owner_id"] for x in leads}
    )
    rep_id = users[leaving]["id"]
    mine = [lead for lead in leads if lead["owner_id"] == rep_id]
    converted = await ok(
        await gw.post(f"{LEADS}/{mine[0]['id']}/convert", json={}, headers=h[leaving]), 201
    )
    opportunity = converted["opportunity"]
    kept = [lead["id"] for lead in mine[1:]]
    assert kept

    await ok(await gw.patch(f"/api/v1/users/{rep_id}", json={"active": False}, headers=admin))

    async def handed_on() -> Any:
        got = await ok(await gw.get(f"/api/v1/opportunities/{opportunity['id']}", headers=admin))
        return got if got["owner_id"] == users["manager"]["id"] else None

    moved = await wait_for(handed_on)
    assert moved["team_id"] == opportunity["team_id"]
    owners = await ok(
        await gw.get(f"/api/v1/opportunities/{opportunity['id']}/owners", headers=h["manager"])
    )
    assert [
        (o["from_owner_id"], o["to_owner_id"], o["by"], o["reason"]) for o in owners["items"]
    ] == [(rep_id, users["manager"]["id"], "system", "owner_deactivated")]
    others = {users[n]["id"] for n in ("rep_a", "rep_b", "rep_sub")} - {rep_id}
    for lead_id in kept:
        lead = await ok(await gw.get(f"{LEADS}/{lead_id}", headers=admin))
        assert lead["owner_id"] in others and lead["status"] == "assigned"
        log = await ok(await gw.get(f"{LEADS}/{lead_id}/assignments", headers=h["manager"]))
        last = log["items"][-1]
        assert (last["from_owner_id"], last["to_owner_id"]) == (rep_id, lead["owner_id"])
        assert (last["by"], last["reason"]) == ("system", "owner_deactivated")
    # The converted lead stays converted, with the rep who converted it.
    assert (await ok(await gw.get(f"{LEADS}/{mine[0]['id']}", headers=admin)))["owner_id"] == rep_id

    # The events, on the opportunities feed through the gateway.
    feed = await api_key(gw, admin, "events:read")

    async def handover_events() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            page = await ok(
                await gw.get("/api/v1/events/opportunities", params=params, headers=feed)
            )
            out += page["items"]
            after = page["next_cursor"]
            if not page["has_more"]:
                break
        subjects = {*kept, opportunity["id"]}
        return [
            e
            for e in out
            if e["subject"] in subjects and e["data"].get("reason") == "owner_deactivated"
        ]

    events = await handover_events()
    assert sorted(e["type"] for e in events) == ["lead.assigned"] * len(kept) + [
        "opportunity.owner_changed"
    ]
    assert all(e["data"]["from_owner_id"] == rep_id for e in events)

    # Reactivated, the rep keeps nothing that was handed on; the rules place leads with them
    # again (which shows the reactivation was applied).
    await ok(await gw.patch(f"/api/v1/users/{rep_id}", json={"active": True}, headers=admin))

    async def placed_again() -> Any:
        result = await ok(
            await gw.post(f"{LEADS}/bulk", json={"rows": [row() for _ in range(3)]}, headers=intake)
        )
        leads = [
            await ok(await gw.get(f"{LEADS}/{r['id']}", headers=admin)) for r in result["results"]
        ]
        return True if rep_id in {lead["owner_id"] for lead in leads} else None

    await wait_for(placed_again)
    again = await ok(await gw.get(f"/api/v1/opportunities/{opportunity['id']}", headers=admin))
    assert again["owner_id"] == users["manager"]["id"]
    for lead_id in kept:
        assert (await ok(await gw.get(f"{LEADS}/{lead_id}", headers=admin)))["owner_id"] != rep_id
    assert len(await handover_events()) == len(events)
