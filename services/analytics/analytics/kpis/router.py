"""HTTP for the KPIs (`/api/v1/kpis`): one metric for any range, and the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from analytics.dependencies import KpiContext
from analytics.kpis import service
from analytics.kpis.schemas import Dashboard, DashboardQuery, KpiAnswer, KpiQuery
from servicekit.app import CurrentPrincipal, json_response
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/kpis", tags=["kpis"])


@router.get(
    "",
    response_model=KpiAnswer,
    responses={404: {"description": "No such scope (rep, team or region) the caller may see"}},
    summary="One KPI of a scope over [from, to), grouped and explained on request",
)
async def get_kpi(
    query: Annotated[KpiQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
) -> Response:
    return json_response(await service.kpi(session, principal, ctx, query))


@router.get(
    "/dashboard",
    response_model=Dashboard,
    responses={404: {"description": "No such scope (rep, team or region) the caller may see"}},
    summary="Every KPI of a scope for a named period, the period before, and target completion",
)
async def get_dashboard(
    query: Annotated[DashboardQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
) -> Response:
    return json_response(await service.dashboard(session, principal, ctx, query))
