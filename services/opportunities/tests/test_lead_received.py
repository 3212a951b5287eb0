"""A lead's one `lead.received` tells its facts and its steps on arrival as they were stored, on
every path a lead can take on arrival: assigned by a rule, left in the queue of a rule whose
team has no rep, left in the unassigned queue, nurtured; beside a challenger model, with a
known customer, received at a time given in another zone; pushed by a key and by a user.
Analytics builds the funnel and the source figures from these payloads without calling back,
so the payload is compared byte for byte with the one the stored lead makes."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson

from opportunities.leads.events import facts
from servicekit.db import json_text, to_asyncpg_dsn
from servicekit.testing.tokens import make_principal

LEADS = "/api/v1/leads"
MODELS = "/api/v1/scoring-models"
WRITER = make_principal("integration", kind="key", scopes=["leads:write"])
HOT = {"need_urgency": "high", "purchase_timing": "within_1_month", "budget_confirmed": "yes"}
COLD = {"need_urgency": "low", "purchase_timing": "later"}


# The payload's keys beyond the facts that the lead's columns give, by column.
FROM_COLUMNS = {
    "external_id": "external_id",
    "company": "company",
    "industry": "industry",
    "pushed_by": "created_by",
    "at": "created_at",  # every arriving lead is scored as it is created
    "model_id": "model_id",
}


def expected(lead: dict[str, Any], by_kind: str, versions: dict[Any, int]) -> str:
    """The payload the stored lead makes: its facts (`events.facts`), what identifies it, who
    pushed it, and its steps on arrival, written as the outbox writes payloads."""
    payload = {**facts(lead), **{key: lead[column] for key, column in FROM_COLUMNS.items()}}
    payload["by_kind"] = by_kind
    payload["model_version"] = versions[lead["model_id"]]
    challenger = lead["challenger_model_id"]
    payload["challenger"] = challenger and {
        "model_id": challenger,
        "version": versions[challenger],
        "score": lead["challenger_score"],
        "qualified": lead["challenger_qualified"],
    }
    payload["next_touch_on"] = lead["next_touch_on"]
    # The rule that gave it a rep; a lead left in a queue names none.
    payload["rule_id"] = lead["owner_id"] and lead["rule_id"]
    arrival = ["external_id", "company", "industry", "pushed_by", "by_kind", "at", "model_id"]
    order = [*facts(lead), *arrival, "model_version", "challenger", "next_touch_on", "rule_id"]
    return json_text({key: payload[key] for key in order})


async def stored(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(to_asyncpg_dsn(url))
    try:
        found: list[asyncpg.Record] = await conn.fetch(
            "SELECT o.data::text AS payload, o.position, l.* "
            "FROM opportunities.outbox o JOIN opportunities.leads l ON l.id::text = o.subject "
            "WHERE o.type = 'lead.received' ORDER BY o.position"
        )
        return found
    finally:
        await conn.close()


async def test_lead_received_is_the_payload_the_leads_facts_make(opportunities, org):
    svc = opportunities
    south = await svc.rule(org.admin, region="south", team_id=org.team_south)
    await svc.rule(org.admin, region="north", industry="retail", team_id=org.team_north)
    # A rule whose team has no active rep: its leads wait in that team's queue.
    await svc.deactivate_user(org.rep_sub)
    held = await svc.rule(org.admin, region="west", team_id=org.team_north_sub)
    customer = await svc.customer(phone="13800138000", region="SOUTH")
    challenger = await svc.ok(
        await svc.post(
            MODELS,
            json={
                "name": "Urgency only",
                "criteria": [
                    {
                        "key": "need_urgency",
                        "options": [{"value": "high", "points": 40}, {"value": "low", "points": 0}],
                    }
                ],
                "threshold": 30,
            },
            as_=org.admin,
        ),
        201,
    )
    await svc.ok(await svc.post(f"{MODELS}/{challenger['id']}/challenge", as_=org.admin))
    rows = [
        # Assigned by the south rule, its customer known by phone.
        {"source": "web_form", "external_id": "a", "company": "South Co", "region": "south",
         "phone": "138 0013 8000", "evaluation": HOT},
        # Assigned by the north retail rule; a company JSON must escape.
        {"source": "trade_show", "external_id": "b", "company": 'Wei "Golden" 公司\t\\ \U0001f600',
         "region": "north", "industry": "Retail", "evaluation": HOT},
        # Qualified, its rule's team without a rep: that team's queue.
        {"source": "referral", "company": "West Co", "region": "west", "evaluation": HOT},
        # Under the threshold: nurtured, with its next touch.
        {"source": "partner", "external_id": "d", "contact_name": "Only A Name",
         "evaluation": COLD},
        # Received earlier, in another zone, to the microsecond.
        {"source": "advertising", "external_id": "e", "company": "Early Co", "region": "south",
         "received_at": "2026-11-30T09:15:00.123456+08:00", "evaluation": HOT},
        # Qualified, no rule for the east: the unassigned queue.
        {"source": "web_form", "company": "East Co", "region": "east", "evaluation": HOT},
    ]  # fmt: skip
    result = await svc.ok(await svc.bulk(rows, as_=WRITER))
    assert result["created"] == len(rows), result
    by_user = await svc.ok(
        await svc.post(
            LEADS,
            json={"source": "other", "company": "Pushed by hand", "evaluation": COLD},
            as_=org.admin,
        ),
        201,
    )
    models = await svc.ok(await svc.get(MODELS, as_=org.admin))
    versions = {uuid.UUID(m["id"]): m["version"] for m in models["items"]}

    events = await stored(svc.database_url)
    ids = [r["id"] for r in result["results"]] + [by_user["id"]]
    # One each, in the order the rows came.
    assert [str(e["id"]) for e in events] == ids
    for event, kind in zip(events, ["key"] * len(rows) + ["user"], strict=True):
        assert event["payload"] == expected(dict(event), kind, versions), event["company"]

    data = [orjson.loads(e["payload"]) for e in events]
    assert data[0]["status"] == "assigned" and data[0]["rule_id"] == south["id"]
    assert data[0]["customer_id"] == customer["id"]
    assert data[1]["company"] == rows[1]["company"] and data[1]["team_id"] == str(org.team_north)
    assert data[2]["status"] == "qualified" and data[2]["owner_id"] is None
    assert events[2]["rule_id"] == uuid.UUID(held["id"]) and data[2]["rule_id"] is None
    assert data[2]["team_id"] == str(org.team_north_sub)
    assert data[5]["status"] == "qualified" and data[5]["team_id"] is None
    assert data[3]["status"] == "nurturing" and data[3]["next_touch_on"] is not None
    assert data[4]["received_at"] == "2026-11-30T01:15:00.123456+00:00"
    assert data[0]["challenger"] == {
        "model_id": challenger["id"],
        "version": challenger["version"],
        "score": 40,
        "qualified": True,
    }
    assert data[6]["by_kind"] == "user" and data[6]["pushed_by"] == org.admin.sub
    assert data[0]["by_kind"] == "key" and data[0]["pushed_by"] == WRITER.sub
