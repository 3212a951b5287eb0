"""HTTP of the daily visit plans (`/api/v1/visit-plans`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from servicekit.app import CurrentPrincipal
from servicekit.etag import IfMatch, OptionalIfMatch
from servicekit.pagination import Page, PageDep, PageParams, make_page
from servicekit.routing import SessionDep, kit_router
from visits.dependencies import SettingsDep
from visits.plans import repository, service
from visits.plans.dependencies import LockedPlan, VisiblePlan
from visits.plans.schemas import (
    PlanCreate,
    PlanItemRead,
    PlanListQuery,
    PlanRead,
    PlanUpdate,
    ReturnBody,
)
from visits.responses import answers, listing, record
from visits.schemas import Decision

router = kit_router(prefix="/api/v1/visit-plans", tags=["visit plans"])
BY_ID = "/{plan_id:uuid}"
MISSING = "No such plan, or one the caller may not see (another rep's is answered the same)"
ITEMS = (
    "An item is wrong (`errors` names it): a slot off the plan's day or ending before it "
    "starts, overlapping slots, a customer the rep may not see or the service has not heard of"
)
DECIDED = "Only a submitted plan is decided on"


@router.post(
    "",
    status_code=201,
    response_model=PlanRead,
    responses=answers(
        created=True,
        conflict="The rep already has a plan for that day (`existing_id` names it)",
        invalid=ITEMS,
    ),
    summary="Plan a day (a draft)",
)
async def create_plan(
    body: PlanCreate, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep
) -> Response:
    plan = await service.create(session, principal, settings, body)
    return record(plan, plan.version, status=201, location=f"{router.prefix}/{plan.id}")


@router.get(
    "",
    response_model=Page[PlanRead],
    summary="Plans by rep, days and state (a manager's approval queue: status=submitted)",
)
async def list_plans(
    query: Annotated[PlanListQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    items, cursor = await service.list_plans(
        session, principal, query, PageParams(query.limit, query.cursor)
    )
    return listing(items, cursor)


@router.get(
    BY_ID,
    response_model=PlanRead,
    responses=answers(missing=MISSING),
    summary="A plan with its items",
)
async def get_plan(plan: VisiblePlan, session: SessionDep) -> Response:
    result = await service.read(session, plan)
    return record(result, result.version)


@router.get(
    BY_ID + "/items",
    response_model=Page[PlanItemRead],
    responses=answers(record=False, missing=MISSING),
    summary="A plan's items",
)
async def get_items(plan: VisiblePlan, session: SessionDep, page: PageDep) -> Response:
    rows = await repository.items_page(session, plan.id, page)
    items, cursor = make_page(rows, page, lambda r: [r.slot_start, r.id])
    return listing([PlanItemRead.model_validate(r) for r in items], cursor)


@router.patch(
    BY_ID,
    response_model=PlanRead,
    responses=answers(
        missing=MISSING,
        conflict="Only a draft or returned plan is edited (an approved one is frozen)",
        invalid=ITEMS,
        post=False,
    ),
    summary="Edit a draft or returned plan (If-Match)",
)
async def patch_plan(
    if_match: IfMatch,
    body: PlanUpdate,
    plan: LockedPlan,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    if_match.check(plan.version)
    result = await service.update(session, principal, settings, plan, body)
    return record(result, result.version)


@router.post(
    BY_ID + "/submit",
    response_model=PlanRead,
    responses=answers(missing=MISSING, conflict="Only a draft or returned plan is submitted"),
    summary="Submit for approval",
)
async def submit_plan(
    if_match: OptionalIfMatch, plan: LockedPlan, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    if_match.check(plan.version)
    result = await service.submit(session, principal, plan)
    return record(result, result.version)


@router.post(
    BY_ID + "/approve",
    response_model=PlanRead,
    responses=answers(missing=MISSING, conflict=DECIDED),
    summary="Approve (the rep's manager)",
)
async def approve_plan(
    if_match: OptionalIfMatch,
    plan: LockedPlan,
    session: SessionDep,
    principal: CurrentPrincipal,
    body: Decision | None = None,
) -> Response:
    if_match.check(plan.version)
    result = await service.decide(
        session, principal, plan, approve=True, comment=body.comment if body else None
    )
    return record(result, result.version)


@router.post(
    BY_ID + "/return",
    response_model=PlanRead,
    responses=answers(missing=MISSING, conflict=DECIDED),
    summary="Return with a comment",
)
async def return_plan(
    if_match: OptionalIfMatch,
    body: ReturnBody,
    plan: LockedPlan,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    if_match.check(plan.version)
    result = await service.decide(session, principal, plan, approve=False, comment=body.comment)
    return record(result, result.version)


__all__ = ["router", "uuid"]
