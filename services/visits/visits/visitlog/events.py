"""Event types of the visit log and their payloads: each carries what a consumer (analytics,
the customers card) needs without calling back: the customer with its level, region and
status at the time, the rep and team, and the visit's outcome."""

from __future__ import annotations

from typing import Any

from visits.visitlog.schemas import VisitRead

VISIT_COMPLETED = "visit.completed"
VISIT_CANCELLED = "visit.cancelled"


def visit_facts(
    visit: VisitRead, customer: Any, rep_name: str | None, plan_id: Any
) -> dict[str, Any]:
    return {
        "id": visit.id,
        "rep_id": visit.rep_id,
        "rep_name": rep_name,
        "team_id": visit.team_id,
        "customer_id": visit.customer_id,
        "customer_code": customer.code,
        "customer_name": customer.name,
        "region": customer.region,
        "level": customer.level,
        "customer_status": visit.customer_status,
        "customer_owner_id": customer.owner_id,
        "customer_team_id": customer.team_id,
        "contact_id": visit.contact_id,
        "purpose": visit.purpose,
        "channel": visit.channel,
        "plan_item_id": visit.plan_item_id,
        "plan_id": plan_id,
        "status": visit.status,
        "check_in_at": visit.check_in_at,
        "check_out_at": visit.check_out_at,
        "visit_date": visit.visit_date,
        "distance_m": visit.distance_m,
        "far_from_customer": visit.far_from_customer,
    }


def completed(
    visit: VisitRead, customer: Any, rep_name: str | None, plan_id: Any
) -> dict[str, Any]:
    return {
        **visit_facts(visit, customer, rep_name, plan_id),
        "effective": visit.effective,
        "order_taken": visit.order_taken,
        "order_amount": visit.order_amount,
        "collected_amount": visit.collected_amount,
        "expenses_total": visit.expenses_total,
        "memo": visit.memo,
        "next_step": visit.next_step,
        "next_visit_on": visit.next_visit_on,
        "competitor_news": visit.competitor_news,
        "customer_feedback": visit.customer_feedback,
        "completed_at": visit.completed_at,
    }


def cancelled(
    visit: VisitRead, customer: Any, rep_name: str | None, plan_id: Any
) -> dict[str, Any]:
    return {
        **visit_facts(visit, customer, rep_name, plan_id),
        "reason": visit.cancel_reason,
        "cancelled_at": visit.cancelled_at,
    }
