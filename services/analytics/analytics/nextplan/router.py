"""HTTP for the next visit plan (`/api/v1/reports/next-plan`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from analytics.dependencies import KpiContext
from analytics.nextplan import service
from analytics.nextplan.schemas import NextPlan, NextPlanQuery
from servicekit.app import CurrentPrincipal, json_response
from servicekit.calls import GatewayCalls
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/reports", tags=["next plan"])


@router.get(
    "/next-plan",
    response_model=NextPlan,
    operation_id="reports_next_plan",
    responses={
        404: {"description": "No such rep the caller may plan for"},
        502: {"description": "The visits service failed"},
    },
    summary="Suggestions for a rep's next visit plan, with their reasons, as a plan body",
)
async def next_plan(
    query: Annotated[NextPlanQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
    calls: GatewayCalls,
) -> Response:
    return json_response(await service.next_plan(session, principal, ctx, calls, query))
