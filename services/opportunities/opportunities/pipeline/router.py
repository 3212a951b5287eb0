"""HTTP of the pipeline, at `/api/v1/opportunities`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from opportunities.config import Settings
from opportunities.dependencies import SettingsDep
from opportunities.pipeline import repository, service
from opportunities.pipeline.dependencies import ChangeableOpportunity, VisibleOpportunity
from opportunities.pipeline.schemas import (
    Board,
    BoardQuery,
    OpportunityCreate,
    OpportunityListQuery,
    OpportunityPage,
    OpportunityRead,
    OpportunityUpdate,
    OwnerChangePage,
    OwnerChangeRead,
    Reopen,
    StageChangePage,
    StageChangeRead,
    StageInfo,
    StageMove,
    Stages,
    StalledPage,
    StalledQuery,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.calls import GatewayCalls
from servicekit.db import utcnow
from servicekit.etag import IfMatch, OptionalIfMatch, etag_for
from servicekit.openapi import with_headers
from servicekit.pagination import PageDep
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/opportunities", tags=["opportunities"])
BY_ID = "/{opportunity_id:uuid}"
NO_TEAM = "No such team, or none the caller may see"
WRONG_STAGE = "The opportunity's stage does not allow this (a closed one changes after a reopen)"


def _answer(settings: Settings, opportunity: Any, status: int = 200, **headers: str) -> Response:
    data = service.read(settings, opportunity, utcnow())
    body = OpportunityRead.model_validate(data).model_dump(mode="json")
    return json_response(body, status, {"ETag": etag_for(data["version"]), **headers})


@router.get(
    "/stages",
    response_model=Stages,
    summary="The pipeline's stages, in order",
    operation_id="opportunity_stages_list",
)
async def stages(settings: SettingsDep, principal: CurrentPrincipal) -> Stages:
    return Stages(items=[StageInfo(**s) for s in service.stages(settings, principal)])


@router.post(
    "",
    status_code=201,
    response_model=OpportunityRead,
    summary="Open an opportunity",
    operation_id="opportunities_create",
    responses={201: with_headers("ETag", "Location")},
)
async def create(
    body: OpportunityCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    calls: GatewayCalls,
) -> Response:
    opportunity = await service.create(session, principal, settings, calls, body)
    return _answer(settings, opportunity, 201, Location=f"{router.prefix}/{opportunity['id']}")


@router.get(
    "",
    response_model=OpportunityPage,
    summary="Opportunities you may see, newest first",
    operation_id="opportunities_list",
)
async def list_opportunities(
    query: Annotated[OpportunityListQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    rows, cursor = await service.list_opportunities(session, principal, settings, query)
    items = [OpportunityRead.model_validate(r) for r in rows]
    return json_response(OpportunityPage(items=items, next_cursor=cursor).model_dump(mode="json"))


@router.get(
    "/board",
    response_model=Board,
    summary="Open opportunities by stage, with count and amount per stage",
    operation_id="opportunities_board",
    responses={404: {"description": NO_TEAM}},
)
async def board(
    query: Annotated[BoardQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    # Built to `Board`'s shape in the service (ids, decimals, dates: no times) and written as
    # is: validating 250 items again cost as much as reading them (bench/README.md).
    return json_response(await service.board(session, principal, settings, query))


@router.get(
    "/stalled",
    response_model=StalledPage,
    summary="Open opportunities past their stage's usual time or the usual signing cycle",
    description="Longest stalled first. Each item says which rule it breaks (time in stage, "
    "or age beyond the signing cycle), the usual time, by how many days it is exceeded, and "
    "whether the usual time was learned from the team's history (the 80th percentile, once "
    "20 past moves exist) or is the stage's expected days.",
    operation_id="opportunities_stalled",
    responses={404: {"description": NO_TEAM}},
)
async def stalled(
    query: Annotated[StalledQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    items, cursor = await service.stalled(session, principal, settings, query)
    page = StalledPage.model_validate({"items": items, "next_cursor": cursor})
    return json_response(page.model_dump(mode="json"))


@router.get(
    BY_ID,
    response_model=OpportunityRead,
    summary="One opportunity",
    operation_id="opportunities_get",
    responses={200: with_headers("ETag")},
)
async def get_opportunity(opportunity: VisibleOpportunity, settings: SettingsDep) -> Response:
    return _answer(settings, opportunity)


@router.patch(
    BY_ID,
    response_model=OpportunityRead,
    summary="Change an opportunity (If-Match)",
    operation_id="opportunities_update",
    responses={409: {"description": WRONG_STAGE}},
)
async def patch_opportunity(
    opportunity: ChangeableOpportunity,
    body: OpportunityUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    if_match: IfMatch,
) -> Response:
    if_match.check(opportunity["version"])
    opportunity = await service.update(session, principal, settings, opportunity, body)
    return _answer(settings, opportunity)


@router.post(
    BY_ID + "/stage",
    response_model=OpportunityRead,
    summary="Move to another stage (won needs an amount, lost a reason)",
    operation_id="opportunities_move",
    responses={409: {"description": WRONG_STAGE}},
)
async def move_stage(
    opportunity: ChangeableOpportunity,
    body: StageMove,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    if_match: OptionalIfMatch,
) -> Response:
    if_match.check(opportunity["version"])
    opportunity = await service.move(session, principal, settings, opportunity, body)
    return _answer(settings, opportunity)


@router.post(
    BY_ID + "/reopen",
    response_model=OpportunityRead,
    summary="Reopen a won or lost opportunity (manager)",
    operation_id="opportunities_reopen",
    responses={409: {"description": WRONG_STAGE}},
)
async def reopen(
    opportunity: ChangeableOpportunity,
    body: Reopen,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    if_match: OptionalIfMatch,
) -> Response:
    if_match.check(opportunity["version"])
    opportunity = await service.reopen(session, principal, settings, opportunity, body)
    return _answer(settings, opportunity)


@router.get(
    BY_ID + "/stages",
    response_model=StageChangePage,
    summary="The stage history: every move, with the days spent in the stage left",
    operation_id="opportunities_stage_history",
)
async def stage_history(
    opportunity: VisibleOpportunity, session: SessionDep, page: PageDep
) -> Response:
    rows, cursor = await repository.changes(session, opportunity["id"], page)
    items = [StageChangeRead.model_validate(r, from_attributes=True) for r in rows]
    return json_response(StageChangePage(items=items, next_cursor=cursor).model_dump(mode="json"))


@router.get(
    BY_ID + "/owners",
    response_model=OwnerChangePage,
    summary="The owner history: every change of owner after it was opened, by whom and why",
    operation_id="opportunities_owner_history",
)
async def owner_history(
    opportunity: VisibleOpportunity, session: SessionDep, page: PageDep
) -> Response:
    rows, cursor = await repository.owners(session, opportunity["id"], page)
    items = [OwnerChangeRead.model_validate(r, from_attributes=True) for r in rows]
    return json_response(OwnerChangePage(items=items, next_cursor=cursor).model_dump(mode="json"))
