"""HTTP for the reports (`/api/v1/reports`): the weekly team report and the periodic summary."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from analytics.dependencies import KpiContext
from analytics.reports import service
from analytics.reports.schemas import Summary, SummaryQuery, WeeklyQuery, WeeklyReport
from servicekit.app import CurrentPrincipal, json_response
from servicekit.csvfiles import CSV_MEDIA_TYPES, media_type
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/reports", tags=["reports"])

NOT_VISIBLE = {"description": "No such scope (rep, team or region) the caller may see"}


def wants_csv(accept: str | None) -> bool:
    """Whether the first media type the client lists that we serve is CSV."""
    for part in (accept or "").split(","):
        kind = media_type(part)
        if kind in CSV_MEDIA_TYPES:
            return True
        if kind in ("application/json", "application/*", "*/*"):
            return False
    return False


@router.get(
    "/weekly",
    operation_id="reports_weekly",
    response_model=WeeklyReport,
    responses={
        200: {
            "description": "The report as JSON, or its per-rep table as CSV (Accept: text/csv)",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        404: NOT_VISIBLE,
    },
    summary="A team's weekly report: per team and rep, what was heard, complaints, next week",
)
async def get_weekly(
    query: Annotated[WeeklyQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
    request: Request,
) -> Response:
    report = await service.weekly(session, principal, ctx, query)
    # Accept is the client's choice of answer (OpenAPI ignores it as a declared parameter).
    if wants_csv(request.headers.get("accept")):
        name = f"weekly-{report['week']['label']}.csv"
        return Response(
            service.weekly_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return json_response(report)


@router.get(
    "/summary",
    operation_id="reports_summary",
    response_model=Summary,
    responses={404: NOT_VISIBLE},
    summary="A scope's period in figures: funnel, stages and bottleneck, beside before and target",
)
async def get_summary(
    query: Annotated[SummaryQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
) -> Response:
    return json_response(await service.summary(session, principal, ctx, query))
