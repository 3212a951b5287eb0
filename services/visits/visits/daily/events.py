"""Event types of the daily reports: the report with its figures, and the decision."""

from __future__ import annotations

from typing import Any

from visits.daily.schemas import DailyReportRead

REPORT_SUBMITTED = "daily_report.submitted"
REPORT_SIGNED_OFF = "daily_report.signed_off"
REPORT_RETURNED = "daily_report.returned"


def report_facts(report: DailyReportRead, rep_name: str | None) -> dict[str, Any]:
    return {
        "id": report.id,
        "rep_id": report.rep_id,
        "rep_name": rep_name,
        "team_id": report.team_id,
        "report_date": report.report_date,
        "status": report.status,
        "attendance": report.attendance,
        "mood": report.mood,
        "figures": report.figures.model_dump(mode="json"),
        "version": report.version,
    }


def submitted(report: DailyReportRead, rep_name: str | None, again: bool) -> dict[str, Any]:
    return {
        **report_facts(report, rep_name),
        "competitor_info": report.competitor_info,
        "customer_feedback": report.customer_feedback,
        "lessons": report.lessons,
        "tomorrow_focus": report.tomorrow_focus,
        "submitted_at": report.submitted_at,
        "resubmitted": again,
    }


def decided(report: DailyReportRead, rep_name: str | None) -> dict[str, Any]:
    return {
        **report_facts(report, rep_name),
        "decided_by": report.decided_by,
        "decided_at": report.decided_at,
        "comment": report.comment,
    }
