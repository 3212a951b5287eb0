"""The event types analytics keeps from the other apps' feeds, and readers of their payloads.

Payloads are the producers' (customers/*/events.py, visits/*/events.py,
opportunities/*/events.py); each carries the facts of its record when it happened, so a
reader never calls back. Unknown types are ignored: a feed may grow.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from servicekit.outbox import Event, payload_uuid

CUSTOMERS, VISITS, OPPORTUNITIES = "customers", "visits", "opportunities"

# customers
CUSTOMER_CREATED = "customer.created"
CUSTOMER_CHANGES = frozenset(
    {
        "customer.updated",
        "customer.level_changed",
        "customer.owner_changed",
        "customer.invalidated",
        "customer.dormant",
        "customer.lost",
        "customer.reactivated",
        "customer.data_incomplete",
        "customer.data_completed",
    }
)
CUSTOMER_MERGED = "customer.merged"
ORDER_PLACED = "order.placed"
ORDER_CANCELLED = "order.cancelled"
ORDER_AMENDED = "order.amended"
PAYMENT_RECEIVED = "payment.received"
PAYMENT_REVERSED = "payment.reversed"

# visits
VISIT_COMPLETED = "visit.completed"
PLAN_EVENTS = frozenset({"visit_plan.submitted", "visit_plan.approved", "visit_plan.returned"})
DAILY_REPORT_EVENTS = frozenset(
    {"daily_report.submitted", "daily_report.signed_off", "daily_report.returned"}
)
CASE_EVENTS = frozenset(
    {
        "complaint.raised",
        "complaint.resolved",
        "complaint.closed",
        "complaint.reopened",
        "market_report.raised",
    }
)

# A daily report's remarks as analytics keeps them: (column, the payload's key).
REPORT_REMARKS = (
    ("competitor_news", "competitor_info"),
    ("customer_feedback", "customer_feedback"),
)
# When a case's step happened: the first of these its payload has (else the event's time).
CASE_STEP_TIMES = {
    "complaint.raised": ("raised_at",),
    "market_report.raised": ("raised_at",),
    "complaint.resolved": ("resolved_at",),
    "complaint.closed": ("closed_at",),
}

# opportunities
LEAD_PREFIX = "lead."
LEAD_CONTACTED = "lead.contacted"
LEAD_INVALIDATED = "lead.invalidated"
LEAD_CONVERTED = "lead.converted"
OPPORTUNITY_PREFIX = "opportunity."
OPPORTUNITY_STAGE_CHANGED = "opportunity.stage_changed"
CLOSED_STAGES = ("won", "lost")

# A customer's status when visited that makes the visit a re-engagement.
REENGAGED_STATUSES = ("dormant", "lost")


as_uuid = payload_uuid


def as_decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def as_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def occurred(event: Event, *keys: str) -> datetime:
    """When the fact happened: the first of `keys` the payload has (a historical import's
    `occurred_at`, a step's `at`), else when the event was written."""
    for key in (*keys, "occurred_at"):
        found = as_time(event.data.get(key))
        if found is not None:
            return found
    return event.time


def region(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def text(value: Any) -> str | None:
    """A free-text remark, or None when it says nothing."""
    return str(value).strip() or None if value is not None else None
