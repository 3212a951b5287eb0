"""Lead events. Every payload carries the lead's facts (source, owner, team, region, status,
score, when it was received) so that analytics builds the funnel and the source figures
without calling back; each step's event says when the step happened (`at`); `amount` is the
opportunity's, once there is one. A lead's arrival is one `lead.received` saying what intake
did with it (scored, then nurtured, assigned by a rule or left in a queue); `lead.scored`,
`lead.nurtured` and `lead.assigned` announce those steps when they happen later."""

from __future__ import annotations

from typing import Any

LEAD_RECEIVED = "lead.received"
LEAD_UPDATED = "lead.updated"
LEAD_SCORED = "lead.scored"
LEAD_NURTURED = "lead.nurtured"
LEAD_ASSIGNED = "lead.assigned"
# Back in a queue without a rep (its rep was deactivated and no rule placed it again).
LEAD_UNASSIGNED = "lead.unassigned"
LEAD_CONTACTED = "lead.contacted"
LEAD_INVALIDATED = "lead.invalidated"
LEAD_CONVERTED = "lead.converted"

# Every lead event's; `lead.received` adds what identifies the lead (external id, company,
# industry), and each step's event its own time.
_FACTS = (
    "id",
    "source",
    "status",
    "region",
    "owner_id",
    "team_id",
    "customer_id",
    "received_at",
    "score",
    "qualified",
    "version",
)


# What a lead's steps on arrival add to its `lead.received` (null when the step did not
# happen): the scoring (`score` and `qualified` are among the facts), the nurture's next touch,
# the assignment rule (`owner_id` and `team_id` are among the facts).
ARRIVAL_STEPS = ("at", "model_id", "model_version", "challenger", "next_touch_on", "rule_id")


def facts(lead: dict[str, Any], amount: Any = None) -> dict[str, Any]:
    """`lead` is a dict of the lead's columns. Values stay Python objects: the outbox encodes
    them (UUIDs, times, exact decimals)."""
    data = {k: lead[k] for k in _FACTS}
    data["amount"] = amount
    return data
