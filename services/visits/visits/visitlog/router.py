"""HTTP of the visit log (`/api/v1/visits`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from servicekit.app import CurrentPrincipal
from servicekit.etag import IfMatch, OptionalIfMatch
from servicekit.pagination import Page, PageParams
from servicekit.routing import SessionDep, kit_router
from visits.dependencies import SettingsDep
from visits.responses import answers, record, rows_listing
from visits.visitlog import service
from visits.visitlog.dependencies import LockedVisit, VisibleVisit
from visits.visitlog.schemas import (
    CancelBody,
    VisitCreate,
    VisitListQuery,
    VisitOutcome,
    VisitRead,
    VisitUpdate,
)

router = kit_router(prefix="/api/v1/visits", tags=["visits"])
BY_ID = "/{visit_id:uuid}"
MISSING = "No such visit, or one the caller may not see (another rep's is answered the same)"
FINAL = "The visit is completed or cancelled: it is final"
OUTCOME = (
    "A field is wrong (`errors` names it): check-out before check-in, a time in the future, "
    "money below zero or not a decimal string of cents, an order amount without order_taken"
)


@router.post(
    "",
    status_code=201,
    response_model=VisitRead,
    responses=answers(
        created=True,
        conflict="The plan item already has its visit",
        invalid=OUTCOME + "; a customer the caller may not see or the service has not heard "
        "of yet; a plan item not of the rep's approved plan for that customer and day; a rep "
        "the caller may not act for",
    ),
    summary="Log a visit (completed), or check in (planned)",
)
async def create_visit(
    body: VisitCreate, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep
) -> Response:
    visit = await service.create(session, principal, settings, body)
    location = f"{router.prefix}/{visit['id']}"
    return record(visit, visit["version"], status=201, location=location)


@router.get(
    "",
    response_model=Page[VisitRead],
    summary="Visits by rep, customer, days (company time) and state, newest first",
)
async def list_visits(
    query: Annotated[VisitListQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    items, cursor = await service.list_visits(
        session, principal, settings, query, PageParams(query.limit, query.cursor)
    )
    return rows_listing(items, cursor)


@router.get(BY_ID, response_model=VisitRead, responses=answers(missing=MISSING), summary="A visit")
async def get_visit(visit: VisibleVisit) -> Response:
    result = service.read(visit)
    return record(result, result.version)


@router.patch(
    BY_ID,
    response_model=VisitRead,
    responses=answers(missing=MISSING, conflict=FINAL, invalid=OUTCOME, post=False),
    summary="Change a planned visit (If-Match)",
)
async def patch_visit(
    if_match: IfMatch,
    body: VisitUpdate,
    visit: LockedVisit,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    if_match.check(visit.version)
    result = await service.update(session, principal, settings, visit, body)
    return record(result, result.version)


@router.post(
    BY_ID + "/complete",
    response_model=VisitRead,
    responses=answers(missing=MISSING, conflict=FINAL, invalid=OUTCOME),
    summary="Check out with the outcome",
)
async def complete_visit(
    if_match: OptionalIfMatch,
    body: VisitOutcome,
    visit: LockedVisit,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    if_match.check(visit.version)
    result = await service.complete(session, principal, settings, visit, body)
    return record(result, result.version)


@router.post(
    BY_ID + "/cancel",
    response_model=VisitRead,
    responses=answers(missing=MISSING, conflict=FINAL),
    summary="Cancel a planned visit",
)
async def cancel_visit(
    if_match: OptionalIfMatch,
    body: CancelBody,
    visit: LockedVisit,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    if_match.check(visit.version)
    result = await service.cancel(session, principal, visit, body.reason)
    return record(result, result.version)
