"""The customer's point (`location`) through create, PATCH and reads, carried by the events
the visits service follows; the settings announced on the feed; and the visits section of the
card and the full file, fed by the visits service's `visit.completed` events."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from customers.visitmemos.service import SOURCE as VISITS_FEED

API = "/api/v1/customers"
HERE = {"lat": 31.2304, "lon": 121.4737}


async def test_a_location_is_created_changed_read_and_announced(customers, org):
    created = await customers.create(org.rep_a, location=HERE)
    assert created["location"] == HERE
    path = f"{API}/{created['id']}"
    assert (await customers.get(path, as_=org.rep_a)).json()["location"] == HERE
    card = (await customers.get(f"{path}/card", as_=org.rep_a)).json()
    assert card["location"] == HERE
    listed = (await customers.get(API, params={"owner_id": org.rep_a.sub}, as_=org.rep_a)).json()
    assert [c["location"] for c in listed["items"]] == [HERE]

    moved = {"lat": -33.8688, "lon": 151.2093}
    resp = await customers.patch(
        path, json={"location": moved}, headers={"If-Match": '"1"'}, as_=org.rep_a
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["location"] == moved
    history = (await customers.get(f"{path}/history", as_=org.rep_a)).json()["items"]
    assert history[0]["changes"]["location"] == {"old": HERE, "new": moved}  # newest first
    cleared = await customers.patch(
        path, json={"location": None}, headers={"If-Match": '"2"'}, as_=org.rep_a
    )
    assert cleared.json()["location"] is None

    created_event, *updates = [e for e in await customers.events() if e.subject == created["id"]]
    assert created_event.type == "customer.created" and created_event.data["location"] == HERE
    assert [u.data["location"] for u in updates] == [moved, None]


async def test_a_bad_location_is_a_422_that_writes_nothing(customers, org):
    for location in (
        {"lat": 90.5, "lon": 0},
        {"lat": 0, "lon": -181},
        {"lat": "north", "lon": 0},
        {"lat": 1},
        {"lat": 1, "lon": 2, "alt": 3},
        [31.2, 121.4],
    ):
        resp = await customers.post(
            API,
            json={"name": "Nowhere Ltd", "region": "EAST", "location": location},
            as_=org.rep_a,
        )
        assert resp.status_code == 422, (location, resp.text)
        assert resp.json()["errors"][0]["loc"][:2] == ["body", "location"]
    assert (await customers.get(API, as_=org.admin)).json()["items"] == []


async def test_saved_settings_are_announced_with_the_cadence(customers, org):
    resp = await customers.patch(f"{API}/settings", json={"cadence_days": {"A": 5}}, as_=org.admin)
    assert resp.status_code == 200, resp.text
    (event,) = await customers.events({"customer_settings.changed"})
    assert event.data["cadence_days"] == {"A": 5, "B": 14, "C": 30}
    assert event.data["version"] == 1 and event.data["changed_by"] == org.admin.sub


def visit_completed(customer: dict[str, Any], rep: Any, **kw: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "customer_id": customer["id"],
        "rep_id": rep.sub,
        "rep_name": rep.name,
        "team_id": rep.team_id,
        "channel": "in_person",
        "purpose": "service",
        "effective": True,
        "customer_status": "active",
        **kw,
    }


async def test_the_card_shows_the_latest_memos_and_the_next_follow_up(customers, org, clock):
    customer = await customers.create(org.rep_a, level="A")
    path = f"{API}/{customer['id']}"
    empty = (await customers.get(f"{path}/card", as_=org.rep_a)).json()["sections"]["visits"]
    assert empty["latest_memos"] == [] and empty["last_effective_contact_on"] is None
    # Never visited: due since it came into the archive.
    assert empty["next_follow_up_due_on"] == customer["created_at"][:10]
    assert empty["cadence_days"] == 7

    today = clock.now().date()
    visits = [
        (today - timedelta(days=9), "first call", True),
        (today - timedelta(days=6), "quoted toner", True),
        (today - timedelta(days=4), "no one there", False),
        (today - timedelta(days=3), None, True),  # no memo: not on the card, but effective
        (today - timedelta(days=2), "asked for samples", False),
    ]
    for day, memo, effective in visits:
        data = visit_completed(
            customer,
            org.rep_a,
            check_in_at=f"{day}T02:00:00+00:00",
            visit_date=str(day),
            memo=memo,
            effective=effective,
        )
        await customers.feed_event(VISITS_FEED, "visit.completed", **data)
    # A replayed event changes nothing; other events are not memos.
    await customers.feed_event(VISITS_FEED, "visit.completed", **data)
    await customers.feed_event(VISITS_FEED, "visit.cancelled", id=str(uuid.uuid4()))

    card = (await customers.get(f"{path}/card", as_=org.rep_a)).json()["sections"]["visits"]
    assert [m["memo"] for m in card["latest_memos"]] == [
        "asked for samples",
        "no one there",
        "quoted toner",
    ]
    first = card["latest_memos"][0]
    assert first["rep_id"] == org.rep_a.sub and first["rep_name"] == org.rep_a.name
    assert first["channel"] == "in_person" and first["visited_on"] == str(today - timedelta(2))
    assert first["check_in_at"] == f"{today - timedelta(days=2)}T02:00:00Z"
    assert card["last_effective_contact_on"] == str(today - timedelta(days=3))
    assert card["next_follow_up_due_on"] == str(today - timedelta(days=3) + timedelta(days=7))

    # The full file carries the same section; the cadence follows the settings.
    await customers.patch(f"{API}/settings", json={"cadence_days": {"A": 10}}, as_=org.admin)
    file = (await customers.get(path, as_=org.rep_a)).json()
    assert file["sections"]["visits"]["next_follow_up_due_on"] == str(
        today - timedelta(days=3) + timedelta(days=10)
    )
    assert file["sections"]["visits"]["latest_memos"][0]["memo"] == "asked for samples"
    # Another rep still gets 404 on the card.
    assert (await customers.get(f"{path}/card", as_=org.rep_b)).status_code == 404
