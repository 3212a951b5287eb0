"""HTTP of the leads, at `/api/v1/leads`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from opportunities.dependencies import SettingsDep
from opportunities.leads import conversion, intake, repository, service
from opportunities.leads.dependencies import ChangeableLead, VisibleLead
from opportunities.leads.schemas import (
    AssignBody,
    AssignmentPage,
    AssignmentRead,
    ContactedBody,
    ConversionRead,
    ConvertBody,
    IntakeResult,
    InvalidateBody,
    LeadIn,
    LeadListQuery,
    LeadPage,
    LeadRead,
    LeadUpdate,
    RequalifyBody,
)
from opportunities.pipeline import service as pipeline
from opportunities.pipeline.schemas import OpportunityRead
from servicekit.app import CurrentPrincipal, json_response
from servicekit.bulk import collector_paused
from servicekit.calls import GatewayCalls
from servicekit.db import utcnow
from servicekit.etag import IfMatch, etag_for
from servicekit.openapi import with_headers
from servicekit.pagination import PageDep
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/leads", tags=["leads"])
BY_ID = "/{lead_id:uuid}"
WRONG_STATE = "The lead's status does not allow this (a converted or invalid lead is closed)"
# A change of state: the lead as it is now, with its ETag.
CHANGED: dict[int | str, dict[str, Any]] = {
    200: with_headers("ETag"),
    409: {"description": WRONG_STATE},
}


async def _read(session: AsyncSession, lead: Any) -> dict[str, Any]:
    explained = service.read(lead, await service.explainers(session, [lead]))
    return LeadRead.model_validate(explained).model_dump(mode="json")


async def _answer(
    session: AsyncSession, lead: dict[str, Any], status: int = 200, **headers: str
) -> Response:
    body = await _read(session, lead)
    return json_response(body, status, {"ETag": etag_for(lead["version"]), **headers})


@router.post(
    "",
    response_model=LeadRead,
    status_code=201,
    summary="Push one lead (201 new; 200 when source + external_id name a known lead)",
    responses={
        200: {
            "model": LeadRead,
            "description": "the known lead, updated or unchanged",
            **with_headers("ETag"),
        },
        201: with_headers("ETag", "Location"),
    },
    operation_id="leads_push",
)
async def push_lead(
    body: LeadIn, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep
) -> Response:
    _, rows = await intake.receive(session, principal, settings, one=body)
    (row,) = rows
    assert row.lead is not None
    status = 201 if row.outcome == "created" else 200
    return await _answer(session, row.lead, status, Location=f"{router.prefix}/{row.lead['id']}")


@router.post(
    "/bulk",
    response_model=IntakeResult,
    summary="Push up to 10,000 leads (JSON {rows: [...]} or text/csv); one outcome per row",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
    operation_id="leads_push_bulk",
)
async def push_leads(
    request: Request, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep
) -> Response:
    with collector_paused():
        return await intake.receive_bulk(
            session,
            principal,
            settings,
            await request.body(),
            request.headers.get("content-type"),
            render=json_response,
        )


@router.get(
    "",
    response_model=LeadPage,
    summary="Leads you may see, newest received first",
    operation_id="leads_list",
)
async def list_leads(
    query: Annotated[LeadListQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    rows, cursor = await service.list_leads(session, principal, query)
    items = [LeadRead.model_validate(r) for r in rows]
    return json_response(LeadPage(items=items, next_cursor=cursor).model_dump(mode="json"))


@router.get(
    BY_ID,
    response_model=LeadRead,
    summary="One lead, its score explained",
    operation_id="leads_get",
    responses={200: with_headers("ETag")},
)
async def get_lead(lead: VisibleLead, session: SessionDep) -> Response:
    return await _answer(session, lead)


@router.patch(
    BY_ID,
    response_model=LeadRead,
    summary="Change a lead (If-Match); new inputs rescore it",
    operation_id="leads_update",
    responses={409: {"description": WRONG_STATE}},
)
async def patch_lead(
    lead: ChangeableLead,
    body: LeadUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    if_match: IfMatch,
) -> Response:
    if_match.check(lead["version"])
    lead = await service.update_lead(session, principal, settings, lead, body)
    return await _answer(session, lead)


@router.post(
    BY_ID + "/contacted",
    response_model=LeadRead,
    summary="The assigned rep's first contact",
    operation_id="leads_mark_contacted",
    responses={200: with_headers("ETag"), 409: {"description": WRONG_STATE}},
)
async def contacted(
    lead: ChangeableLead,
    body: ContactedBody,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    lead = await service.mark_contacted(session, principal, settings, lead, body)
    return await _answer(session, lead)


@router.post(
    BY_ID + "/invalidate",
    response_model=LeadRead,
    summary="Invalid (spam, duplicate, unreachable, no need, other): out of every queue",
    operation_id="leads_invalidate",
    responses={200: with_headers("ETag"), 409: {"description": WRONG_STATE}},
)
async def invalidate(
    lead: ChangeableLead,
    body: InvalidateBody,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    lead = await service.invalidate(session, principal, settings, lead, body)
    return await _answer(session, lead)


@router.post(
    BY_ID + "/requalify",
    response_model=LeadRead,
    summary="Score a nurtured lead again (with new inputs): assigned, or nurtured anew",
    operation_id="leads_requalify",
    responses={200: with_headers("ETag"), 409: {"description": WRONG_STATE}},
)
async def requalify(
    lead: ChangeableLead,
    body: RequalifyBody,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    lead = await service.requalify(session, principal, settings, lead, body)
    return await _answer(session, lead)


@router.post(
    BY_ID + "/assign",
    response_model=LeadRead,
    summary="Assign or reassign to a rep (manager)",
    operation_id="leads_assign",
    responses={200: with_headers("ETag"), 409: {"description": WRONG_STATE}},
)
async def assign(
    lead: ChangeableLead,
    body: AssignBody,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    lead = await service.assign_to(session, principal, settings, lead, body)
    return await _answer(session, lead)


@router.get(
    BY_ID + "/assignments",
    response_model=AssignmentPage,
    summary="Every assignment of the lead: from, to, by, rule, when",
    operation_id="leads_assignments_list",
)
async def assignments(lead: VisibleLead, session: SessionDep, page: PageDep) -> Response:
    rows, cursor = await repository.assignments(session, lead["id"], page)
    items = [AssignmentRead.model_validate(r, from_attributes=True) for r in rows]
    return json_response(AssignmentPage(items=items, next_cursor=cursor).model_dump(mode="json"))


@router.post(
    BY_ID + "/convert",
    status_code=201,
    response_model=ConversionRead,
    summary="Make an opportunity (and, when the lead has none, its customer)",
    description="The customer is the lead's, the one named by `customer_id`, or a new one "
    "created through the customers service under your authority (its duplicate check and "
    "rules apply: a likely duplicate is a 409 with the candidates; convert again with "
    "`customer_id` or `confirm_duplicates`). Answers the lead and the opportunity.",
    operation_id="leads_convert",
    responses={
        201: with_headers("Location"),
        409: {
            "description": "The new customer looks like existing ones (the candidates are "
            "listed), or the lead's status does not allow a conversion"
        },
    },
)
async def convert(
    lead: ChangeableLead,
    body: ConvertBody,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    calls: GatewayCalls,
) -> Response:
    lead, opportunity, created = await conversion.convert(
        session, principal, settings, calls, lead, body
    )
    result = ConversionRead(
        lead=LeadRead.model_validate(await _read(session, lead)),
        opportunity=OpportunityRead.model_validate(pipeline.read(settings, opportunity, utcnow())),
        customer_id=lead["customer_id"],
        customer_created=created,
    )
    return json_response(
        result.model_dump(mode="json"),
        201,
        {"Location": f"/api/v1/opportunities/{opportunity['id']}"},
    )
