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


def facts(lead: dict[str, Any], amount: Any = None) -> dict[str, Any]:
    """`lead` is a dict of the lead's columns. Values stay Python objects: the outbox encodes
    them (UUIDs, times, exact decimals)."""
    data = {k: lead[k] for k in _FACTS}
    data["amount"] = amount
    return data


def received(
    lead: dict[str, Any], *, by_kind: str, model_version: int, challenger_version: int | None
) -> dict[str, Any]:
    """`lead.received`'s payload, from the lead's columns as intake left them: its facts
    (`facts`), what identifies it, who pushed it, and its steps on arrival. Every arriving
    lead is scored as it is created (`at` is its `created_at`; by the active model,
    `model_version`, and the challenger beside it, `challenger_version`), then nurtured (its
    `next_touch_on`) or placed: `rule_id` names the rule that gave it a rep, none for a lead
    left in a queue. One literal, built once per lead at flush."""
    challenger = lead["challenger_model_id"]
    return {
        "id": lead["id"],
        "source": lead["source"],
        "status": lead["status"],
        "region": lead["region"],
        "owner_id": lead["owner_id"],
        "team_id": lead["team_id"],
        "customer_id": lead["customer_id"],
        "received_at": lead["received_at"],
        "score": lead["score"],
        "qualified": lead["qualified"],
        "version": lead["version"],
        "amount": None,
        "external_id": lead["external_id"],
        "company": lead["company"],
        "industry": lead["industry"],
        "pushed_by": lead["created_by"],
        "by_kind": by_kind,
        "at": lead["created_at"],
        "model_id": lead["model_id"],
        "model_version": model_version,
        "challenger": None
        if challenger is None
        else {
            "model_id": challenger,
            "version": challenger_version,
            "score": lead["challenger_score"],
            "qualified": lead["challenger_qualified"],
        },
        "next_touch_on": lead["next_touch_on"],
        "rule_id": None if lead["owner_id"] is None else lead["rule_id"],
    }
