"""Visits through the real gateway and the real customers service: a customer created in the
archive reaches the visits read model over the customers feed; a plan approved by the rep's
manager; a visit logged (far from the customer's point, flagged) whose memo and new due date
appear on the customer's card over the visits feed; the day's report with the log's figures;
the events in the feed; and the read model catching up after visits was down."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conftest import EVENTS_API_KEY, ok, organisation, wait_for
from fieldforce.apps import BY_NAME

pytestmark = pytest.mark.e2e
PASSWORD = "correct-horse-" + uuid.uuid4().hex[:8]
CUSTOMERS = "/api/v1/customers"
VISITS = "/api/v1/visits"
PLANS = "/api/v1/visit-plans"
HERE = {"lat": 31.2304, "lon": 121.4737}
FAR = {"lat": 31.2504, "lon": 121.4737}  # about 2.2 km north


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def known_to_visits(gw: httpx.AsyncClient, headers: dict[str, str], customer_id: str) -> Any:
    """Wait until the visits read model has the customer (it arrives over the feed)."""

    async def listed() -> Any:
        page = await ok(await gw.get(f"{VISITS}/follow-ups", headers=headers))
        return next((i for i in page["items"] if i["customer_id"] == customer_id), None)

    return await wait_for(listed)


async def test_a_visit_from_plan_to_the_customer_card(gw, admin_login):
    org = await organisation(gw, admin_login, PASSWORD)
    h, users = org["h"], org["users"]
    customer = await ok(
        await gw.post(
            CUSTOMERS,
            json={"name": f"Visited {uuid.uuid4().hex[:6]}", "region": "east", "level": "A",
                  "location": HERE},
            headers=h["rep_a"],
        ),
        201,
    )  # fmt: skip
    due = await known_to_visits(gw, h["rep_a"], customer["id"])
    assert due["never_visited"] is True and due["level"] == "A" and due["cadence_days"] == 7

    # Plan today's visit; only the rep's manager approves it.
    # On the hour, two hours ago: the slot stays within its day, the check-out in the past.
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    plan = await ok(
        await gw.post(
            PLANS,
            json={
                "plan_date": str(start.date()),
                "items": [
                    {
                        "customer_id": customer["id"],
                        "slot_start": iso(start),
                        "slot_end": iso(start + timedelta(minutes=30)),
                        "purpose": "order_taking",
                    }
                ],
            },
            headers=h["rep_a"],
        ),
        201,
    )
    plan_path = f"{PLANS}/{plan['id']}"
    for outsider in ("rep_b", "rep_sub", "other_manager"):
        assert (await gw.get(plan_path, headers=h[outsider])).status_code == 404
    await ok(await gw.post(f"{plan_path}/submit", headers=h["rep_a"]))
    assert (await gw.post(f"{plan_path}/approve", headers=h["rep_a"])).status_code == 403
    assert (await gw.post(f"{plan_path}/approve", headers=h["other_manager"])).status_code == 404
    await ok(await gw.post(f"{plan_path}/approve", headers=h["manager"]))

    # The visit, far from the customer's point: flagged, kept.
    memo = f"Agreed the spring order {uuid.uuid4().hex[:4]}"
    visit = await ok(
        await gw.post(
            VISITS,
            json={
                "customer_id": customer["id"],
                "channel": "in_person",
                "purpose": "order_taking",
                "plan_item_id": plan["items"][0]["id"],
                "check_in_at": iso(start),
                "check_out_at": iso(start + timedelta(minutes=25)),
                "check_in_location": FAR,
                "effective": True,
                "order_taken": True,
                "order_amount": "4200.00",
                "memo": memo,
            },
            headers={**h["rep_a"], "Idempotency-Key": f"e2e-{uuid.uuid4()}"},
        ),
        201,
    )
    assert visit["far_from_customer"] is True and 2000 < visit["distance_m"] < 2400
    assert (await gw.get(f"{VISITS}/{visit['id']}", headers=h["rep_b"])).status_code == 404
    assert (await gw.get(f"{VISITS}/{visit['id']}", headers=h["manager"])).status_code == 200

    # The card shows the memo and the new due date (over the visits feed).
    card_path = f"{CUSTOMERS}/{customer['id']}/card"

    async def card_with_memo() -> Any:
        card = await ok(await gw.get(card_path, headers=h["rep_a"]))
        section = card["sections"].get("visits") or {}
        memos = section.get("latest_memos") or []
        return section if memos and memos[0]["memo"] == memo else None

    section = await wait_for(card_with_memo)
    assert section["latest_memos"][0]["rep_id"] == users["rep_a"]["id"]
    assert section["latest_memos"][0]["channel"] == "in_person"
    assert section["last_effective_contact_on"] == str(start.date())
    assert section["next_follow_up_due_on"] == str(start.date() + timedelta(days=7))
    file = await ok(await gw.get(f"{CUSTOMERS}/{customer['id']}", headers=h["manager"]))
    assert file["sections"]["visits"]["latest_memos"][0]["memo"] == memo

    # The day's report: the log's figures, signed off by the manager.
    day = str(start.date())
    report = await ok(
        await gw.post(
            "/api/v1/daily-reports", json={"report_date": day, "mood": 4}, headers=h["rep_a"]
        ),
        201,
    )
    figures = report["figures"]
    assert figures["visits_completed"] == 1 and figures["order_amount"] == "4200.00"
    assert figures["plan_adherence"] == 1.0 and figures["far_check_ins"] == 1
    signed = await ok(
        await gw.post(
            f"/api/v1/daily-reports/{report['id']}/sign-off",
            json={"comment": "good"},
            headers=h["manager"],
        )
    )
    assert signed["status"] == "signed_off"

    # The feed, as an integration reads it through the gateway. A feed holds an event back
    # until every transaction that began before it has ended (no gaps for a follower), so on
    # a busy machine the newest ones may show a moment later.
    wanted = {"visit_plan.submitted", "visit_plan.approved", "daily_report.submitted"}
    wanted.add("daily_report.signed_off")

    async def settled() -> list[dict[str, Any]] | None:
        seen = await _feed(gw)
        mine = {e["type"] for e in seen if e["data"].get("rep_id") == users["rep_a"]["id"]}
        return seen if wanted <= mine else None

    events = await wait_for(settled)
    completed = [
        e for e in events if e["type"] == "visit.completed" and e["subject"] == visit["id"]
    ]
    assert completed and completed[0]["data"]["customer_status"] == "active"
    assert completed[0]["data"]["level"] == "A" and completed[0]["data"]["memo"] == memo
    types = {e["type"] for e in events if e["data"].get("rep_id") == users["rep_a"]["id"]}
    assert {"visit_plan.submitted", "visit_plan.approved", "daily_report.submitted",
            "daily_report.signed_off"} <= types  # fmt: skip


async def _feed(gw: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"limit": "1000", **({"after": after} if after else {})}
        page = await ok(
            await gw.get(
                "/api/v1/events/visits", params=params, headers={"X-API-Key": EVENTS_API_KEY}
            )
        )
        items += page["items"]
        after = page["next_cursor"]
        if not page["has_more"]:
            return items


async def test_the_read_model_catches_up_after_visits_was_down(gw, admin_login, stack):
    org = await organisation(gw, admin_login, PASSWORD)
    h = org["h"]
    customer = await ok(
        await gw.post(
            CUSTOMERS,
            json={"name": f"Moving {uuid.uuid4().hex[:6]}", "region": "east", "level": "C"},
            headers=h["rep_a"],
        ),
        201,
    )
    await known_to_visits(gw, h["rep_a"], customer["id"])
    stack.stop_app("visits")
    try:
        # While visits is down the manager raises the customer to level A.
        changed = await gw.patch(
            f"{CUSTOMERS}/{customer['id']}",
            json={"level": "A"},
            headers={**h["manager"], "If-Match": '"1"'},
        )
        assert changed.status_code == 200, changed.text
    finally:
        stack.start_app(BY_NAME["visits"])
        await asyncio.to_thread(stack.wait_ready, 60, ["visits"])

    async def at_level_a() -> Any:
        item = await known_to_visits(gw, h["rep_a"], customer["id"])
        return item if item["level"] == "A" else None

    item = await wait_for(at_level_a)
    assert item["cadence_days"] == 7
