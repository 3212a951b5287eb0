"""The stage pipeline: conversion into an opportunity, stage moves with their history and
days in stage, won and lost, reopening, the board, and the stalled list with its learned
usual times; who sees which opportunity."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from opportunities.config import Settings
from opportunities.pipeline.service import refresh_norms
from servicekit.testing.tokens import make_principal

LEADS = "/api/v1/leads"
OPPORTUNITIES = "/api/v1/opportunities"


def key(*scopes: str):
    return make_principal("integration", kind="key", scopes=scopes)


async def learn(svc) -> None:
    """What the app's background loop does every `norms_refresh_seconds`."""
    settings: Settings = svc.app.state.settings
    async with svc.session() as session:
        await refresh_norms(session, settings)


async def test_conversion_makes_an_opportunity_of_the_leads_customer(opportunities, org):
    svc = opportunities
    customer = await svc.customer(email="buyer@jade.example")
    lead = await svc.assigned_lead(org.manager_north, org.rep_a, email="BUYER@jade.example")
    path = f"{LEADS}/{lead['id']}/convert"
    assert (await svc.post(path, json={}, as_=org.rep_b)).status_code == 404
    bad = await svc.post(path, json={"amount": "12.345"}, as_=org.rep_a)
    assert bad.status_code == 422
    done = await svc.ok(
        await svc.post(
            path,
            json={
                "name": "Jade: 40 printers",
                "amount": "88000.00",
                "expected_close_on": "2031-06-30",
            },
            as_=org.rep_a,
        ),
        201,
    )
    opportunity = done["opportunity"]
    assert done["customer_id"] == customer["id"] and done["customer_created"] is False
    assert (
        done["lead"]["status"] == "converted"
        and done["lead"]["opportunity_id"] == opportunity["id"]
    )
    assert done["lead"]["contacted_at"] is not None  # converting is contact
    assert opportunity["stage"] == "prospecting" and opportunity["probability"] == 10
    assert opportunity["owner_id"] == org.rep_a.sub and opportunity["team_id"] == org.team_north
    assert opportunity["amount"] == "88000.00" and opportunity["source"] == "web_form"
    again = await svc.post(path, json={}, as_=org.rep_a)
    assert again.status_code == 409 and again.json()["opportunity_id"] == opportunity["id"]
    types = [e.type for e in await svc.events() if e.subject in (lead["id"], opportunity["id"])]
    assert types[-3:] == ["opportunity.created", "lead.contacted", "lead.converted"]
    converted = (await svc.events({"lead.converted"}))[0]
    assert converted.data["amount"] == "88000.00"
    assert converted.data["opportunity_id"] == opportunity["id"]
    created = (await svc.events({"opportunity.created"}))[0]
    assert created.data["source"] == "web_form" and created.data["region"] == "EAST"
    assert created.data["owner_id"] == org.rep_a.sub and created.data["team_id"] == org.team_north

    # A lead no rep holds yet does not convert; without a known customer, the customers
    # service is asked, which this test does not run (see tests/test_e2e_opportunities.py).
    queued = await svc.push()
    assert (
        await svc.post(f"{LEADS}/{queued['id']}/convert", json={}, as_=org.admin)
    ).status_code == 409
    unknown = await svc.assigned_lead(org.manager_north, org.rep_a)
    unreached = await svc.post(f"{LEADS}/{unknown['id']}/convert", json={}, as_=org.rep_a)
    assert unreached.status_code == 502 and unreached.json()["status"] == 502
    assert (await svc.lead(unknown["id"], as_=org.rep_a))["status"] == "assigned"


