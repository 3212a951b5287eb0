"""Opportunity events. Every payload carries the facts analytics needs without calling back:
source, owner, team, region, amount, stage, the customer and the lead, and the times that
make the cycle (created, won)."""

from __future__ import annotations

from typing import Any

OPPORTUNITY_CREATED = "opportunity.created"
OPPORTUNITY_UPDATED = "opportunity.updated"
OPPORTUNITY_STAGE_CHANGED = "opportunity.stage_changed"
OPPORTUNITY_WON = "opportunity.won"
OPPORTUNITY_LOST = "opportunity.lost"
OPPORTUNITY_REOPENED = "opportunity.reopened"
OPPORTUNITY_OWNER_CHANGED = "opportunity.owner_changed"

_FACTS = (
    "id",
    "customer_id",
    "lead_id",
    "name",
    "owner_id",
    "team_id",
    "source",
    "region",
    "amount",
    "stage",
    "expected_close_on",
    "created_at",
    "closed_at",
    "won_at",
    "version",
)


def facts(opportunity: dict[str, Any], probability: int) -> dict[str, Any]:
    data = {k: opportunity[k] for k in _FACTS}
    data["probability"] = probability
    # What the rep does next and when (analytics suggests it for the rep's next visit plan).
    data["next_action"] = opportunity.get("next_action")
    data["next_action_on"] = opportunity.get("next_action_on")
    return data
