"""How identity's feature routers are made and answer: the route class, the declared security
schemes, and the shaping helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from gateway.identity.dependencies import resolve_principal
from gateway.identity.models import Team, User
from servicekit.app import json_response
from servicekit.etag import etag_for
from servicekit.routing import IDEMPOTENCY_HEADER, KitRoute, kit_router

API_PREFIX = "/api/v1"
# Declared for the OpenAPI document (and generated clients); the Authenticator does the work.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)
SECURITY = [Security(bearer_scheme), Security(api_key_scheme)]


class IdentityRoute(KitRoute):
    """KitRoute (one commit, Idempotency-Key) whose idempotency is keyed by the caller the
    Authenticator found, since these routes carry no internal token. Anonymous calls (signing
    in, refreshing) have no one to key stored answers by: their Idempotency-Key is ignored."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        header = IDEMPOTENCY_HEADER.encode()

        async def route_handler(request: Request) -> Response:
            if (
                request.method == "POST"
                and IDEMPOTENCY_HEADER in request.headers
                and await resolve_principal(request) is None
            ):
                scope = dict(request.scope)
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != header]
                request = Request(scope, request.receive)
            return await handler(request)

        return route_handler


def identity_router() -> APIRouter:
    """A feature's router: public (the Authenticator, not the internal token, says who calls)."""
    router = kit_router(prefix=API_PREFIX)
    router.route_class = IdentityRoute
    return router


def bearer_token(request: Request) -> str | None:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj, from_attributes=True).model_dump(mode="json")


def versioned_response(
    model: type[BaseModel], record: User | Team, collection: str, status: int = 200
) -> Response:
    """A user or team with its ETag, and its Location when just created."""
    headers = {"ETag": etag_for(record.version)}
    if status == 201:
        headers["Location"] = f"{API_PREFIX}/{collection}/{record.id}"
    return json_response(dump(model, record), status, headers)
