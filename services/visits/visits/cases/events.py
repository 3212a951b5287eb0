"""Event types of the complaints and market reports: the case with its customer (level,
region, status) and its rep and team, so that an integration following the feed can act on a
critical complaint at once."""

from __future__ import annotations

from typing import Any

from visits.cases.schemas import CaseRead

COMPLAINT_RAISED = "complaint.raised"
COMPLAINT_RESOLVED = "complaint.resolved"
COMPLAINT_CLOSED = "complaint.closed"
COMPLAINT_REOPENED = "complaint.reopened"
MARKET_REPORT_RAISED = "market_report.raised"
ESCALATED = ("critical",)


def case_facts(case: CaseRead, customer: Any, rep_name: str | None) -> dict[str, Any]:
    return {
        "id": case.id,
        "rep_id": case.rep_id,
        "rep_name": rep_name,
        "team_id": case.team_id,
        "visit_id": case.visit_id,
        "customer_id": case.customer_id,
        "customer_code": customer.code if customer else None,
        "customer_name": customer.name if customer else None,
        "region": customer.region if customer else None,
        "level": customer.level if customer else None,
        "customer_status": customer.status if customer else None,
        "category": case.category,
        "severity": case.severity,
        "escalated": case.severity in ESCALATED,
        "status": case.status,
        "description": case.description,
        "raised_by": case.raised_by,
        "raised_on": case.raised_on,
        "raised_at": case.created_at,
        "reopen_count": case.reopen_count,
    }


def resolved(case: CaseRead, customer: Any, rep_name: str | None) -> dict[str, Any]:
    return {
        **case_facts(case, customer, rep_name),
        "resolution": case.resolution,
        "resolved_by": case.resolved_by,
        "resolved_at": case.resolved_at,
        "time_to_resolution_seconds": case.time_to_resolution_seconds,
    }


def closed(case: CaseRead, customer: Any, rep_name: str | None) -> dict[str, Any]:
    return {
        **resolved(case, customer, rep_name),
        "closed_by": case.closed_by,
        "closed_at": case.closed_at,
        "age_seconds": case.age_seconds,
    }


def reopened(
    case: CaseRead, customer: Any, rep_name: str | None, reason: str, actor: str
) -> dict[str, Any]:
    return {**case_facts(case, customer, rep_name), "reason": reason, "reopened_by": actor}
