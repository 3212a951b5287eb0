"""HTTP for targets (`/api/v1/targets`): set, read, change, decompose, check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from analytics.dependencies import AppSettings, KpiContext
from analytics.targets import service
from analytics.targets.dependencies import LockedTarget, VisibleTarget
from analytics.targets.schemas import (
    Decompose,
    Decomposition,
    TargetAnswer,
    TargetCheck,
    TargetCreate,
    TargetListQuery,
    TargetRead,
    TargetUpdate,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.etag import IfMatch, etag_for
from servicekit.pagination import Page, PageDep
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/targets", tags=["targets"])
BY_ID = "/{target_id:uuid}"


def _answer(target: dict[str, Any], warnings: list[dict[str, Any]]) -> dict[str, Any]:
    return {**target, "warnings": warnings}


@router.post(
    "",
    status_code=201,
    response_model=TargetAnswer,
    summary="Set a target (with the reasonableness check's warnings)",
)
async def create_target(
    body: TargetCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
    settings: AppSettings,
) -> Response:
    target, warnings = await service.create(session, principal, ctx, settings, body)
    headers = {"ETag": etag_for(target["version"]), "Location": f"{router.prefix}/{target['id']}"}
    return json_response(_answer(target, warnings), 201, headers)


@router.get("", response_model=Page[TargetRead], summary="The targets the caller may see")
async def list_targets(
    query: Annotated[TargetListQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
    page: PageDep,
) -> Response:
    items, cursor = await service.list_targets(session, principal, ctx, query, page)
    return json_response({"items": items, "next_cursor": cursor})


@router.get(BY_ID, response_model=TargetRead)
async def get_target(target: VisibleTarget) -> Response:
    return json_response(service.read(target), headers={"ETag": etag_for(target.version)})


@router.patch(BY_ID, response_model=TargetAnswer, summary="Change a target's value or note")
async def update_target(
    body: TargetUpdate,
    if_match: IfMatch,
    target: LockedTarget,
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
    settings: AppSettings,
) -> Response:
    if_match.check(target.version)
    changed, warnings = await service.update(session, principal, ctx, settings, target, body)
    return json_response(_answer(changed, warnings), headers={"ETag": etag_for(changed["version"])})


@router.delete(BY_ID, status_code=204, summary="Delete a target and its decomposition")
async def delete_target(
    target: LockedTarget, session: SessionDep, principal: CurrentPrincipal, ctx: KpiContext
) -> Response:
    await service.delete(session, principal, ctx, target)
    return Response(status_code=204)


@router.post(
    BY_ID + "/decompose",
    status_code=201,
    response_model=Decomposition,
    summary="Split the target one level down (teams, reps, quarters or months)",
)
async def decompose_target(
    body: Decompose,
    target: LockedTarget,
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
    settings: AppSettings,
) -> Response:
    parent, children = await service.decompose(session, principal, ctx, settings, target, body)
    return json_response({"parent": parent, "children": [_answer(t, w) for t, w in children]}, 201)


@router.get(BY_ID + "/check", response_model=TargetCheck, summary="The reasonableness check")
async def check_target(
    target: VisibleTarget, session: SessionDep, ctx: KpiContext, settings: AppSettings
) -> Response:
    return json_response(await service.checked(session, ctx, settings, target))
