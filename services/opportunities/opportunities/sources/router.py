"""HTTP of the lead sources, at `/api/v1/leads/sources`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from starlette.responses import Response

from opportunities.dependencies import SettingsDep
from opportunities.sources import service
from opportunities.sources.schemas import (
    CostIn,
    CostPage,
    CostRead,
    Effectiveness,
    Month,
    Period,
    Sources,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/leads/sources", tags=["lead sources"])


@router.get(
    "",
    response_model=Sources,
    summary="The lead sources leads may come from",
    operation_id="lead_sources_list",
)
async def sources(settings: SettingsDep, principal: CurrentPrincipal) -> Sources:
    return Sources(items=service.sources(settings, principal))


@router.get(
    "/effectiveness",
    response_model=Effectiveness,
    summary="Per source: leads, invalid, qualified, converted, won, revenue, cycle, cost per won",
    operation_id="lead_sources_effectiveness",
)
async def effectiveness(
    period: Annotated[Period, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    result = await service.effectiveness(session, principal, settings, period.from_, period.to)
    return json_response(Effectiveness.model_validate(result).model_dump(mode="json"))


@router.get(
    "/costs",
    response_model=CostPage,
    summary="The recorded costs of the period",
    operation_id="lead_source_costs_list",
)
async def costs(
    period: Annotated[Period, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    items = await service.costs(session, principal, period.from_, period.to)
    return json_response(CostPage.model_validate({"items": items}).model_dump(mode="json"))


@router.put(
    "/{source}/costs/{month}",
    response_model=CostRead,
    summary="Record what a source cost in a month (YYYY-MM; admin)",
    operation_id="lead_source_costs_put",
)
async def put_cost(
    source: str,
    month: Annotated[Month, Path(description="YYYY-MM")],
    body: CostIn,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    row = await service.put_cost(
        session, principal, settings, source, month, body.amount, body.note
    )
    return json_response(CostRead.model_validate(row).model_dump(mode="json"))
