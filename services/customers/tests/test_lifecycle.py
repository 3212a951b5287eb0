"""Dormant, lost and reactivated customers: the lifecycle pass on the app's clock, the check
on every order, the manager's verdict, the history and the events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

API = "/api/v1/customers"
SETTINGS = f"{API}/settings"


async def _order(customers, principal, customer_id: str, day, amount: str = "100.00") -> Any:
    resp = await customers.post(
        f"{API}/{customer_id}/orders",
        json={"order_date": day.isoformat(), "amount": amount},
        as_=principal,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def _midnight(day) -> str:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_customer_turns_dormant_after_the_configured_days_and_an_order_revives_it(
    customers, org, clock, after_passes
):
    saved = await customers.patch(SETTINGS, json={"dormant_after_days": 30}, as_=org.admin)
    assert saved.status_code == 200, saved.text
    c = await customers.create(org.rep_a)
    never_ordered = await customers.create(org.rep_a)
    first_day = clock.now().date()
    await _order(customers, org.rep_a, c["id"], first_day)

    # 29 days later it is still active; the pass runs on the app's clock and finds nothing.
    clock.advance(days=29)
    await clock.until_sleeping(2)
    assert (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()["status"] == "active"

    clock.advance(days=2)

    async def dormant() -> bool:
        resp = await customers.get(API, params={"status": "dormant"}, as_=org.rep_a)
        return [x["id"] for x in resp.json()["items"]] == [c["id"]]

    await after_passes(dormant, what="the customer to turn dormant")
    since = _midnight(first_day + timedelta(days=30))
    record = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()
    assert record["status"] == "dormant" and record["status_since"] == since
    # A customer that never ordered is not dormant, however long it waits.
    assert (await customers.get(f"{API}/{never_ordered['id']}", as_=org.rep_a)).json()[
        "status"
    ] == "active"
    (entry, *_) = (await customers.get(f"{API}/{c['id']}/history", as_=org.rep_a)).json()["items"]
    assert entry["action"] == "status_changed" and entry["at"] == since
    assert entry["changes"] == {"status": {"old": "active", "new": "dormant"}}
    (event,) = await customers.events({"customer.dormant"})
    assert event.subject == c["id"]
    assert _at(event.data["occurred_at"]) == _at(event.data["since"]) == _at(since)
    assert event.data["from_state"] == "active" and event.data["status"] == "dormant"
    assert event.data["last_order_date"] == first_day.isoformat()
    assert event.data["owner_id"] == org.rep_a.sub and event.data["team_id"] == org.team_north

    # Its next order makes it active again, and says from which state and since when.
    today = clock.now().date()
    order = await _order(customers, org.rep_a, c["id"], today)
    record = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()
    assert record["status"] == "active" and record["last_order_date"] == today.isoformat()
    (revived,) = await customers.events({"customer.reactivated"})
    assert revived.data["from_state"] == "dormant"
    assert _at(revived.data["from_since"]) == _at(since)
    assert revived.data["order_id"] == order["id"] and revived.data["status"] == "active"
    assert (await customers.events({"customer.dormant"})) == [event]


async def test_an_order_shows_dormancy_the_pass_has_not_recorded_yet(customers, org, clock):
    """An old order (an import of past ones) makes the customer dormant at once, since the
    day it got too old; a newer order then revives it."""
    c = await customers.create(org.rep_a)
    today = clock.now().date()
    old = today - timedelta(days=400)
    await _order(customers, org.rep_a, c["id"], old)
    record = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()
    assert record["status"] == "dormant"
    assert record["status_since"] == _midnight(old + timedelta(days=180))
    # Another old order changes nothing; a recent one revives it.
    await _order(customers, org.rep_a, c["id"], old + timedelta(days=10))
    assert (await customers.events({"customer.reactivated"})) == []
    await _order(customers, org.rep_a, c["id"], today - timedelta(days=3))
    types = [e.type for e in await customers.events() if e.subject == c["id"]]
    assert types.count("customer.dormant") == 1 and types[-1] == "customer.reactivated"
    (revived,) = await customers.events({"customer.reactivated"})
    assert _at(revived.data["occurred_at"]) == _at(_midnight(today - timedelta(days=3)))


async def test_a_manager_declares_a_customer_lost_and_its_next_order_wins_it_back(
    customers, org, clock
):
    c = await customers.create(org.rep_a)
    url = f"{API}/{c['id']}/lost"
    body = {"reason": "went to a cheaper supplier", "competitor": "Rival Co"}
    # The rep may not; another team's manager does not even see it.
    assert (await customers.post(url, json=body, as_=org.rep_a)).status_code == 403
    assert (await customers.post(url, json=body, as_=org.manager_south)).status_code == 404
    missing = await customers.post(url, json={"competitor": "X"}, as_=org.manager_north)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["loc"] == ["body", "reason"]

    resp = await customers.post(url, json=body, as_=org.manager_north)
    assert resp.status_code == 200, resp.text
    lost = resp.json()
    assert (lost["status"], lost["lost_reason"], lost["lost_competitor"]) == (
        "lost",
        "went to a cheaper supplier",
        "Rival Co",
    )
    assert (await customers.post(url, json=body, as_=org.manager_north)).status_code == 409
    listed = await customers.get(API, params={"status": "lost"}, as_=org.manager_north)
    assert [x["id"] for x in listed.json()["items"]] == [c["id"]]
    (event,) = await customers.events({"customer.lost"})
    assert event.data["reason"] == body["reason"] and event.data["competitor"] == "Rival Co"
    assert (
        event.data["from_state"] == "active" and event.data["changed_by"] == org.manager_north.sub
    )

    clock.advance(days=1)
    await _order(customers, org.rep_a, c["id"], clock.now().date(), "80.00")
    back = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()
    assert back["status"] == "active" and back["lost_reason"] is None
    (revived,) = await customers.events({"customer.reactivated"})
    assert revived.data["from_state"] == "lost"
    assert _at(revived.data["from_since"]) == _at(lost["status_since"])
    history = (await customers.get(f"{API}/{c['id']}/history", as_=org.rep_a)).json()["items"]
    assert [e["changes"]["status"] for e in history if e["action"] == "status_changed"] == [
        {"old": "lost", "new": "active"},
        {"old": "active", "new": "lost"},
    ]


async def test_a_manager_takes_a_lost_verdict_back_but_nobody_wakes_a_dormant_customer(
    customers, org, clock
):
    c = await customers.create(org.rep_a)
    await customers.post(f"{API}/{c['id']}/lost", json={"reason": "gone"}, as_=org.manager_north)
    record = (await customers.get(f"{API}/{c['id']}", as_=org.rep_a)).json()
    denied = await customers.patch(
        f"{API}/{c['id']}",
        json={"status": "active"},
        headers={"If-Match": f'"{record["version"]}"'},
        as_=org.rep_a,
    )
    assert denied.status_code == 403
    taken = await customers.patch(
        f"{API}/{c['id']}",
        json={"status": "active"},
        headers={"If-Match": f'"{record["version"]}"'},
        as_=org.manager_north,
    )
    assert taken.status_code == 200, taken.text
    assert taken.json()["status"] == "active" and taken.json()["lost_reason"] is None
    (revived,) = await customers.events({"customer.reactivated"})
    assert revived.data["from_state"] == "lost" and "order_id" not in revived.data

    sleeper = await customers.create(org.rep_a)
    await _order(customers, org.rep_a, sleeper["id"], clock.now().date() - timedelta(days=365))
    asleep = (await customers.get(f"{API}/{sleeper['id']}", as_=org.rep_a)).json()
    assert asleep["status"] == "dormant"
    woken = await customers.patch(
        f"{API}/{sleeper['id']}",
        json={"status": "active"},
        headers={"If-Match": f'"{asleep["version"]}"'},
        as_=org.manager_north,
    )
    assert woken.status_code == 409
    # Dormant and lost customers stay in the pool's reach: a rep may claim one.
    released = await customers.post(
        f"{API}/{sleeper['id']}/release", json={"reason": "no time"}, as_=org.rep_a
    )
    assert released.status_code == 200, released.text
    claimed = await customers.post(f"{API}/{sleeper['id']}/claim", as_=org.rep_b)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "dormant"
