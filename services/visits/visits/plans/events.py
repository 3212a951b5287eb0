"""Event types of the visit plans and their payloads (everything a consumer needs: the rep,
the team, the day, the items, the decision)."""

from __future__ import annotations

from typing import Any

from visits.plans.schemas import PlanRead

PLAN_SUBMITTED = "visit_plan.submitted"
PLAN_APPROVED = "visit_plan.approved"
PLAN_RETURNED = "visit_plan.returned"


def plan_facts(plan: PlanRead, rep_name: str | None) -> dict[str, Any]:
    return {
        "id": plan.id,
        "rep_id": plan.rep_id,
        "rep_name": rep_name,
        "team_id": plan.team_id,
        "plan_date": plan.plan_date,
        "area": plan.area,
        "status": plan.status,
        "version": plan.version,
        "item_count": len(plan.items),
        "items": [
            {
                "id": item.id,
                "customer_id": item.customer_id,
                "customer_code": item.customer_code,
                "purpose": item.purpose,
                "slot_start": item.slot_start,
                "slot_end": item.slot_end,
            }
            for item in plan.items
        ],
    }


def submitted(plan: PlanRead, rep_name: str | None, supervisor_id: Any) -> dict[str, Any]:
    return {**plan_facts(plan, rep_name), "supervisor_id": supervisor_id}


def decided(plan: PlanRead, rep_name: str | None) -> dict[str, Any]:
    return {
        **plan_facts(plan, rep_name),
        "decided_by": plan.decided_by,
        "decided_at": plan.decided_at,
        "comment": plan.comment,
    }
