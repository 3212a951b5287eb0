"""Event types of the visit log and their payloads: each carries what a consumer (analytics,
the customers card) needs without calling back: the customer with its level, region and
status at the time, the rep and team, and the visit's outcome."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

VISIT_COMPLETED = "visit.completed"
VISIT_CANCELLED = "visit.cancelled"

# The customer's facts a visit's event carries: its key -> the read model's column.
CUSTOMER_FACTS = {
    "customer_code": "code",
    "customer_name": "name",
    "region": "region",
    "level": "level",
    "customer_owner_id": "owner_id",
    "customer_team_id": "team_id",
}
# The payload's keys a logged visit's statement fills from the customer's row (the facts
# above, and the visit's columns it derives from the row): key -> the column of that row.
FROM_CUSTOMER_ROW = {
    **CUSTOMER_FACTS,
    "customer_status": "status",
    "distance_m": "distance_m",
    "far_from_customer": "far_from_customer",
}


def visit_facts(
    visit: Mapping[str, Any], customer: Any, rep_name: str | None, plan_id: Any
) -> dict[str, Any]:
    """The facts of every visit's event (`visit`: its `VisitRead` fields, or the columns it
    is written with); without `customer` (None) the keys of `FROM_CUSTOMER_ROW` are left for
    the statement that writes the event to fill."""
    facts = {
        "id": visit["id"],
        "rep_id": visit["rep_id"],
        "rep_name": rep_name,
        "team_id": visit["team_id"],
        "customer_id": visit["customer_id"],
        "customer_status": visit["customer_status"],
        "contact_id": visit["contact_id"],
        "purpose": visit["purpose"],
        "channel": visit["channel"],
        "plan_item_id": visit["plan_item_id"],
        "plan_id": plan_id,
        "status": visit["status"],
        "check_in_at": visit["check_in_at"],
        "check_out_at": visit["check_out_at"],
        "visit_date": visit["visit_date"],
        "distance_m": visit["distance_m"],
        "far_from_customer": visit["far_from_customer"],
    }
    if customer is None:
        return {k: v for k, v in facts.items() if k not in FROM_CUSTOMER_ROW}
    return facts | {key: getattr(customer, column) for key, column in CUSTOMER_FACTS.items()}


_COMPLETED_FACTS = (
    "effective",
    "order_taken",
    "order_amount",
    "collected_amount",
    "expenses_total",
    "memo",
    "next_step",
    "next_visit_on",
    "competitor_news",
    "customer_feedback",
    "completed_at",
)


def completed(
    visit: Mapping[str, Any], customer: Any, rep_name: str | None, plan_id: Any
) -> dict[str, Any]:
    facts = visit_facts(visit, customer, rep_name, plan_id)
    return facts | {key: visit[key] for key in _COMPLETED_FACTS}


def cancelled(
    visit: Mapping[str, Any], customer: Any, rep_name: str | None, plan_id: Any
) -> dict[str, Any]:
    return {
        **visit_facts(visit, customer, rep_name, plan_id),
        "reason": visit["cancel_reason"],
        "cancelled_at": visit["cancelled_at"],
    }
