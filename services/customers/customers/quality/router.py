"""HTTP of data quality, merge, import and export, at the public customers paths.

The by-id paths use the `uuid` convertor, so the fixed paths (/data-quality, /import,
/export) can never be taken for an id, whatever order the routers are included in.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from customers.archive.dependencies import Extensions
from customers.archive.schemas import Level, Status
from customers.quality import formats, service
from customers.quality.schemas import (
    DataQualityPage,
    DuplicatePairsPage,
    ImportResult,
    MergeBody,
    MergeResult,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.openapi import with_headers
from servicekit.pagination import PageDep
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/customers")
QUALITY, BULK = "data quality", "import and export"
_ROWS_BODY = {
    "type": "object",
    "required": ["rows"],
    "properties": {
        "rows": {
            "type": "array",
            "maxItems": formats.MAX_ROWS,
            "items": {
                "description": "A customer, with the fields of customers_create; `code` (or "
                "`external_ref`) names one to update. A row that is not valid is an `error` "
                "outcome and never stops the others."
            },
        }
    },
}
BY_ID = "/{customer_id:uuid}"


@router.get(
    "/data-quality",
    response_model=DataQualityPage,
    operation_id="data_quality_list",
    tags=[QUALITY],
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
        region=region,
        owner_id=owner_id,
    )
    return json_response(result.model_dump(mode="json"))


@router.get(
    "/duplicates",
    response_model=DuplicatePairsPage,
    operation_id="customers_duplicate_pairs",
    tags=[QUALITY],
    summary="Likely duplicate pairs among the customers you may see (same phone, email, or "
    "name in a region)",
)
async def duplicates(session: SessionDep, principal: CurrentPrincipal, page: PageDep) -> Response:
    return json_response(await service.duplicate_pairs(session, principal, page))


@router.post(
    BY_ID + "/merge",
    response_model=MergeResult,
    operation_id="customers_merge",
    tags=[QUALITY],
    summary="Fold a duplicate into this customer",
)
async def merge_customer(
    customer_id: uuid.UUID, body: MergeBody, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    result = await service.merge_customers(session, principal, customer_id, body.duplicate_id)
    return json_response(result.model_dump(mode="json"))


@router.post(
    "/import",
    response_model=ImportResult,
    operation_id="customers_import",
    tags=[BULK],
    summary="Import up to 10,000 customers (JSON {rows: [...]} or text/csv)",
    responses={
        400: {"description": "The body cannot be read as JSON {rows: [...]} or as a CSV"},
        413: {"description": "More than 10,000 rows"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ROWS_BODY},
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "A header row naming the fields, then a customer a row",
                    }
                },
            },
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
    result = await service.import_customers(
        session,
        principal,
        await request.body(),
        request.headers.get("content-type"),
        extensions,
        confirm_duplicates=confirm_duplicates,
    )
    return json_response(result)


@router.get(
    "/export",
    operation_id="customers_export",
    tags=[BULK],
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The customers, a header row then one a line",
            "content": {"text/csv": {"schema": {"type": "string"}}},
            **with_headers("Content-Disposition"),
        }
    },
    summary="Stream the customers you may see as CSV",
)
async def export_customers(
    request: Request,
    principal: CurrentPrincipal,
    format: Literal["csv"] = "csv",
    region: str | None = None,
    level: Level | None = None,
    status: Status | None = None,
) -> Response:
    # Streamed from a connection of its own: the request's session has ended by then.
    body = await service.export_csv(
        request.app.state.db, principal, region=region, level=level, status=status
    )
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
    )
