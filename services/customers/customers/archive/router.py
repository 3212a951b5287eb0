"""HTTP of the archive, mounted at the public paths the gateway forwards unchanged."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query
from starlette.responses import Response

from customers.archive import lifecycle, ownership, repository, service
from customers.archive import settings as archive_settings
from customers.archive.dependencies import ChangeableCustomer, Extensions, VisibleCustomer
from customers.archive.extensions import ArchiveExtensions
from customers.archive.schemas import (
    ChangeRequestRead,
    ChangeRequestStatus,
    ClaimBody,
    CustomerCard,
    CustomerCreate,
    CustomerFile,
    CustomerFileAsOf,
    CustomerListQuery,
    CustomerLookupQuery,
    CustomerRead,
    CustomerRef,
    CustomerUpdate,
    Decision,
    HandoverQuery,
    HandoverReport,
    HistoryEntry,
    LevelProposal,
    LostBody,
    OwnershipPeriodRead,
    ReleaseBody,
    TransferBody,
    TransferResult,
)
from customers.archive.settings import ArchiveSettingsChange, ArchiveSettingsDoc
from servicekit.app import CurrentPrincipal, json_response
from servicekit.auth import Principal
from servicekit.etag import IfMatch, OptionalIfMatch, Precondition, etag_for
from servicekit.inputs import Timestamp
from servicekit.openapi import header, with_headers
from servicekit.pagination import Page, PageDep
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/customers")
# `{customer_id:uuid}`: fixed paths of other features (/import, /data-quality, ...) never
# fall into the by-id routes, whatever order the routers are included in.
BY_ID = "/{customer_id:uuid}"
CUSTOMERS, SETTINGS, CHANGE_REQUESTS = "customers", "customer settings", "change requests"


def _read(customer: Any) -> dict[str, Any]:
    return CustomerRead.model_validate(customer, from_attributes=True).model_dump(mode="json")


def _etag(version: int) -> dict[str, str]:
    return {"ETag": etag_for(version)}


# --- settings -------------------------------------------------------------------------------
@router.get(
    "/settings",
    response_model=ArchiveSettingsDoc,
    operation_id="customer_settings_get",
    tags=[SETTINGS],
    responses={200: with_headers("ETag")},
    summary="The archive's settings",
)
async def get_settings(session: SessionDep, principal: CurrentPrincipal) -> Response:
    doc, version = await archive_settings.read(session, principal)
    return json_response(doc.model_dump(mode="json"), headers=_etag(version))


async def _save_settings(
    if_match: Precondition,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: ArchiveExtensions,
    change: Callable[[ArchiveSettingsDoc], ArchiveSettingsDoc],
) -> Response:
    current, version = await archive_settings.for_change(session, principal)
    if_match.check(version)
    doc = change(current)
    new_version = await service.save_settings(session, principal, current, doc, extensions)
    return json_response(doc.model_dump(mode="json"), headers=_etag(new_version))


@router.put(
    "/settings",
    response_model=ArchiveSettingsDoc,
    operation_id="customer_settings_replace",
    tags=[SETTINGS],
    summary="Replace the settings (admin)",
)
async def put_settings(
    body: ArchiveSettingsDoc,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
    if_match: OptionalIfMatch,
) -> Response:
    return await _save_settings(if_match, session, principal, extensions, lambda _current: body)


@router.patch(
    "/settings",
    response_model=ArchiveSettingsDoc,
    operation_id="customer_settings_update",
    tags=[SETTINGS],
    summary="Change some settings (admin)",
    description='Objects merge key by key (`{"cadence_days": {"A": 5}}` changes only A); '
    "any other value replaces, null included (a null pool limit means no limit). "
    "`If-Match` with the ETag of GET guards against a concurrent change.",
)
async def patch_settings(
    body: ArchiveSettingsChange,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
    if_match: OptionalIfMatch,
) -> Response:
    change = body.model_dump(mode="json", exclude_unset=True)
    return await _save_settings(
        if_match,
        session,
        principal,
        extensions,
        lambda current: archive_settings.changed(current, change),
    )


# --- bulk transfers -------------------------------------------------------------------------
@router.post(
    "/transfers",
    response_model=TransferResult,
    tags=[CUSTOMERS],
    operation_id="customers_transfer",
    summary="Move a rep's customers (to another rep or the pool)",
)
async def transfer(body: TransferBody, session: SessionDep, principal: CurrentPrincipal) -> Any:
    moved, team = await ownership.transfer(
        session,
        principal,
        from_owner_id=body.from_owner_id,
        to_owner_id=body.to_owner_id,
        customer_ids=body.customer_ids,
        reason=body.reason,
    )
    return TransferResult(
        moved=len(moved.rows),
        customer_ids=moved.ids,
        from_owner_id=body.from_owner_id,
        to_owner_id=body.to_owner_id,
        to_team_id=team,
    )


@router.get(
    "/handovers",
    response_model=HandoverReport,
    tags=[CUSTOMERS],
    operation_id="customers_handovers",
    summary="What a rep held in a period, and where each customer that left them went",
)
async def handovers(
    query: Annotated[HandoverQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    return json_response(await ownership.handover_report(session, principal, query))


# --- change requests ------------------------------------------------------------------------
@router.get(
    "/change-requests",
    response_model=Page[ChangeRequestRead],
    operation_id="change_requests_list",
    tags=[CHANGE_REQUESTS],
    summary="Change requests the caller may see (pending by default)",
)
async def list_change_requests(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: ChangeRequestStatus = ChangeRequestStatus.pending,
    customer_id: uuid.UUID | None = None,
) -> Page[ChangeRequestRead]:
    items, cursor = await service.list_change_requests(
        session, principal, page, status=status, customer_id=customer_id
    )
    return Page(
        items=[ChangeRequestRead.model_validate(r, from_attributes=True) for r in items],
        next_cursor=cursor,
    )


@router.get(
    "/change-requests/{request_id}",
    response_model=ChangeRequestRead,
    operation_id="change_requests_get",
    tags=[CHANGE_REQUESTS],
    summary="A change request",
)
async def get_change_request(
    request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> ChangeRequestRead:
    request = await service.read_change_request(session, principal, request_id)
    return ChangeRequestRead.model_validate(request, from_attributes=True)


async def _decide(
    request_id: uuid.UUID,
    body: Decision,
    session: Any,
    principal: Principal,
    extensions: ArchiveExtensions,
    approve: bool,
) -> ChangeRequestRead:
    request = await service.decide_change_request(
        session, principal, request_id, extensions, approve=approve, comment=body.comment
    )
    return ChangeRequestRead.model_validate(request, from_attributes=True)


@router.post(
    "/change-requests/{request_id}/approve",
    response_model=ChangeRequestRead,
    operation_id="change_requests_approve",
    tags=[CHANGE_REQUESTS],
    summary="Approve: the change is made (manager of the customer's team, or admin)",
)
async def approve_change_request(
    request_id: uuid.UUID,
    body: Decision,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
) -> ChangeRequestRead:
    return await _decide(request_id, body, session, principal, extensions, True)


@router.post(
    "/change-requests/{request_id}/reject",
    response_model=ChangeRequestRead,
    operation_id="change_requests_reject",
    tags=[CHANGE_REQUESTS],
    summary="Reject: nothing changes",
)
async def reject_change_request(
    request_id: uuid.UUID,
    body: Decision,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
) -> ChangeRequestRead:
    return await _decide(request_id, body, session, principal, extensions, False)


@router.post(
    "/change-requests/{request_id}/withdraw",
    response_model=ChangeRequestRead,
    operation_id="change_requests_withdraw",
    tags=[CHANGE_REQUESTS],
    summary="Take back your own pending change request",
)
async def withdraw_change_request(
    request_id: uuid.UUID, body: Decision, session: SessionDep, principal: CurrentPrincipal
) -> ChangeRequestRead:
    request = await service.withdraw_change_request(
        session, principal, request_id, comment=body.comment
    )
    return ChangeRequestRead.model_validate(request, from_attributes=True)


# --- levels ---------------------------------------------------------------------------------
@router.get(
    "/level-proposals",
    response_model=Page[LevelProposal],
    tags=[CUSTOMERS],
    operation_id="customers_level_proposals",
    summary="Customers whose proposed level differs from their level",
)
async def level_proposals(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    extensions: Extensions,
    region: str | None = None,
    owner_id: uuid.UUID | None = None,
) -> Page[LevelProposal]:
    return await service.level_proposals(
        session, principal, page, extensions, region=region, owner_id=owner_id
    )


# --- records --------------------------------------------------------------------------------
@router.post(
    "",
    status_code=201,
    response_model=CustomerRead,
    tags=[CUSTOMERS],
    operation_id="customers_create",
    responses={
        201: with_headers("ETag", "Location"),
        409: {
            "description": "Likely duplicates exist (listed in `duplicates`); send "
            "confirm_duplicates=true to create anyway, or an external_ref already taken"
        },
    },
    summary="Create a customer",
)
async def create_customer(
    body: CustomerCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
    confirm_duplicates: Annotated[
        bool, Query(description="create even when likely duplicates exist")
    ] = False,
) -> Response:
    customer = await service.create_customer(
        session, principal, body, extensions, confirm_duplicates=confirm_duplicates
    )
    headers = {**_etag(customer.version), "Location": f"{router.prefix}/{customer.id}"}
    return json_response(_read(customer), 201, headers)


@router.get(
    "/lookup",
    response_model=CustomerRef,
    tags=[CUSTOMERS],
    operation_id="customers_lookup",
    responses={404: {"description": "No customer by that reference that the caller may see"}},
    summary="Resolve a customer by id, code or external_ref",
    description="Exactly one of `id`, `code` or `external_ref` (with `source`). Answers how "
    "the customer is addressed and nothing about it: the one customer read of a key that "
    "only pushes orders (`orders:write`).",
)
async def lookup_customer(
    query: Annotated[CustomerLookupQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> CustomerRef:
    return await service.lookup_customer(session, principal, query)


@router.get(
    "",
    response_model=Page[CustomerRead],
    tags=[CUSTOMERS],
    operation_id="customers_list",
    summary="List and search the customers the caller may see",
)
async def list_customers(
    query: Annotated[CustomerListQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    # The rows are CustomerRead's columns in its order: they go out as they came.
    items, cursor = await service.list_customers(session, principal, query)
    return json_response({"items": items, "next_cursor": cursor})


@router.get(
    BY_ID,
    response_model=CustomerFile | CustomerFileAsOf,
    tags=[CUSTOMERS],
    operation_id="customers_get",
    responses={200: {"headers": {"ETag": header("ETag", required=False)}}},
    summary="The full file; with as_of, the file as it was then",
    description="The full file (`CustomerFile`, with its `ETag`). With `as_of`, the file as "
    "it was at that time (`CustomerFileAsOf`, which carries `as_of`), without ETag.",
)
async def get_customer(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
    as_of: Annotated[
        Timestamp | None,
        Query(description="the record as it was at this time (ISO 8601, with a time zone)"),
    ] = None,
) -> Response:
    if as_of is not None:
        return json_response(
            await service.customer_as_of(session, principal, customer_id, as_of, extensions)
        )
    file = await service.customer_file(session, principal, customer_id, extensions)
    return json_response(file.model_dump(mode="json"), headers=_etag(file.version))


@router.get(
    BY_ID + "/card",
    response_model=CustomerCard,
    tags=[CUSTOMERS],
    operation_id="customers_card",
    responses={200: with_headers("ETag")},
    summary="The rep's short card",
)
async def get_card(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
) -> Response:
    card, version = await service.customer_card(session, principal, customer_id, extensions)
    return json_response(card.model_dump(mode="json"), headers=_etag(version))


@router.patch(
    BY_ID,
    response_model=CustomerRead,
    tags=[CUSTOMERS],
    operation_id="customers_update",
    responses={
        202: {
            "model": ChangeRequestRead,
            "description": "A rep's change of a field that needs approval: filed as a change "
            "request (at Location), nothing changed yet",
            **with_headers("Location"),
        },
        409: {
            "description": "A change request for this customer is already pending, or the "
            "external_ref is taken"
        },
    },
    summary="Change a customer (If-Match)",
)
async def patch_customer(
    body: CustomerUpdate,
    customer: ChangeableCustomer,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
    if_match: IfMatch,
    confirm_duplicates: Annotated[
        bool, Query(description="change it even when it then looks like another customer")
    ] = False,
) -> Response:
    if_match.check(customer.version)
    customer, change_request = await service.update_customer(
        session, principal, customer, body, extensions, confirm_duplicates=confirm_duplicates
    )
    if change_request is not None:
        payload = ChangeRequestRead.model_validate(change_request, from_attributes=True)
        return json_response(
            payload.model_dump(mode="json"),
            202,
            {"Location": f"{router.prefix}/change-requests/{change_request.id}"},
        )
    return json_response(_read(customer), headers=_etag(customer.version))


@router.get(
    BY_ID + "/history",
    response_model=Page[HistoryEntry],
    tags=[CUSTOMERS],
    operation_id="customers_history",
    summary="Every change, oldest first",
)
async def get_history(
    customer: VisibleCustomer, session: SessionDep, page: PageDep
) -> Page[HistoryEntry]:
    rows, cursor = await repository.history_page(session, customer.id, page)
    return Page(
        items=[HistoryEntry.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=cursor,
    )


@router.get(
    BY_ID + "/ownership",
    response_model=list[OwnershipPeriodRead],
    tags=[CUSTOMERS],
    operation_id="customers_ownership",
    summary="The custody ledger: every owner (null = the pool) with from / to",
)
async def get_ownership(
    customer: VisibleCustomer, session: SessionDep
) -> list[OwnershipPeriodRead]:
    rows = await repository.ledger(session, customer.id)
    return [OwnershipPeriodRead.model_validate(r, from_attributes=True) for r in rows]


@router.post(
    BY_ID + "/release",
    response_model=CustomerRead,
    tags=[CUSTOMERS],
    operation_id="customers_release",
    responses={200: with_headers("ETag")},
    summary="Put back into the pool",
)
async def release(
    body: ReleaseBody,
    customer: ChangeableCustomer,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    await ownership.release(session, principal, customer, body.reason)
    return json_response(_read(customer), headers=_etag(customer.version))


@router.post(
    BY_ID + "/lost",
    response_model=CustomerRead,
    tags=[CUSTOMERS],
    operation_id="customers_declare_lost",
    responses={200: with_headers("ETag")},
    summary="Declare the customer lost (its team's manager), with the reason and the competitor",
)
async def declare_lost(
    body: LostBody,
    customer: ChangeableCustomer,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    await lifecycle.mark_lost(session, principal, customer, body.reason, body.competitor)
    return json_response(_read(customer), headers=_etag(customer.version))


@router.post(
    BY_ID + "/claim",
    response_model=CustomerRead,
    tags=[CUSTOMERS],
    operation_id="customers_claim",
    responses={200: with_headers("ETag")},
    summary="Claim from the pool (rep)",
)
async def claim(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    body: ClaimBody | None = None,
) -> Response:
    moved = await ownership.claim(session, principal, customer_id, body.reason if body else None)
    row = moved.rows[0]
    return json_response(
        CustomerRead.model_validate(row, from_attributes=True).model_dump(mode="json"),
        headers=_etag(row.version),
    )


__all__ = ["router"]