async def test_stage_moves_are_recorded_with_the_days_in_the_stage_left(opportunities, org, clock):
    svc = opportunities
    opportunity = await svc.opportunity(org.manager_north, org.rep_a)
    oid = opportunity["id"]
    clock.advance(days=3)
    moved = await svc.ok(await svc.move(oid, org.rep_a, "solution", note="demo booked"))
    assert (
        moved["stage"] == "solution" and moved["probability"] == 40 and moved["days_in_stage"] == 0
    )
    clock.advance(days=2, hours=12)
    back = await svc.ok(await svc.move(oid, org.rep_a, "needs_analysis"))
    assert back["stage"] == "needs_analysis"
    assert (await svc.move(oid, org.rep_a, "needs_analysis")).status_code == 409
    assert (await svc.move(oid, org.rep_a, "nowhere")).status_code == 422
    assert (await svc.move(oid, org.rep_b, "contract")).status_code == 404

    history = await svc.ok(await svc.get(f"{OPPORTUNITIES}/{oid}/stages", as_=org.manager_north))
    assert [(h["from_stage"], h["to_stage"], h["days_in_previous"]) for h in history["items"]] == [
        (None, "prospecting", None),
        ("prospecting", "solution", 3.0),
        ("solution", "needs_analysis", 2.5),
    ]
    assert (
        history["items"][1]["by"] == org.rep_a.sub and history["items"][1]["note"] == "demo booked"
    )
    changes = await svc.events({"opportunity.stage_changed"})
    assert [
        (e.data["from_stage"], e.data["to_stage"], e.data["days_in_previous"], e.data["backward"])
        for e in changes
    ] == [
        ("prospecting", "solution", 3.0, False),
        ("solution", "needs_analysis", 2.5, True),
    ]
    assert changes[0].data["source"] == "web_form" and changes[0].data["team_id"] == org.team_north


async def test_won_needs_an_amount_lost_a_reason_and_a_manager_reopens(opportunities, org, clock):
    svc = opportunities
    opportunity = await svc.opportunity(org.manager_north, org.rep_a)
    oid = opportunity["id"]
    await svc.ok(await svc.move(oid, org.rep_a, "contract"))
    no_amount = await svc.move(oid, org.rep_a, "won")
    assert no_amount.status_code == 422 and no_amount.json()["errors"][0]["loc"] == ["amount"]
    assert (await svc.move(oid, org.rep_a, "lost")).status_code == 422
    assert (await svc.move(oid, org.rep_a, "contract", amount="5.00")).status_code == 409
    clock.advance(days=4)
    won = await svc.ok(await svc.move(oid, org.rep_a, "won", amount="150000.00"))
    assert won["closed_at"] is not None and won["won_at"] is not None and won["probability"] == 100
    assert (await svc.move(oid, org.rep_a, "lost", lost_reason="x")).status_code == 409
    (won_event,) = await svc.events({"opportunity.won"})
    assert won_event.data["amount"] == "150000.00" and won_event.data["cycle_days"] == 4.0

    reopen = f"{OPPORTUNITIES}/{oid}/reopen"
    assert (
        await svc.post(reopen, json={"reason": "signature missing"}, as_=org.rep_a)
    ).status_code == 403
    assert (await svc.post(reopen, json={"reason": "x"}, as_=org.manager_south)).status_code == 404
    again = await svc.ok(
        await svc.post(reopen, json={"reason": "signature missing"}, as_=org.manager_north)
    )
    assert again["stage"] == "contract" and again["closed_at"] is None and again["won_at"] is None
    assert (await svc.post(reopen, json={"reason": "x"}, as_=org.manager_north)).status_code == 409
    lost = await svc.ok(
        await svc.move(oid, org.rep_a, "lost", lost_reason="budget cut", lost_to="Acme")
    )
    assert lost["lost_reason"] == "budget cut" and lost["lost_to"] == "Acme"
    (lost_event,) = await svc.events({"opportunity.lost"})
    assert lost_event.data["lost_to"] == "Acme" and lost_event.data["amount"] == "150000.00"
    (reopened,) = await svc.events({"opportunity.reopened"})
    assert reopened.data["from_stage"] == "won" and reopened.data["by"] == org.manager_north.sub


