"""A lead's arrival as the opportunities feed tells it now (one `lead.received` with its facts
as intake left them) and as it told it before (`lead.received`, `lead.scored`, then
`lead.assigned` or `lead.nurtured`): the same lead facts either way, so a replay of an older
feed and the current one agree."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from analytics.facts.models import LEADS

RECEIVED = "2026-11-03T01:00:00+00:00"
AT = "2026-11-03T01:00:01+00:00"


def facts(org: Any, lead_id: str, status: str, *, placed: bool) -> dict[str, Any]:
    """opportunities' `leads.events.facts` of one lead."""
    return {
        "id": lead_id,
        "source": "trade_show",
        "status": status,
        "region": "EAST",
        "owner_id": org.rep_a.sub if placed else None,
        "team_id": org.rep_a.team_id if placed else None,
        "customer_id": None,
        "received_at": RECEIVED,
        "score": 70 if placed else 20,
        "qualified": placed,
        "version": 1,
        "amount": None,
    }


async def lead_row(analytics: Any, lead_id: str) -> dict[str, Any]:
    async with analytics.session() as s:
        row = (await s.execute(sa.select(LEADS).where(LEADS.c.id == uuid.UUID(lead_id)))).one()
    return {k: v for k, v in row._mapping.items() if k != "id"}


async def test_one_arrival_event_gives_the_facts_the_three_step_events_gave(analytics, org):
    feeds = analytics.feeds
    assert feeds is not None
    arrival = {
        "external_id": "X-1",
        "company": "Arrival Co",
        "industry": None,
        "pushed_by": "key-1",
        "by_kind": "key",
        "at": AT,
        "model_id": str(uuid.uuid4()),
        "model_version": 1,
        "challenger": None,
        "next_touch_on": None,
        "rule_id": None,
    }
    pairs = []
    for placed, step, status in (
        (True, "lead.assigned", "assigned"),
        (False, "lead.nurtured", "nurturing"),
    ):
        old, new = str(uuid.uuid4()), str(uuid.uuid4())
        pairs.append((old, new))
        # Before: three events, the first two with the lead still `new`.
        feeds.publish(
            "lead.received", old, facts(org, old, "new", placed=False), source="opportunities"
        )
        feeds.publish(
            "lead.scored",
            old,
            {**facts(org, old, "new", placed=False), "at": AT},
            source="opportunities",
        )
        feeds.publish(
            step, old, {**facts(org, old, status, placed=placed), "at": AT}, source="opportunities"
        )
        # Now: one event with the facts as intake left the lead.
        feeds.publish(
            "lead.received",
            new,
            {**facts(org, new, status, placed=placed), **arrival},
            source="opportunities",
        )
    await analytics.sync_feed("opportunities")

    for old, new in pairs:
        assert await lead_row(analytics, old) == await lead_row(analytics, new)
    assigned = await lead_row(analytics, pairs[0][1])
    assert assigned["status"] == "assigned" and assigned["owner_id"] == uuid.UUID(org.rep_a.sub)
    assert (await lead_row(analytics, pairs[1][1]))["status"] == "nurturing"
