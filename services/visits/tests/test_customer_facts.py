"""The customers read model: filled from the customers feed (never the customers schema), and
catching up by itself after the visits service was down while customers changed."""

from __future__ import annotations

import uuid
from typing import Any

from visits.customer_facts.service import SOURCE as CUSTOMERS_FEED

VISITS = "/api/v1/visits"


def visit(app: Any, customer_id: str, hour: int = 9) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "channel": "phone",
        "purpose": "service",
        "check_in_at": app.at(0, hour),
        "check_out_at": app.at(0, hour, 30),
        "effective": True,
    }


async def test_the_model_catches_up_after_visits_was_down(serve_visits, org):
    async with serve_visits(org=org) as first:
        moving = await first.add_customer(org.rep_a, level="C")
        await first.ok("POST", VISITS, 201, json=visit(first, moving["id"]), as_=org.rep_a)
        feeds = first.feeds

    # Visits is down; the customers service goes on: the customer moves to rep B at level A
    # with a new point, a new customer arrives for rep A, and the cadences change.
    assert feeds is not None

    def customers(type_: str, subject: str | None, data: dict[str, Any]) -> None:
        feeds.publish(type_, subject, data, source=CUSTOMERS_FEED)

    moved = {
        **moving,
        "owner_id": org.rep_b.sub,
        "level": "A",
        "version": 3,
        "location": {"lat": 31.0, "lon": 121.0},
    }
    customers("customer.owner_changed", moving["id"], moved)
    fresh_id = str(uuid.uuid4())
    fresh = {**moving, "id": fresh_id, "code": "EAST-NEW1", "name": "New while down", "version": 1}
    customers("customer.created", fresh_id, fresh)
    customers("customer_settings.changed", None, {"cadence_days": {"A": 3, "B": 14, "C": 30}})
    # A replayed older event (version 2) changes nothing.
    customers("customer.updated", moving["id"], {**moving, "version": 2, "name": "old"})

    async with serve_visits(feeds=feeds) as again:
        # Applied by this run's consumer (at start), from its cursor; nothing is left.
        assert await again.sync_feed(CUSTOMERS_FEED) == 0
        assert again.app.state.feeds[CUSTOMERS_FEED].applied == 4
        ready = (await again.get("/readyz")).json()
        assert ready["feeds"]["customers"]["state"] == "following"

        # Rep A no longer sees the moved customer; rep B does, and sees its new facts.
        resp = await again.post(VISITS, json=visit(again, moving["id"], 11), as_=org.rep_a)
        assert resp.status_code == 422 and resp.json()["type"] == "/problems/unknown-customer"
        logged = await again.ok(
            "POST",
            VISITS,
            201,
            json={
                **visit(again, moving["id"], 12),
                "check_in_location": {"lat": 31.0, "lon": 121.0},
            },
            as_=org.rep_b,
        )
        assert logged["distance_m"] == 0.0 and logged["customer_code"] == moving["code"]
        await again.ok("POST", VISITS, 201, json=visit(again, fresh_id, 13), as_=org.rep_a)
        completed = await again.events({"visit.completed"})
        (event,) = [e for e in completed if e.data["id"] == logged["id"]]
        assert event.data["level"] == "A" and event.data["customer_name"] == moving["name"]

        # The new cadence: level A every 3 days, so due three days after today's visit.
        due = await again.ok(
            "GET", f"{VISITS}/follow-ups", params={"due_before": "2026-03-15"}, as_=org.rep_b
        )
        assert [(i["customer_id"], i["cadence_days"]) for i in due["items"]] == [(moving["id"], 3)]


async def test_a_customer_not_heard_of_yet_is_a_422_that_says_so(visits, org):
    unknown = str(uuid.uuid4())
    resp = await visits.post(VISITS, json=visit(visits, unknown), as_=org.rep_a)
    assert resp.status_code == 422
    problem = resp.json()
    assert problem["type"] == "/problems/unknown-customer"
    assert problem["errors"][0]["loc"] == ["customer_id"]
    assert problem["detail"].startswith("customer_id: no customer")
    assert "known to the visits service" in problem["detail"]
    # Once the feed announces it, the same request is fine.
    await visits.add_customer(org.rep_a, customer_id=uuid.UUID(unknown))
    await visits.ok("POST", VISITS, 201, json=visit(visits, unknown), as_=org.rep_a)


async def test_events_without_customer_facts_are_skipped(visits, org):
    await visits.feed_event(CUSTOMERS_FEED, "customer.noted", id="not-a-uuid")
    await visits.feed_event(CUSTOMERS_FEED, "order.placed", id=str(uuid.uuid4()))
    ready = (await visits.get("/readyz")).json()
    assert ready["status"] == "ready", ready