async def test_a_change_needs_the_current_etag_and_a_set_probability_lasts_one_stage(
    opportunities, org
):
    svc = opportunities
    opportunity = await svc.opportunity(org.manager_north, org.rep_a)
    path = f"{OPPORTUNITIES}/{opportunity['id']}"
    got = await svc.get(path, as_=org.rep_a)
    body = {
        "probability": 35,
        "next_action": "send the quote",
        "risks": ["budget"],
        "competitors": ["Acme"],
    }
    assert (await svc.patch(path, json=body, as_=org.rep_a)).status_code == 428
    changed = await svc.ok(
        await svc.patch(path, json=body, headers={"If-Match": got.headers["etag"]}, as_=org.rep_a)
    )
    assert changed["probability"] == 35 and changed["probability_set"] is True
    assert changed["risks"] == ["budget"] and changed["version"] == 2
    stale = await svc.patch(
        path, json={"name": "x"}, headers={"If-Match": got.headers["etag"]}, as_=org.rep_a
    )
    assert stale.status_code == 412
    for bad in (
        {"amount": "-1"},
        {"amount": "1" * 20},
        {"probability": 101},
        {"expected_close_on": "2024-02-30"},
        {"risks": ["x"] * 21},
        {"stage": "won"},
    ):
        assert (
            await svc.patch(path, json=bad, headers={"If-Match": "*"}, as_=org.rep_a)
        ).status_code == 422, bad
    moved = await svc.ok(await svc.move(opportunity["id"], org.rep_a, "needs_analysis"))
    assert moved["probability"] == 20 and moved["probability_set"] is False


async def test_who_sees_which_opportunity(opportunities, org):
    svc = opportunities
    a = await svc.opportunity(org.manager_north, org.rep_a)
    sub = await svc.opportunity(org.manager_north, org.rep_sub)
    south = await svc.opportunity(org.manager_south, org.rep_south)
    everything = {a["id"], sub["id"], south["id"]}
    sees = {
        org.rep_a: {a["id"]},
        org.rep_b: set(),
        org.manager_north: {a["id"], sub["id"]},
        org.manager_south: {south["id"]},
        org.admin: everything,
        key("opportunities:read"): everything,
    }
    for who, visible in sees.items():
        page = await svc.ok(await svc.get(OPPORTUNITIES, as_=who))
        assert {i["id"] for i in page["items"]} == visible, who.name
        for oid in everything:
            status = (await svc.get(f"{OPPORTUNITIES}/{oid}", as_=who)).status_code
            assert status == (200 if oid in visible else 404), (who.name, oid)
    assert (await svc.get(OPPORTUNITIES, as_=key("leads:read"))).status_code == 403
    reader = key("opportunities:read")
    assert (await svc.move(a["id"], reader, "solution")).status_code == 403
    writer = key("opportunities:write")
    assert (await svc.ok(await svc.move(a["id"], writer, "solution")))["stage"] == "solution"


