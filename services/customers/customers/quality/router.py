"""HTTP of data quality, merge, import and export, at the public customers paths.

Included before the archive's router; the by-id paths use the `uuid` convertor, so the fixed
paths (/data-quality, /import, /export) can never be taken for an id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from customers.archive.dependencies import Extensions
from customers.archive.models import CUSTOMERS
from customers.archive.schemas import Level
from customers.quality import export, importing, merge, service
from customers.quality.schemas import DataQualityPage, ImportResult, MergeBody, MergeResult
from servicekit.app import CurrentPrincipal, json_response
from servicekit.errors import ValidationFailed
from servicekit.pagination import PageDep
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/customers", tags=["data quality", "bulk"])
BY_ID = "/{customer_id:uuid}"


@router.get(
    "/data-quality",
    response_model=DataQualityPage,
    summary="Customers whose records are incomplete, worst first",
)
async def data_quality(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    level: Level | None = None,
    below: Annotated[int, Query(ge=1, le=101, description="score under this")] = 80,
    region: str | None = None,
    owner_id: uuid.UUID | None = None,
) -> Response:
    result = await service.incomplete_customers(
        session,
        principal,
        page,
        level=level,
        below=below,
        region=region.strip().upper() if region else None,
        owner_id=owner_id,
    )
    return json_response(result.model_dump(mode="json"))


@router.post(BY_ID + "/merge", response_model=MergeResult, summary="Fold a duplicate into this")
async def merge_customer(
    customer_id: uuid.UUID, body: MergeBody, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    result = await merge.merge_customers(session, principal, customer_id, body.duplicate_id)
    return json_response(result.model_dump(mode="json"))


@router.post(
    "/import",
    response_model=ImportResult,
    summary="Import up to 10,000 customers (JSON {rows: [...]} or text/csv)",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def import_customers(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
    confirm_duplicates: bool = False,
) -> Response:
    body = await request.body()
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type in ("text/csv", "application/csv"):
        raw = importing.parse_csv(body)
    elif content_type in ("application/json", ""):
        raw = importing.parse_json(body)
    else:
        raise ValidationFailed.field("Content-Type", "send application/json or text/csv")
    result = await importing.import_customers(
        session, principal, raw, extensions, confirm_duplicates=confirm_duplicates
    )
    return json_response(result)


@router.get("/export", summary="Stream the customers you may see as CSV")
async def export_customers(
    request: Request,
    principal: CurrentPrincipal,
    format: Literal["csv"] = "csv",
    region: str | None = None,
    level: Level | None = None,
    status: Literal["active", "invalid", "merged"] | None = None,
) -> Response:
    c = CUSTOMERS.c
    filters: list[sa.ColumnElement[bool]] = []
    if region:
        filters.append(c.region == region.strip().upper())
    if level:
        filters.append(c.level == level)
    if status:
        filters.append(c.status == status)
    stmt = export.export_statement(principal, filters)
    return StreamingResponse(
        export.stream_csv(request.app.state.db, stmt),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )
