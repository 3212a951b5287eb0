"""Complaints and market reports: raised from a visit or on their own, tracked open ->
in progress -> resolved -> closed, reopened and recorded; their age and time to resolution;
a critical complaint announced with its creation."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.auth import Principal

COMPLAINTS = "/api/v1/complaints"
MARKET = "/api/v1/market-reports"


def key(*scopes: str) -> Principal:
    return Principal(
        sub=str(uuid.uuid4()), kind="key", role="integration", scopes=frozenset(scopes)
    )


async def a_visit(visits: Any, rep: Any, customer: dict[str, Any]) -> Any:
    body = {
        "customer_id": customer["id"],
        "channel": "in_person",
        "purpose": "complaint",
        "check_in_at": visits.at(0, 9),
        "check_out_at": visits.at(0, 10),
    }
    return await visits.ok("POST", "/api/v1/visits", 201, json=body, as_=rep)


async def test_a_complaint_from_a_visit_is_tracked_to_resolution_and_reopened(visits, org, clock):
    customer = await visits.add_customer(org.rep_a, level="A", region="EAST")
    visit = await a_visit(visits, org.rep_a, customer)
    resp = await visits.post(
        COMPLAINTS,
        json={
            "visit_id": visit["id"],
            "category": "delivery",
            "severity": "critical",
            "description": "Two pallets arrived broken",
        },
        as_=org.rep_a,
    )
    assert resp.status_code == 201, resp.text
    c = resp.json()
    assert c["customer_id"] == customer["id"] and c["customer_code"] == customer["code"]
    assert (
        c["status"] == "open" and c["rep_id"] == org.rep_a.sub and c["raised_on"] == visits.day(0)
    )
    assert c["age_seconds"] == 0 and c["time_to_resolution_seconds"] is None

    # Announced with its creation: the event is in the feed as soon as the create committed.
    (raised,) = await visits.events({"complaint.raised"})
    assert raised.subject == c["id"]
    assert {
        k: raised.data[k]
        for k in (
            "severity",
            "escalated",
            "customer_id",
            "level",
            "region",
            "customer_status",
            "visit_id",
            "team_id",
        )
    } == {
        "severity": "critical",
        "escalated": True,
        "customer_id": customer["id"],
        "level": "A",
        "region": "EAST",
        "customer_status": "active",
        "visit_id": visit["id"],
        "team_id": org.team_north,
    }

    path = f"{COMPLAINTS}/{c['id']}"
    clock.advance(hours=1)
    started = await visits.ok("POST", f"{path}/start", as_=org.manager_north)
    assert started["status"] == "in_progress" and started["age_seconds"] == 3600
    assert (await visits.post(f"{path}/close", as_=org.rep_a)).status_code == 409
    assert (await visits.post(f"{path}/resolve", json={}, as_=org.rep_a)).status_code == 422
    clock.advance(hours=2)
    resolved = await visits.ok(
        "POST", f"{path}/resolve", json={"resolution": "Replaced both pallets"}, as_=org.rep_a
    )
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == org.rep_a.sub
    assert resolved["time_to_resolution_seconds"] == 3 * 3600
    closed = await visits.ok("POST", f"{path}/close", as_=org.manager_north)
    assert closed["status"] == "closed" and closed["closed_by"] == org.manager_north.sub
    clock.advance(hours=5)
    assert (await visits.ok("GET", path, as_=org.rep_a))["age_seconds"] == 3 * 3600  # stopped

    reopened = await visits.ok(
        "POST", f"{path}/reopen", json={"reason": "one more was broken"}, as_=org.rep_a
    )
    assert reopened["status"] == "open" and reopened["reopen_count"] == 1
    assert reopened["resolution"] is None and reopened["closed_at"] is None
    assert reopened["age_seconds"] == 8 * 3600
    await visits.ok("POST", f"{path}/resolve", json={"resolution": "replaced"}, as_=org.rep_a)

    history = await visits.ok("GET", f"{path}/history", as_=org.rep_a)
    assert [(h["from_status"], h["to_status"]) for h in history["items"]] == [
        (None, "open"),
        ("open", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "closed"),
        ("closed", "open"),
        ("open", "resolved"),
    ]
    assert history["items"][4]["note"] == "one more was broken"
    assert history["items"][1]["actor_id"] == org.manager_north.sub

    types = [e.type for e in await visits.events()]
    assert types[-6:] == [
        "visit.completed",
        "complaint.raised",
        "complaint.resolved",
        "complaint.closed",
        "complaint.reopened",
        "complaint.resolved",
    ]
    resolved_events = await visits.events({"complaint.resolved"})
    assert resolved_events[0].data["resolution"] == "Replaced both pallets"
    assert resolved_events[0].data["time_to_resolution_seconds"] == 3 * 3600
    (closed_event,) = await visits.events({"complaint.closed"})
    assert closed_event.data["severity"] == "critical"

    # The rep's daily report counts the complaint raised that day.
    report = await visits.ok("GET", f"/api/v1/daily-reports/days/{visits.day(0)}", as_=org.rep_a)
    assert report["figures"]["complaints_raised"] == 1


async def test_market_reports_with_or_without_a_customer(visits, org):
    customer = await visits.add_customer(org.rep_b)
    alone = await visits.ok(
        "POST",
        MARKET,
        201,
        json={"category": "pricing", "severity": "medium", "description": "Rival -5% in EAST"},
        as_=org.rep_b,
    )
    assert alone["customer_id"] is None and alone["status"] == "open"
    about = await visits.ok(
        "POST",
        MARKET,
        201,
        json={
            "customer_id": customer["id"],
            "category": "demand",
            "severity": "low",
            "description": "Plans a second shop",
        },
        as_=org.rep_b,
    )
    raised = await visits.events({"market_report.raised"})
    assert [e.data["id"] for e in raised] == [alone["id"], about["id"]]
    assert (
        raised[0].data["escalated"] is False and raised[1].data["customer_code"] == customer["code"]
    )
    # A market report is not a complaint: each list holds its own kind.
    assert (await visits.get(f"{COMPLAINTS}/{alone['id']}", as_=org.rep_b)).status_code == 404
    page = await visits.ok("GET", MARKET, as_=org.rep_b)
    assert [m["id"] for m in page["items"]] == [about["id"], alone["id"]]  # newest first
    assert (await visits.ok("GET", COMPLAINTS, as_=org.rep_b))["items"] == []
    await visits.ok(
        "POST", f"{MARKET}/{alone['id']}/resolve", json={"resolution": "noted"}, as_=org.rep_b
    )
    assert await visits.events({"complaint.resolved"}) == []


async def test_bad_cases_are_refused_and_write_nothing(visits, org):
    mine = await visits.add_customer(org.rep_a)
    theirs = await visits.add_customer(org.rep_b)
    their_visit = await a_visit(visits, org.rep_b, theirs)
    base = {"category": "quality", "severity": "high", "description": "It broke"}
    for body, field in (
        (base, "customer_id"),
        ({**base, "customer_id": theirs["id"]}, "customer_id"),
        ({**base, "customer_id": str(uuid.uuid4())}, "customer_id"),
        ({**base, "visit_id": their_visit["id"]}, "visit_id"),
        ({**base, "customer_id": mine["id"], "severity": "apocalyptic"}, "severity"),
        ({**base, "customer_id": mine["id"], "description": ""}, "description"),
        ({**base, "customer_id": mine["id"], "description": "a\x00"}, "description"),
        ({**base, "customer_id": mine["id"], "category": "x" * 101}, "category"),
    ):
        resp = await visits.post(COMPLAINTS, json=body, as_=org.rep_a)
        assert resp.status_code == 422, (body, resp.text)
        assert any(field in map(str, e["loc"]) for e in resp.json()["errors"]), resp.json()
    assert (await visits.ok("GET", COMPLAINTS, as_=org.admin))["items"] == []
    assert await visits.events({"complaint.raised"}) == []


async def test_who_sees_and_moves_which_cases(visits, org):
    customer = await visits.add_customer(org.rep_a)
    body = {
        "customer_id": customer["id"],
        "category": "billing",
        "severity": "low",
        "description": "Invoice twice",
    }
    mine = await visits.ok("POST", COMPLAINTS, 201, json=body, as_=org.rep_a)
    path = f"{COMPLAINTS}/{mine['id']}"
    for outsider in (org.rep_b, org.rep_south, org.manager_south):
        assert (await visits.get(path, as_=outsider)).status_code == 404
        assert (await visits.post(f"{path}/start", as_=outsider)).status_code == 404
    assert (await visits.get(path, as_=key("visits:read"))).status_code == 200
    assert (await visits.post(f"{path}/start", as_=key("visits:read"))).status_code == 403
    assert (await visits.get(path, as_=key("leads:write"))).status_code == 403
    assert (await visits.ok("POST", f"{path}/start", as_=org.manager_north))[
        "status"
    ] == "in_progress"

    # An integration's complaint belongs to the customer's owner.
    writer = key("visits:write")
    logged = await visits.ok("POST", COMPLAINTS, 201, json=body, as_=writer)
    assert logged["rep_id"] == org.rep_a.sub and logged["raised_by"] == writer.sub
    pool = await visits.add_customer(None)
    resp = await visits.post(COMPLAINTS, json={**body, "customer_id": pool["id"]}, as_=writer)
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"] == ["rep_id"]
    ids = {c["id"] for c in (await visits.ok("GET", COMPLAINTS, as_=org.manager_north))["items"]}
    assert ids == {mine["id"], logged["id"]}
    filtered = await visits.ok("GET", COMPLAINTS, params={"status": "in_progress"}, as_=org.rep_a)
    assert [c["id"] for c in filtered["items"]] == [mine["id"]]