async def test_the_board_counts_a_teams_open_opportunities_by_stage(opportunities, org):
    svc = opportunities
    for rep, stage, amount in (
        (org.rep_a, "prospecting", "1000.00"),
        (org.rep_b, "prospecting", "500.50"),
        (org.rep_sub, "solution", "2000.00"),
        (org.rep_south, "solution", "7000.00"),
    ):
        opportunity = await svc.opportunity(
            org.manager_north if rep != org.rep_south else org.manager_south, rep, amount=amount
        )
        if stage != "prospecting":
            await svc.ok(await svc.move(opportunity["id"], rep, stage))
    closed = await svc.opportunity(org.manager_north, org.rep_a, amount="9.00")
    await svc.ok(await svc.move(closed["id"], org.rep_a, "lost", lost_reason="x"))

    board = await svc.ok(
        await svc.get(
            f"{OPPORTUNITIES}/board", params={"team_id": org.team_north}, as_=org.manager_north
        )
    )
    columns = {c["stage"]: c for c in board["stages"]}
    assert list(columns) == [
        "prospecting",
        "needs_analysis",
        "solution",
        "quote_negotiation",
        "contract",
    ]
    assert (columns["prospecting"]["count"], columns["prospecting"]["amount"]) == (2, "1500.50")
    assert columns["prospecting"]["weighted_amount"] == "150.05"
    assert [i["amount"] for i in columns["prospecting"]["items"]] == ["1000.00", "500.50"]
    assert (columns["solution"]["count"], columns["solution"]["amount"]) == (1, "2000.00")
    assert board["count"] == 3 and board["amount"] == "3500.50"
    sub_only = await svc.ok(
        await svc.get(
            f"{OPPORTUNITIES}/board",
            params={"team_id": org.team_north_sub, "limit": "0"},
            as_=org.admin,
        )
    )
    assert sub_only["count"] == 1 and sub_only["stages"][2]["items"] == []
    assert (
        await svc.get(
            f"{OPPORTUNITIES}/board", params={"team_id": org.team_north}, as_=org.manager_south
        )
    ).status_code == 404
    assert (
        await svc.get(
            f"{OPPORTUNITIES}/board", params={"team_id": str(uuid.uuid4())}, as_=org.admin
        )
    ).status_code == 404
    stages = await svc.ok(await svc.get(f"{OPPORTUNITIES}/stages", as_=org.rep_a))
    assert [(i["name"], i["probability"], i["closed"]) for i in stages["items"]][-3:] == [
        ("contract", 80, False),
        ("won", 100, True),
        ("lost", 0, True),
    ]
    mine = await svc.ok(await svc.get(f"{OPPORTUNITIES}/board", as_=org.rep_a))
    assert mine["count"] == 1 and mine["amount"] == "1000.00"


async def test_a_stalled_opportunity_is_listed_with_its_reason(opportunities, org, clock):
    svc = opportunities
    slow = await svc.opportunity(org.manager_north, org.rep_a)
    clock.advance(days=10)
    fresh = await svc.opportunity(org.manager_north, org.rep_b)
    clock.advance(days=5)  # slow: 15 days in prospecting (expected 14); fresh: 5
    page = await svc.ok(await svc.get(f"{OPPORTUNITIES}/stalled", as_=org.manager_north))
    (item,) = page["items"]
    assert item["id"] == slow["id"]
    assert item["reasons"] == [
        {
            "rule": "time_in_stage",
            "days": 15.0,
            "usual_days": 14.0,
            "over_by_days": 1.0,
            "basis": "expected",
        }
    ]
    assert (await svc.ok(await svc.get(f"{OPPORTUNITIES}/stalled", as_=org.rep_b)))["items"] == []
    assert (await svc.ok(await svc.get(f"{OPPORTUNITIES}/stalled", as_=org.manager_south)))[
        "items"
    ] == []

    # Moving on resets the stage's clock; the whole cycle (73 expected days) still runs.
    await svc.ok(await svc.move(slow["id"], org.rep_a, "needs_analysis"))
    assert (await svc.ok(await svc.get(f"{OPPORTUNITIES}/stalled", as_=org.rep_a)))["items"] == []
    clock.advance(days=60)
    page = await svc.ok(
        await svc.get(f"{OPPORTUNITIES}/stalled", params={"limit": "1"}, as_=org.admin)
    )
    # Longest stalled first: fresh since day 24 (10 + 14), slow since day 29 (15 + 14).
    assert [i["id"] for i in page["items"]] == [fresh["id"]] and page["next_cursor"]
    rest = await svc.ok(
        await svc.get(
            f"{OPPORTUNITIES}/stalled", params={"cursor": page["next_cursor"]}, as_=org.admin
        )
    )
    (second,) = rest["items"]
    assert second["id"] == slow["id"]
    rules = {r["rule"]: r for r in second["reasons"]}
    assert rules["time_in_stage"]["days"] == 60.0
    assert rules["time_in_stage"]["over_by_days"] == 46.0
    assert rules["cycle"]["days"] == 75.0 and rules["cycle"]["usual_days"] == 73.0
    assert rules["cycle"]["over_by_days"] == 2.0


