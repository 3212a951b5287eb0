"""HTTP of the archive, mounted at the public paths the gateway forwards unchanged."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
import sqlalchemy as sa
from fastapi import Body, Query
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from customers.archive import events, files, levels, ownership, repository, service
from customers.archive import history as hist
from customers.archive import settings as archive_settings
from customers.archive.access import (
    can_see,
    require_read,
    require_write,
    visibility_filter,
)
from customers.archive.dependencies import ChangeableCustomer, VisibleCustomer
from customers.archive.exceptions import ChangeRequestNotFound, CustomerNotFound
from customers.archive.extensions import card_sections, file_sections
from customers.archive.models import CHANGE_REQUESTS, CUSTOMERS, ChangeRequest
from customers.archive.normalize import normalize_phone, normalize_region
from customers.archive.schemas import (
    ChangeRequestRead,
    ClaimBody,
    CustomerCard,
    CustomerCreate,
    CustomerFile,
    CustomerListQuery,
    CustomerRead,
    CustomerUpdate,
    Decision,
    HistoryEntry,
    LevelProposal,
    OwnershipPeriodRead,
    ReleaseBody,
    TransferBody,
    TransferResult,
)
from customers.archive.settings import ArchiveSettingsDoc
from servicekit.app import CurrentPrincipal, json_response
from servicekit.auth import Principal, authenticate
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.etag import check_if_match, etag_for
from servicekit.pagination import Page, PageDep, PageParams, keyset, make_page
from servicekit.routing import (
    SessionDep,
    direct,
    kit_router,
    openapi_query,
    query_params,
    request_session,
)

router = kit_router(prefix="/api/v1/customers", tags=["customers"])
C = CUSTOMERS.c
# `{customer_id:uuid}`: fixed paths of other features (/import, /data-quality, ...) never
# fall into the by-id routes, whatever order the routers are included in.
BY_ID = "/{customer_id:uuid}"

_settings_cache: dict[str | None, ArchiveSettingsDoc] = {}
# Records' JSON straight from their rows: orjson writes UUIDs and UTC times (as "Z") the way
# CustomerRead's JSON dump does, and Decimals go out as their strings (`default=str`).
_RECORD_JSON = orjson.OPT_UTC_Z


def _settings_from(text: str | None) -> ArchiveSettingsDoc:
    doc = _settings_cache.get(text)
    if doc is None:
        doc = (
            archive_settings.DEFAULTS
            if text is None
            else ArchiveSettingsDoc.model_validate_json(text)
        )
        if len(_settings_cache) > 16:
            _settings_cache.clear()
        _settings_cache[text] = doc
    return doc


def _read(customer: Any) -> dict[str, Any]:
    return CustomerRead.model_validate(customer, from_attributes=True).model_dump(mode="json")


def _json_cells(record: dict[str, Any]) -> dict[str, Any]:
    """A record read on the direct reads, whose JSON columns arrive as their text: written out
    as the JSON they hold."""
    location = record.get("location")
    if isinstance(location, str):
        record["location"] = orjson.Fragment(location)
    return record


def _etag(version: int) -> dict[str, str]:
    return {"ETag": etag_for(version)}


# --- settings -------------------------------------------------------------------------------
@router.get("/settings", response_model=ArchiveSettingsDoc, summary="The archive's settings")
async def get_settings(session: SessionDep, principal: CurrentPrincipal) -> Response:
    require_read(principal)
    doc, version = await archive_settings.load(session)
    return json_response(doc.model_dump(mode="json"), headers=_etag(version))


async def _save_settings(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    change: Callable[[ArchiveSettingsDoc], ArchiveSettingsDoc],
) -> Response:
    if principal.kind != "user" or not principal.is_admin:
        raise Forbidden("only admins change the customer settings")
    current, version = await archive_settings.load(session)
    check_if_match(request, version, required=False)
    doc = change(current)
    new_version = await archive_settings.save(session, doc, principal.sub)
    saved = doc.model_dump(mode="json")
    await events.emit(
        session,
        events.SETTINGS_CHANGED,
        None,
        events.settings_changed(saved, new_version, principal.sub),
    )
    return json_response(saved, headers=_etag(new_version))


@router.put("/settings", response_model=ArchiveSettingsDoc, summary="Replace the settings (admin)")
async def put_settings(
    request: Request, body: ArchiveSettingsDoc, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    return await _save_settings(request, session, principal, lambda _current: body)


@router.patch(
    "/settings",
    response_model=ArchiveSettingsDoc,
    summary="Change some settings (admin)",
    description='Objects merge key by key (`{"cadence_days": {"A": 5}}` changes only A); '
    "any other value replaces, null included (a null pool limit means no limit). "
    "`If-Match` with the ETag of GET guards against a concurrent change.",
)
async def patch_settings(
    request: Request,
    body: Annotated[dict[str, Any], Body()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    return await _save_settings(
        request, session, principal, lambda current: archive_settings.changed(current, body)
    )


# --- bulk transfers -------------------------------------------------------------------------
@router.post("/transfers", response_model=TransferResult, summary="Move a rep's customers")
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


# --- change requests ------------------------------------------------------------------------
@router.get("/change-requests", response_model=Page[ChangeRequestRead])
async def list_change_requests(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    status: Literal["pending", "approved", "rejected"] | None = "pending",
    customer_id: uuid.UUID | None = None,
) -> Page[ChangeRequestRead]:
    t = CHANGE_REQUESTS.c
    stmt = sa.select(CHANGE_REQUESTS).where(service.pending_for(principal))
    if status is not None:
        stmt = stmt.where(t.status == status)
    if customer_id is not None:
        stmt = stmt.where(t.customer_id == customer_id)
    rows = (await session.execute(keyset(stmt, [t.created_at, t.id], page))).all()
    items, cursor = make_page(rows, page, lambda r: [r.created_at, r.id])
    return Page(
        items=[ChangeRequestRead.model_validate(r, from_attributes=True) for r in items],
        next_cursor=cursor,
    )


@router.get("/change-requests/{request_id}", response_model=ChangeRequestRead)
async def get_change_request(
    request_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> ChangeRequestRead:
    request = await service.get_change_request(session, request_id)
    if not service.may_read_request(principal, request):
        raise ChangeRequestNotFound(request_id)
    return ChangeRequestRead.model_validate(request, from_attributes=True)


async def _decide(
    request_id: uuid.UUID, body: Decision, session: Any, principal: Principal, approve: bool
) -> ChangeRequestRead:
    request = await service.decide_change_request(
        session, principal, request_id, approve=approve, comment=body.comment
    )
    return ChangeRequestRead.model_validate(request, from_attributes=True)


@router.post("/change-requests/{request_id}/approve", response_model=ChangeRequestRead)
async def approve_change_request(
    request_id: uuid.UUID, body: Decision, session: SessionDep, principal: CurrentPrincipal
) -> ChangeRequestRead:
    return await _decide(request_id, body, session, principal, True)


@router.post("/change-requests/{request_id}/reject", response_model=ChangeRequestRead)
async def reject_change_request(
    request_id: uuid.UUID, body: Decision, session: SessionDep, principal: CurrentPrincipal
) -> ChangeRequestRead:
    return await _decide(request_id, body, session, principal, False)


# --- levels ---------------------------------------------------------------------------------
@router.get(
    "/level-proposals",
    response_model=Page[LevelProposal],
    summary="Customers whose proposed level differs from their level",
)
async def level_proposals(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    region: str | None = None,
    owner_id: uuid.UUID | None = None,
) -> Page[LevelProposal]:
    require_read(principal)
    doc, _ = await archive_settings.load(session)
    where = [visibility_filter(principal)]
    if region:
        where.append(C.region == normalize_region(region))
    if owner_id:
        where.append(C.owner_id == owner_id)
    stmt = keyset(levels.proposals_query(doc.level_thresholds, where), [C.created_at, C.id], page)
    rows = (await session.execute(stmt)).all()
    items, cursor = make_page(rows, page, lambda r: [r.created_at, r.id])
    return Page(
        items=[LevelProposal.model_validate(r, from_attributes=True) for r in items],
        next_cursor=cursor,
    )


# --- records --------------------------------------------------------------------------------
@router.post("", status_code=201, response_model=CustomerRead, summary="Create a customer")
async def create_customer(
    body: CustomerCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    confirm_duplicates: Annotated[
        bool, Query(description="create even when likely duplicates exist")
    ] = False,
) -> Response:
    customer = await service.create_customer(
        session, principal, body, confirm_duplicates=confirm_duplicates
    )
    headers = {**_etag(customer.version), "Location": f"{router.prefix}/{customer.id}"}
    return json_response(_read(customer), 201, headers)


def _like(text: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", text)


@router.get(
    "",
    response_model=Page[CustomerRead],
    summary="List and search customers",
    openapi_extra={"parameters": openapi_query(CustomerListQuery)},
)
@direct
async def list_customers(request: Request) -> Response:
    """A hot read: the query validated by one model, one statement on the direct reads."""
    principal = authenticate(request)
    require_read(principal)
    query = query_params(request, CustomerListQuery)
    page = PageParams(query.limit, query.cursor)
    filters: dict[str, Any] = {}
    if query.region:
        filters["region"] = normalize_region(query.region)
    for name, value in (
        ("level", query.level),
        ("owner_id", query.owner_id),
        ("team_id", query.team_id),
        ("status", query.status),
        ("tag", [query.tag] if query.tag else None),
    ):
        if value:
            filters[name] = value
    if query.pool is True:
        filters["pool"] = True
    elif query.pool is False:
        filters["not_pool"] = True
    if query.q:
        text = query.q.strip()
        filters["q_name"] = f"%{_like(text)}%"
        filters["q_code"] = f"{_like(text.upper())}%"
        digits = normalize_phone(text)
        if digits and len(digits) >= 3:
            filters["q_phone"] = f"{digits}%"
    rows, cursor = await repository.list_page(
        request.app.state.db.direct_reads(),
        principal,
        filters,
        page,
        query.sort,
        query.order == "desc",
    )
    # The rows are CustomerRead's columns in its order: each goes out as it came, encoded once
    # for the page (times as "Z", money as decimal strings, as the schema's JSON).
    return Response(
        orjson.dumps(
            {"items": [_json_cells(dict(r)) for r in rows], "next_cursor": cursor},
            default=str,
            option=_RECORD_JSON,
        ),
        media_type="application/json",
    )


_AS_OF = TypeAdapter(datetime)
_FILE_PARAMETERS = {
    "parameters": [
        {
            "name": "customer_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        },
        {
            "name": "as_of",
            "in": "query",
            "required": False,
            "description": "the record as it was at this time (ISO 8601, with a time zone)",
            "schema": {"type": "string", "format": "date-time"},
        },
    ]
}


def _as_of(request: Request) -> datetime | None:
    if not request.scope["query_string"]:
        return None  # the hot case: no query to parse
    text = request.query_params.get("as_of")
    if text is None:
        return None
    try:
        value = _AS_OF.validate_python(text)
    except ValidationError:
        msg = "not a date-time (ISO 8601, e.g. 2026-01-01T00:00:00Z)"
        raise ValidationFailed(
            f"as_of: {msg}", errors=[{"loc": ["query", "as_of"], "msg": msg}]
        ) from None
    if value.tzinfo is None:
        raise ValidationFailed.field("as_of", "needs a time zone (e.g. 2026-01-01T00:00:00Z)")
    return value


def _level_info_json(
    record: dict[str, Any], doc: ArchiveSettingsDoc, purchases: Decimal
) -> dict[str, Any]:
    level = record["level"]
    return {
        "level": level,
        "cadence_days": doc.cadence(level),
        "proposed_level": levels.proposed_level(
            purchases, record["estimated_potential"], doc.level_thresholds
        ),
        "purchases_12m": purchases,
    }


async def _file_as_of(
    request: Request, record: dict[str, Any], customer_id: uuid.UUID, as_of: datetime
) -> Response:
    session = request_session(request)
    newer = await hist.changes_since(session, customer_id, as_of)
    current = CustomerRead.model_validate(record).model_dump(mode="json")
    state = hist.replay_backwards(current, newer)
    if state is None:
        raise CustomerNotFound(customer_id)
    past = CustomerRead.model_validate(state).model_dump(mode="json")
    return json_response({**past, "as_of": as_of.isoformat()})


@router.get(
    BY_ID,
    response_model=CustomerFile,
    summary="The full file (or the record as of)",
    openapi_extra=_FILE_PARAMETERS,
)
@direct
async def get_customer(request: Request) -> Response:
    """The hottest read of the service: one statement on the direct reads, access checked on the
    row, one JSON encoding; no ORM session or transaction unless `as_of` or a Python section
    asks for one."""
    principal = authenticate(request)
    require_read(principal)
    customer_id: uuid.UUID = request.path_params["customer_id"]
    as_of = _as_of(request)
    row, query = await files.fetch_file(request.app.state.db.direct_reads(), customer_id)
    if row is None or not can_see(principal, row["owner_id"], row["team_id"]):
        raise CustomerNotFound(customer_id)
    record = {f: row[f] for f in files.RECORD_FIELDS}
    if as_of is not None:
        return await _file_as_of(request, record, customer_id, as_of)
    # The ledger and SQL sections are JSON already (built by PostgreSQL) and go out as they
    # came.
    sections: dict[str, Any] = {
        name: orjson.Fragment(row[label] or "null") for name, label in query.sections
    }
    if file_sections.items():
        current = CustomerRead.model_validate(record)
        sections.update(await file_sections.render(request_session(request), principal, current))
    doc = _settings_from(row["settings_data"])
    record["level_info"] = _level_info_json(record, doc, Decimal(row["purchases_12m"] or 0))
    record["ownership"] = orjson.Fragment(row["ledger"])
    record["sections"] = sections
    return Response(
        orjson.dumps(_json_cells(record), default=str, option=_RECORD_JSON),
        media_type="application/json",
        headers=_etag(record["version"]),
    )


@router.get(BY_ID + "/card", response_model=CustomerCard, summary="The rep's short card")
async def get_card(
    customer: VisibleCustomer, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    current = CustomerRead.model_validate(customer, from_attributes=True)
    doc, _ = await archive_settings.load(session)
    card = CustomerCard(
        **current.model_dump(include=set(CustomerCard.model_fields) - {"cadence_days", "sections"}),
        cadence_days=doc.cadence(current.level),
        sections=await card_sections.render(session, principal, current),
    )
    return json_response(card.model_dump(mode="json"), headers=_etag(current.version))


@router.patch(BY_ID, response_model=CustomerRead, summary="Change a customer (If-Match)")
async def patch_customer(
    request: Request,
    body: CustomerUpdate,
    customer: ChangeableCustomer,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    require_write(principal)
    check_if_match(request, customer.version)
    customer, change_request = await service.update_customer(session, principal, customer, body)
    if change_request is not None:
        payload = ChangeRequestRead.model_validate(change_request, from_attributes=True)
        return json_response(
            payload.model_dump(mode="json"),
            202,
            {"Location": f"{router.prefix}/change-requests/{change_request.id}"},
        )
    return json_response(_read(customer), headers=_etag(customer.version))


@router.get(BY_ID + "/history", response_model=Page[HistoryEntry], summary="Every change")
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
    summary="The custody ledger: every owner (null = the pool) with from / to",
)
async def get_ownership(
    customer: VisibleCustomer, session: SessionDep
) -> list[OwnershipPeriodRead]:
    rows = await repository.ledger(session, customer.id)
    return [OwnershipPeriodRead.model_validate(r, from_attributes=True) for r in rows]


@router.post(BY_ID + "/release", response_model=CustomerRead, summary="Put back into the pool")
async def release(
    body: ReleaseBody,
    customer: ChangeableCustomer,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    require_write(principal)
    await ownership.release(session, principal, customer, body.reason)
    return json_response(_read(customer), headers=_etag(customer.version))


@router.post(BY_ID + "/claim", response_model=CustomerRead, summary="Claim from the pool (rep)")
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


__all__ = ["ChangeRequest", "router"]


# The two hot reads first: a request is matched against the routes one by one, in order.
_HOT = (get_customer, list_customers)
router.routes.sort(key=lambda r: getattr(r, "endpoint", None) not in _HOT)
