"""/api/v1/api-keys: create (the secret shown once), list, read, revoke (admins only)."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from gateway.identity.api_keys import service
from gateway.identity.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from gateway.identity.dependencies import AdminUser, AuthenticatorDep, ClientAddress
from gateway.identity.routing import SECURITY, dump, identity_router
from servicekit.app import json_response
from servicekit.openapi import with_headers
from servicekit.pagination import Page, PageDep, make_page
from servicekit.routing import SessionDep

router = identity_router()
API_KEYS = "api keys"


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    operation_id="api_keys_create",
    tags=[API_KEYS],
    responses={201: with_headers("Location", "Cache-Control")},
    summary="Create an API key; its secret is in `key`, shown this once",
    dependencies=SECURITY,
)
async def create_api_key(
    body: ApiKeyCreate,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    key, secret = await service.create_api_key(session, authn, actor, body, address)
    payload = dump(ApiKeyRead, key) | {"key": secret}
    return json_response(
        payload, 201, {"Location": f"/api/v1/api-keys/{key.id}", "Cache-Control": "no-store"}
    )


@router.get(
    "/api-keys",
    response_model=Page[ApiKeyRead],
    operation_id="api_keys_list",
    tags=[API_KEYS],
    summary="API keys, revoked ones included unless asked otherwise (admin)",
    dependencies=SECURITY,
)
async def list_api_keys(
    page: PageDep,
    session: SessionDep,
    _admin: AdminUser,
    authn: AuthenticatorDep,
    include_revoked: bool = True,
) -> Page[ApiKeyRead]:
    rows = await service.list_api_keys(session, authn, page, include_revoked=include_revoked)
    items, cursor = make_page(rows, page, lambda k: (k.created_at, k.id))
    return Page(
        items=[ApiKeyRead.model_validate(k, from_attributes=True) for k in items],
        next_cursor=cursor,
    )


@router.get(
    "/api-keys/{key_id}",
    response_model=ApiKeyRead,
    operation_id="api_keys_get",
    tags=[API_KEYS],
    summary="An API key (never its secret)",
    dependencies=SECURITY,
)
async def get_api_key(
    key_id: uuid.UUID, session: SessionDep, _admin: AdminUser, authn: AuthenticatorDep
) -> ApiKeyRead:
    key = await service.get_api_key(session, authn, key_id)
    return ApiKeyRead.model_validate(key, from_attributes=True)


@router.post(
    "/api-keys/{key_id}/revoke",
    response_model=ApiKeyRead,
    operation_id="api_keys_revoke",
    tags=[API_KEYS],
    summary="Revoke a key: refused from now on, on every replica",
    dependencies=SECURITY,
)
async def revoke_api_key(
    key_id: uuid.UUID,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> ApiKeyRead:
    key = await service.revoke_api_key(session, authn, actor, key_id, address)
    return ApiKeyRead.model_validate(key, from_attributes=True)


@router.delete(
    "/api-keys/{key_id}",
    status_code=204,
    operation_id="api_keys_delete",
    tags=[API_KEYS],
    summary="Revoke a key (keys are kept, revoked, for the audit trail)",
    dependencies=SECURITY,
)
async def delete_api_key(
    key_id: uuid.UUID,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    await service.revoke_api_key(session, authn, actor, key_id, address)
    return Response(status_code=204)
