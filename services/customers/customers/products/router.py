"""HTTP of the catalogue at `/api/v1/products`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query
from starlette.requests import Request
from starlette.responses import Response

from customers.products import service
from customers.products.schemas import (
    ProductCreate,
    ProductImportResult,
    ProductListQuery,
    ProductRead,
    ProductUpdate,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.etag import IfMatch, etag_for
from servicekit.openapi import with_headers
from servicekit.pagination import Page
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/products", tags=["products"])
BY_ID = "/{product_id:uuid}"


def _read(product: object) -> dict[str, object]:
    return ProductRead.model_validate(product, from_attributes=True).model_dump(mode="json")


@router.get(
    "",
    response_model=Page[ProductRead],
    operation_id="products_list",
    summary="The catalogue, by sku",
)
async def list_products(
    query: Annotated[ProductListQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    rows, cursor = await service.list_products(session, principal, query)
    return json_response({"items": [_read(r) for r in rows], "next_cursor": cursor})


@router.post(
    "",
    status_code=201,
    response_model=ProductRead,
    operation_id="products_create",
    responses={201: with_headers("ETag", "Location")},
    summary="Add a product (admin)",
)
async def create_product(
    body: ProductCreate, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    product = await service.create_product(session, principal, body)
    headers = {"ETag": etag_for(product.version), "Location": f"{router.prefix}/{product.id}"}
    return json_response(_read(product), 201, headers)


@router.post(
    "/import",
    response_model=ProductImportResult,
    operation_id="products_import",
    summary="Add or change up to 10,000 products by sku (JSON {rows: [...]} or text/csv)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["rows"],
                        "properties": {"rows": {"type": "array", "items": {"type": "object"}}},
                    }
                },
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "A header row naming the fields, then a product a row",
                    }
                },
            },
        }
    },
)
async def import_products(
    request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    result = await service.import_products(
        session, principal, await request.body(), request.headers.get("content-type")
    )
    return json_response(result)


@router.get(
    BY_ID,
    response_model=ProductRead,
    operation_id="products_get",
    responses={200: with_headers("ETag")},
    summary="A product",
)
async def get_product(
    product_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    product = await service.get_product(session, principal, product_id)
    return json_response(_read(product), headers={"ETag": etag_for(product.version)})


@router.patch(
    BY_ID,
    response_model=ProductRead,
    operation_id="products_update",
    summary="Change a product (admin, If-Match)",
)
async def update_product(
    product_id: uuid.UUID,
    body: ProductUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatch,
) -> Response:
    service.require_write(principal)
    product = await service.get_product(session, principal, product_id, for_update=True)
    if_match.check(product.version)
    product = await service.update_product(session, principal, product, body)
    return json_response(_read(product), headers={"ETag": etag_for(product.version)})
