"""Lead events. Every payload carries the lead's facts (source, owner, team, region, status,
score, the funnel's timestamps) so that analytics builds the funnel and the source figures
without calling back; `amount` is the opportunity's, once there is one."""

from __future__ import annotations

from typing import Any

LEAD_RECEIVED = "lead.received"
LEAD_UPDATED = "lead.updated"
LEAD_SCORED = "lead.scored"
LEAD_NURTURED = "lead.nurtured"
LEAD_ASSIGNED = "lead.assigned"
LEAD_CONTACTED = "lead.contacted"
LEAD_INVALIDATED = "lead.invalidated"
LEAD_CONVERTED = "lead.converted"

_FACTS = (
    "id",
    "source",
    "external_id",
    "status",
    "company",
    "region",
    "industry",
    "owner_id",
    "team_id",
    "customer_id",
    "received_at",
    "score",
    "qualified",
    "qualified_at",
    "assigned_at",
    "contacted_at",
    "converted_at",
    "invalidated_at",
    "version",
)


def facts(lead: dict[str, Any], amount: Any = None) -> dict[str, Any]:
    """`lead` is a dict of the lead's columns. Values stay Python objects: the outbox encodes
    them (UUIDs, times, exact decimals)."""
    data = {k: lead[k] for k in _FACTS}
    data["amount"] = amount
    return data
