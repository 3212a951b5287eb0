"""Ownership: release and claim (one winner), limits, approval of key-field changes, bulk
transfers, the deactivated-user handover, the custody ledger and the events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from servicekit.auth import Principal

API = "/api/v1/customers"


async def _ledger(customers: Any, principal: Principal, cid: str) -> list[dict[str, Any]]:
    resp = await customers.client.get(
        f"{API}/{cid}/ownership", headers=customers.headers(principal)
    )
    assert resp.status_code == 200, resp.text
    periods: list[dict[str, Any]] = resp.json()
    return periods


async def test_release_then_two_reps_claim_at_once_and_exactly_one_wins(customers, org):
    c = await customers.create(org.rep_a)
    url = f"{API}/{c['id']}"
    no_reason = await customers.client.post(
        f"{url}/release", json={}, headers=customers.headers(org.rep_a)
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["loc"] == ["body", "reason"]
    released = await customers.client.post(
        f"{url}/release",
        json={"reason": "no budget this year"},
        headers=customers.headers(org.rep_a),
    )
    assert released.status_code == 200, released.text
    assert released.json()["owner_id"] is None and released.json()["version"] == 2
    again = await customers.client.post(
        f"{url}/release", json={"reason": "x"}, headers=customers.headers(org.manager_north)
    )
    assert again.status_code == 409

    async def claim(principal: Principal) -> httpx.Response:
        return await customers.client.post(f"{url}/claim", headers=customers.headers(principal))  # type: ignore[no-any-return]

    results = await asyncio.gather(claim(org.rep_b), claim(org.rep_south))
    statuses = sorted(r.status_code for r in results)
    # The loser may no longer see the customer (it left the pool): a 404, not a hint of who
    # holds it now.
    assert statuses == [200, 404], [r.text for r in results]
    winner = next(r for r in results if r.status_code == 200).json()
    loser = next(r for r in results if r.status_code == 404).json()
    assert loser["type"] == "/problems/not-found"
    assert winner["owner_id"] in (org.rep_b.sub, org.rep_south.sub)
    assert winner["team_id"] in (org.team_north, org.team_south)

    owner = org.rep_b if winner["owner_id"] == org.rep_b.sub else org.rep_south
    ledger = await _ledger(customers, owner, c["id"])
    assert [(p["owner_id"], p["kind"]) for p in ledger] == [
        (org.rep_a.sub, "created"),
        (None, "released"),
        (owner.sub, "claimed"),
    ]
    assert ledger[0]["ended_at"] == ledger[1]["started_at"]
    assert ledger[1]["reason"] == "no budget this year" and ledger[1]["actor_id"] == org.rep_a.sub
    assert ledger[0]["end_reason"] == "no budget this year"
    assert ledger[2]["ended_at"] is None

    not_in_pool = await claim(org.rep_a)
    assert not_in_pool.status_code == 404  # rep_a cannot see it any more
    manager_claim = await customers.client.post(
        f"{API}/{(await customers.create(org.admin))['id']}/claim",
        headers=customers.headers(org.manager_north),
    )
    assert manager_claim.status_code == 403
    missing = await customers.client.post(
        f"{API}/{uuid.uuid4()}/claim", headers=customers.headers(org.rep_a)
    )
    assert missing.status_code == 404


async def test_claim_limits_per_day_and_held(customers, org, clock):
    settings = (
        await customers.client.get(f"{API}/settings", headers=customers.headers(org.admin))
    ).json()
    settings["pool"] = {"max_customers_per_rep": 3, "claims_per_day": 2}
    resp = await customers.client.put(
        f"{API}/settings", json=settings, headers=customers.headers(org.admin)
    )
    assert resp.status_code == 200
    pool = [await customers.create(org.admin) for _ in range(4)]

    async def claim(principal: Principal, c: dict[str, Any]) -> httpx.Response:
        resp: httpx.Response = await customers.client.post(
            f"{API}/{c['id']}/claim", headers=customers.headers(principal)
        )
        return resp

    assert (await claim(org.rep_a, pool[0])).status_code == 200
    assert (await claim(org.rep_a, pool[1])).status_code == 200
    third = await claim(org.rep_a, pool[2])
    assert third.status_code == 409
    assert third.json()["type"] == "/problems/claim-limit-reached"
    assert "today" in third.json()["detail"]
    # The daily limit is per calendar day (UTC): the next day rep_a claims again.
    clock.advance(days=1)
    assert (await claim(org.rep_a, pool[3])).status_code == 200

    # rep_b already holds three: the held limit refuses before the daily one.
    for _ in range(3):
        await customers.create(org.rep_b)
    held = await claim(org.rep_b, pool[2])
    assert held.status_code == 409 and "hold 3" in held.json()["detail"]
    assert (await claim(org.rep_south, pool[2])).status_code == 200


async def test_a_reps_key_field_change_waits_for_a_manager_of_their_team(customers, org):
    c = await customers.create(org.rep_a, level="C", industry="retail")
    url = f"{API}/{c['id']}"
    # Non-key fields go straight through.
    direct = await customers.client.patch(
        url, json={"address": "1 Road"}, headers=customers.headers(org.rep_a, **{"If-Match": '"1"'})
    )
    assert direct.status_code == 200 and direct.json()["version"] == 2
    resp = await customers.client.patch(
        url,
        json={"level": "A", "industry": "wholesale", "reason": "signed a framework deal"},
        headers=customers.headers(org.rep_a, **{"If-Match": '"2"'}),
    )
    assert resp.status_code == 202, resp.text
    request = resp.json()
    assert request["status"] == "pending" and request["base_version"] == 2
    assert request["changes"] == {"level": "A", "industry": "wholesale"}
    assert request["team_id"] == org.team_north
    unchanged = (await customers.client.get(url, headers=customers.headers(org.rep_a))).json()
    assert unchanged["level"] == "C" and unchanged["version"] == 2

    pending = await customers.client.get(
        f"{API}/change-requests", headers=customers.headers(org.manager_north)
    )
    assert [r["id"] for r in pending.json()["items"]] == [request["id"]]
    other = await customers.client.get(
        f"{API}/change-requests", headers=customers.headers(org.manager_south)
    )
    assert other.json()["items"] == []
    refused = await customers.client.post(
        f"{API}/change-requests/{request['id']}/approve",
        json={"comment": "no"},
        headers=customers.headers(org.manager_south),
    )
    assert refused.status_code == 404
    self_approve = await customers.client.post(
        f"{API}/change-requests/{request['id']}/approve",
        json={},
        headers=customers.headers(org.rep_a),
    )
    assert self_approve.status_code == 403

    approved = await customers.client.post(
        f"{API}/change-requests/{request['id']}/approve",
        json={"comment": "confirmed with the customer"},
        headers=customers.headers(org.manager_north),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert approved.json()["decided_by"] == org.manager_north.sub
    assert approved.json()["comment"] == "confirmed with the customer"
    after = (await customers.client.get(url, headers=customers.headers(org.rep_a))).json()
    assert after["level"] == "A" and after["industry"] == "wholesale" and after["version"] == 3
    twice = await customers.client.post(
        f"{API}/change-requests/{request['id']}/reject",
        json={},
        headers=customers.headers(org.manager_north),
    )
    assert twice.status_code == 409
    history = (
        await customers.client.get(f"{url}/history", headers=customers.headers(org.rep_a))
    ).json()
    latest = history["items"][0]
    assert latest["actor_id"] == org.manager_north.sub
    assert latest["changes"]["level"] == {"old": "C", "new": "A"}
    assert "confirmed with the customer" in latest["comment"]

    # A rejected request changes nothing.
    resp = await customers.client.patch(
        url, json={"level": "B"}, headers=customers.headers(org.rep_a, **{"If-Match": '"3"'})
    )
    rejected = await customers.client.post(
        f"{API}/change-requests/{resp.json()['id']}/reject",
        json={"comment": "not yet"},
        headers=customers.headers(org.manager_north),
    )
    assert rejected.json()["status"] == "rejected"
    assert (await customers.client.get(url, headers=customers.headers(org.rep_a))).json()[
        "level"
    ] == "A"


async def test_a_manager_changes_level_and_owner_directly(customers, org):
    c = await customers.create(org.rep_a)
    resp = await customers.client.patch(
        f"{API}/{c['id']}",
        json={"level": "B", "owner_id": org.rep_b.sub, "reason": "territory split"},
        headers=customers.headers(org.manager_north, **{"If-Match": '"1"'}),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["level"] == "B" and resp.json()["owner_id"] == org.rep_b.sub
    assert resp.json()["version"] == 3 and resp.headers["etag"] == '"3"'
    ledger = await _ledger(customers, org.rep_b, c["id"])
    assert [(p["owner_id"], p["kind"], p["reason"]) for p in ledger] == [
        (org.rep_a.sub, "created", "created"),
        (org.rep_b.sub, "reassigned", "territory split"),
    ]
    gone = await customers.client.get(f"{API}/{c['id']}", headers=customers.headers(org.rep_a))
    assert gone.status_code == 404


async def test_bulk_transfer_all_or_listed_customers_in_one_transaction(customers, org):
    mine = [await customers.create(org.rep_a) for _ in range(3)]
    other = await customers.create(org.rep_b)
    h = customers.headers(org.manager_north)

    listed = await customers.client.post(
        f"{API}/transfers",
        json={
            "from_owner_id": org.rep_a.sub,
            "to_owner_id": org.rep_sub.sub,
            "customer_ids": [mine[0]["id"], other["id"]],
            "reason": "rebalancing",
        },
        headers=h,
    )
    assert listed.status_code == 422
    assert listed.json()["errors"][0]["ids"] == [other["id"]]
    still = await customers.client.get(
        f"{API}/{mine[0]['id']}", headers=customers.headers(org.rep_a)
    )
    assert still.status_code == 200

    one = await customers.client.post(
        f"{API}/transfers",
        json={
            "from_owner_id": org.rep_a.sub,
            "to_owner_id": org.rep_sub.sub,
            "customer_ids": [mine[0]["id"]],
            "reason": "rebalancing",
        },
        headers=h,
    )
    assert one.status_code == 200, one.text
    assert one.json()["moved"] == 1 and one.json()["to_team_id"] == org.team_north_sub

    south = await customers.client.post(
        f"{API}/transfers",
        json={"from_owner_id": org.rep_a.sub, "to_owner_id": org.rep_south.sub, "reason": "x"},
        headers=h,
    )
    assert south.status_code == 422
    assert south.json()["errors"][0]["loc"] == ["to_owner_id"]
    not_theirs = await customers.client.post(
        f"{API}/transfers",
        json={"from_owner_id": org.rep_a.sub, "reason": "x"},
        headers=customers.headers(org.manager_south),
    )
    assert not_theirs.status_code == 403
    rep = await customers.client.post(
        f"{API}/transfers",
        json={"from_owner_id": org.rep_a.sub, "reason": "x"},
        headers=customers.headers(org.rep_a),
    )
    assert rep.status_code == 403

    to_pool = await customers.client.post(
        f"{API}/transfers",
        json={"from_owner_id": org.rep_a.sub, "to_owner_id": None, "reason": "left the company"},
        headers=h,
    )
    assert to_pool.status_code == 200
    assert to_pool.json()["moved"] == 2
    assert sorted(to_pool.json()["customer_ids"]) == sorted([mine[1]["id"], mine[2]["id"]])
    pool = await customers.client.get(API, params={"pool": "true"}, headers=h)
    assert {c["id"] for c in pool.json()["items"]} == {mine[1]["id"], mine[2]["id"]}
    nothing = await customers.client.post(
        f"{API}/transfers",
        json={"from_owner_id": org.rep_a.sub, "reason": "again"},
        headers=customers.headers(org.admin),
    )
    assert nothing.json()["moved"] == 0


async def test_deactivated_users_customers_go_to_the_pool_or_their_manager(customers, org):
    a_customers = [await customers.create(org.rep_a) for _ in range(2)]
    b_customer = await customers.create(org.rep_b)

    await customers.deactivate_user(org.rep_a)
    pool = await customers.client.get(
        API, params={"pool": "true"}, headers=customers.headers(org.admin)
    )
    assert {c["id"] for c in pool.json()["items"]} == {c["id"] for c in a_customers}
    ledger = await _ledger(customers, org.admin, a_customers[0]["id"])
    assert ledger[-1]["kind"] == "handover" and ledger[-1]["owner_id"] is None
    assert ledger[-1]["actor_id"] is None

    settings = (
        await customers.client.get(f"{API}/settings", headers=customers.headers(org.admin))
    ).json()
    settings["deactivated_handover"] = "manager"
    await customers.client.put(
        f"{API}/settings", json=settings, headers=customers.headers(org.admin)
    )
    await customers.deactivate_user(org.rep_b)
    moved = await customers.client.get(
        f"{API}/{b_customer['id']}", headers=customers.headers(org.manager_north)
    )
    assert moved.json()["owner_id"] == org.manager_north.sub
    assert moved.json()["team_id"] == org.team_north

    # A deactivated user can no longer be named owner.
    resp = await customers.client.post(
        API,
        json={"name": "Z", "region": "EAST", "owner_id": org.rep_a.sub},
        headers=customers.headers(org.admin),
    )
    assert resp.status_code == 422


async def test_events_carry_what_consumers_need(customers, org):
    c = await customers.create(org.rep_a, level="C", estimated_potential="10.50", tags=["x"])
    url = f"{API}/{c['id']}"
    h = customers.headers(org.manager_north)
    await customers.client.patch(url, json={"level": "A"}, headers={**h, "If-Match": '"1"'})
    await customers.client.patch(
        url,
        json={"status": "invalid", "invalid_reason": "duplicate lead"},
        headers={**h, "If-Match": '"2"'},
    )
    await customers.client.post(
        f"{API}/transfers",
        json={"from_owner_id": org.rep_a.sub, "to_owner_id": org.rep_b.sub, "reason": "handover"},
        headers=h,
    )
    events = [e for e in await customers.events() if e.subject == c["id"]]
    # Raised to A with an incomplete record: data quality says so (test_quality_settings).
    assert [e.type for e in events][3] == "customer.data_incomplete"
    events = [e for e in events if e.type != "customer.data_incomplete"]
    assert [e.type for e in events] == [
        "customer.created",
        "customer.updated",
        "customer.level_changed",
        "customer.updated",
        "customer.invalidated",
        "customer.owner_changed",
    ]
    created, updated, level, _, invalidated, owner = (e.data for e in events)
    assert created["code"] == c["code"] and created["owner_id"] == org.rep_a.sub
    assert created["team_id"] == org.team_north and created["region"] == "EAST"
    assert created["estimated_potential"] == "10.50" and created["tags"] == ["x"]
    assert updated["changed_fields"] == ["level"]
    assert updated["changes"] == {"level": {"old": "C", "new": "A"}}
    assert level["old_level"] == "C" and level["new_level"] == "A" and level["level"] == "A"
    assert invalidated["reason"] == "duplicate lead" and invalidated["status"] == "invalid"
    assert owner["old_owner_id"] == org.rep_a.sub and owner["owner_id"] == org.rep_b.sub
    assert owner["team_id"] == org.team_north and owner["reason"] == "handover"
    assert owner["kind"] == "transferred" and owner["level"] == "A"
    assert all(e.source == "customers" for e in events)


async def test_a_reps_customers_follow_them_to_another_team(customers, org):
    c = await customers.create(org.rep_a)
    await customers.move_user(org.rep_a, org.team_south)
    south = await customers.client.get(
        f"{API}/{c['id']}", headers=customers.headers(org.manager_south)
    )
    assert south.status_code == 200
    assert south.json()["team_id"] == org.team_south and south.json()["owner_id"] == org.rep_a.sub
    north = await customers.client.get(
        f"{API}/{c['id']}", headers=customers.headers(org.manager_north)
    )
    assert north.status_code == 404
    ledger = await _ledger(customers, org.admin, c["id"])
    assert [(p["team_id"], p["kind"]) for p in ledger] == [
        (org.team_north, "created"),
        (org.team_south, "team_changed"),
    ]
    updates = [e for e in await customers.events({"customer.updated"}) if e.subject == c["id"]]
    assert updates[-1].data["changes"] == {
        "team_id": {"old": org.team_north, "new": org.team_south}
    }
    assert not [
        e for e in await customers.events({"customer.owner_changed"}) if e.subject == c["id"]
    ]


async def test_a_reps_owner_change_is_a_request_and_applies_through_the_ownership_path(
    customers, org
):
    c = await customers.create(org.rep_a)
    url = f"{API}/{c['id']}"
    asked = await customers.client.patch(
        url,
        json={"owner_id": org.rep_b.sub, "reason": "rep_b covers that district"},
        headers=customers.headers(org.rep_a, **{"If-Match": '"1"'}),
    )
    assert asked.status_code == 202, asked.text
    assert asked.headers["location"] == f"{API}/change-requests/{asked.json()['id']}"
    mine = await customers.client.get(
        f"{API}/change-requests/{asked.json()['id']}", headers=customers.headers(org.rep_a)
    )
    assert mine.status_code == 200
    hidden = await customers.client.get(
        f"{API}/change-requests/{asked.json()['id']}", headers=customers.headers(org.rep_b)
    )
    assert hidden.status_code == 404
    approved = await customers.client.post(
        f"{API}/change-requests/{asked.json()['id']}/approve",
        json={"comment": "fine"},
        headers=customers.headers(org.manager_north),
    )
    assert approved.status_code == 200, approved.text
    ledger = await _ledger(customers, org.rep_b, c["id"])
    assert [(p["owner_id"], p["kind"]) for p in ledger] == [
        (org.rep_a.sub, "created"),
        (org.rep_b.sub, "reassigned"),
    ]
    assert ledger[1]["actor_id"] == org.manager_north.sub
    assert "approved" in ledger[1]["reason"]
    # Giving a customer back to the pool is a release, not a PATCH.
    c2 = await customers.create(org.rep_a)
    resp = await customers.client.patch(
        f"{API}/{c2['id']}",
        json={"owner_id": None},
        headers=customers.headers(org.rep_a, **{"If-Match": '"1"'}),
    )
    assert resp.status_code == 422


async def test_parallel_claims_by_one_rep_cannot_overrun_the_daily_limit(customers, org):
    settings = (
        await customers.client.get(f"{API}/settings", headers=customers.headers(org.admin))
    ).json()
    settings["pool"] = {"max_customers_per_rep": None, "claims_per_day": 1}
    await customers.client.put(
        f"{API}/settings", json=settings, headers=customers.headers(org.admin)
    )
    pool = [await customers.create(org.admin) for _ in range(4)]
    results = await asyncio.gather(
        *[
            customers.client.post(f"{API}/{c['id']}/claim", headers=customers.headers(org.rep_a))
            for c in pool
        ]
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409]
    held = await customers.client.get(
        API, params={"owner_id": org.rep_a.sub}, headers=customers.headers(org.rep_a)
    )
    assert len(held.json()["items"]) == 1
