"""Data quality as settings: the score and the `incomplete` flag on the list, the card and the
file; only content changes count as recent; `customer.data_incomplete` for A-level customers and
`customer.data_completed` when a record stops counting as incomplete."""

from __future__ import annotations

from typing import Any

API = "/api/v1/customers"
SETTINGS = f"{API}/settings"
COMPLETE = {
    "industry": "Printing",
    "address": "1 Bund Road",
    "phone": "021 5555 0001",
    "email": "buyer@example.com",
    "source": "fair",
    "tags": ["key"],
    "estimated_potential": "100000.00",
}


async def _record(customers, principal, customer_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await customers.get(f"{API}/{customer_id}", as_=principal)).json()
    return body


async def test_score_and_flag_show_on_list_card_and_file_by_the_settings(customers, org):
    full = await customers.create(org.rep_a, name="Full", contacts=[{"name": "Li"}], **COMPLETE)
    thin = await customers.create(org.rep_a, name="Thin", phone="13800000009")
    assert (full["quality_score"], full["incomplete"]) == (100, False)
    # name 15 + region 10 + phone 15 + fresh 10; address and industry are required.
    assert (thin["quality_score"], thin["incomplete"]) == (50, True)
    listed = await customers.get(API, params={"incomplete": "true"}, as_=org.rep_a)
    assert [(c["id"], c["quality_score"]) for c in listed.json()["items"]] == [(thin["id"], 50)]
    card = (await customers.get(f"{API}/{thin['id']}/card", as_=org.rep_a)).json()
    assert (card["quality_score"], card["incomplete"]) == (50, True)
    section = (await _record(customers, org.rep_a, thin["id"]))["sections"]["data_quality"]
    assert section["missing_required"] == ["address", "industry"]
    assert section["threshold"] == 70 and section["incomplete"] is True

    # Weigh the phone less and require nothing but a name: the scores follow at once.
    weights = {
        "name": 40,
        "region": 10,
        "phone": 10,
        "address": 5,
        "industry": 5,
        "email": 5,
        "estimated_potential": 5,
        "contacts": 5,
        "source": 3,
        "tags": 2,
    }
    change = {
        "data_quality": {
            "weights": weights,
            "required": ["name"],
            "recommended": [f for f in weights if f != "name"],
            "threshold": 60,
        }
    }
    resp = await customers.patch(SETTINGS, json=change, as_=org.admin)
    assert resp.status_code == 200, resp.text
    thin_now = await _record(customers, org.rep_a, thin["id"])
    assert (thin_now["quality_score"], thin_now["incomplete"]) == (70, False)
    assert thin_now["sections"]["data_quality"]["missing_required"] == []

    bad = await customers.patch(
        SETTINGS, json={"data_quality": {"weights": {**weights, "name": 41}}}, as_=org.admin
    )
    assert bad.status_code == 422 and "add up to 101" in bad.text
    bad = await customers.patch(
        SETTINGS, json={"data_quality": {"required": ["name", "shoe_size"]}}, as_=org.admin
    )
    assert bad.status_code == 422 and "shoe_size" in bad.text


async def test_only_content_changes_count_as_recent(customers, org, clock, after_passes):
    c = await customers.create(org.rep_a, name="Fresh", level="B", **COMPLETE)
    assert c["quality_score"] == 94  # no contacts
    clock.advance(days=100)

    async def aged() -> bool:
        return bool((await _record(customers, org.rep_a, c["id"]))["quality_score"] == 89)

    await after_passes(aged, what="the pass to take the freshness points")
    # A new owner is no content change: the record has not been updated for 100 days.
    moved = await customers.patch(
        f"{API}/{c['id']}",
        json={"owner_id": org.rep_b.sub},
        headers={"If-Match": '"1"'},
        as_=org.manager_north,
    )
    assert moved.status_code == 200, moved.text
    after_move = await _record(customers, org.rep_b, c["id"])
    assert after_move["quality_score"] == 89
    assert after_move["sections"]["data_quality"]["stale"] is True
    # A contact added is a content change.
    await customers.post(f"{API}/{c['id']}/contacts", json={"name": "Wang"}, as_=org.rep_b)
    after_contact = await _record(customers, org.rep_b, c["id"])
    assert after_contact["quality_score"] == 100
    assert after_contact["sections"]["data_quality"]["stale"] is False


async def test_an_a_level_customer_with_incomplete_data_is_announced(customers, org):
    thin = await customers.create(org.rep_a, name="Thin", level="B", phone="13800000001")
    assert await customers.events({"customer.data_incomplete"}) == []
    # Raised to A while incomplete.
    raised = await customers.patch(
        f"{API}/{thin['id']}",
        json={"level": "A"},
        headers={"If-Match": '"1"'},
        as_=org.manager_north,
    )
    assert raised.status_code == 200, raised.text
    (event,) = await customers.events({"customer.data_incomplete"})
    assert event.subject == thin["id"] and event.data["level"] == "A"
    assert event.data["missing_required"] == ["address", "industry"]
    assert event.data["score"] == 50 and event.data["threshold"] == 70
    assert event.data["owner_id"] == org.rep_a.sub and event.data["team_id"] == org.team_north

    # Still incomplete after another change: no second alert. Complete, then falling below
    # the threshold again: a new one.
    await customers.patch(
        f"{API}/{thin['id']}",
        json={"address": "1 Road"},
        headers={"If-Match": '"2"'},
        as_=org.rep_a,
    )
    assert len(await customers.events({"customer.data_incomplete"})) == 1
    await customers.patch(
        f"{API}/{thin['id']}",
        json={"industry": "Retail", "email": "a@b.example"},
        headers={"If-Match": '"3"'},
        as_=org.rep_a,
    )
    assert (await _record(customers, org.rep_a, thin["id"]))["incomplete"] is False
    # Complete again: said once (the alert's end), with the new score.
    (completed,) = await customers.events({"customer.data_completed"})
    assert completed.subject == thin["id"] and completed.data["level"] == "A"
    assert completed.data["missing_required"] == [] and completed.data["score"] == 78
    assert completed.data["threshold"] == 70 and completed.data["industry"] == "Retail"
    await customers.patch(
        f"{API}/{thin['id']}", json={"industry": None}, headers={"If-Match": '"4"'}, as_=org.rep_a
    )
    second = (await customers.events({"customer.data_incomplete"}))[1]
    assert second.data["missing_required"] == ["industry"]
    assert len(await customers.events({"customer.data_completed"})) == 1

    # A stricter threshold makes a complete-enough A customer incomplete: announced too.
    good = await customers.create(org.rep_a, name="Good A", level="A", **COMPLETE)
    assert good["incomplete"] is False
    await customers.patch(SETTINGS, json={"data_quality": {"threshold": 99}}, as_=org.admin)
    third = (await customers.events({"customer.data_incomplete"}))[-1]
    assert third.subject == good["id"] and third.data["missing_recommended"] == ["contacts"]