@pytest.mark.timeout(120)
async def test_usual_times_are_learned_from_twenty_past_moves(opportunities, org, clock):
    svc = opportunities
    # 20 past stays in prospecting for the north team: 1, 2, ..., 20 days.
    for days in range(1, 21):
        opportunity = await svc.opportunity(org.manager_north, org.rep_a)
        clock.advance(days=days)
        await svc.ok(await svc.move(opportunity["id"], org.rep_a, "needs_analysis"))
    await learn(svc)
    waiting = await svc.opportunity(org.manager_north, org.rep_b)
    south = await svc.opportunity(org.manager_south, org.rep_south)
    # The 80th percentile of 1..20 days is 16.2 (linear interpolation): not 14 any more.
    clock.advance(days=15)
    stalled = await svc.ok(
        await svc.get(f"{OPPORTUNITIES}/stalled", params={"limit": "200"}, as_=org.admin)
    )
    ids = {i["id"] for i in stalled["items"]}
    assert waiting["id"] not in ids and south["id"] in ids
    clock.advance(days=2)
    stalled = await svc.ok(
        await svc.get(f"{OPPORTUNITIES}/stalled", params={"limit": "200"}, as_=org.admin)
    )
    (item,) = [i for i in stalled["items"] if i["id"] == waiting["id"]]
    assert item["reasons"][0]["basis"] == "learned"
    assert item["reasons"][0]["usual_days"] == 16.2 and item["reasons"][0]["over_by_days"] == 0.8
    (other,) = [i for i in stalled["items"] if i["id"] == south["id"]]
    assert other["reasons"][0]["basis"] == "expected"


async def test_a_step_recorded_after_the_fact_says_when_it_happened(opportunities, org, clock):
    svc = opportunities
    received = clock.now() - timedelta(days=40)
    await svc.customer(phone="13912345678")
    lead = await svc.assigned_lead(
        org.manager_north, org.rep_a, received_at=received.isoformat(), phone="13912345678"
    )
    path = f"{LEADS}/{lead['id']}/convert"
    too_early = (received - timedelta(days=1)).isoformat()
    assert (await svc.post(path, json={"at": too_early}, as_=org.rep_a)).status_code == 422
    opened = (clock.now() - timedelta(days=30)).isoformat()
    done = await svc.ok(await svc.post(path, json={"at": opened}, as_=org.rep_a), 201)
    opportunity = done["opportunity"]
    assert opportunity["created_at"] == opportunity["stage_entered_at"]
    assert opportunity["days_in_stage"] == 30.0
    assert done["lead"]["converted_at"] == done["lead"]["contacted_at"]

    oid = opportunity["id"]
    for bad in (
        (clock.now() + timedelta(hours=1)).isoformat(),
        (clock.now() - timedelta(days=31)).isoformat(),
        "2026-01-01T00:00:00",
    ):
        assert (await svc.move(oid, org.rep_a, "solution", at=bad)).status_code == 422, bad
    moved_at = clock.now() - timedelta(days=20)
    await svc.ok(await svc.move(oid, org.rep_a, "solution", at=moved_at.isoformat()))
    history = await svc.ok(await svc.get(f"{OPPORTUNITIES}/{oid}/stages", as_=org.rep_a))
    last = history["items"][-1]
    assert last["days_in_previous"] == 10.0 and last["at"] != last["recorded_at"]
    # 20 days in solution (expected 21): not yet; a day later it is.
    assert (await svc.ok(await svc.get(f"{OPPORTUNITIES}/stalled", as_=org.rep_a)))["items"] == []
    clock.advance(days=2)
    (item,) = (await svc.ok(await svc.get(f"{OPPORTUNITIES}/stalled", as_=org.rep_a)))["items"]
    assert item["reasons"][0]["over_by_days"] == 1.0
    too_far = (clock.now() - timedelta(days=91)).isoformat()
    assert (await svc.move(oid, org.rep_a, "contract", at=too_far)).status_code == 422
