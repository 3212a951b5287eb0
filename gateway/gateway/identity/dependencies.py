"""Annotated dependencies every identity feature uses: who is calling, from where, and the
gateway's own objects (the feature-specific ones, such as `ValidUser`, are in the features)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from gateway import clientaddr
from gateway.clientaddr import TrustedProxies
from gateway.identity.authn import Authenticator
from servicekit.auth import Principal
from servicekit.db import Database
from servicekit.errors import Forbidden, Unauthorized

_STATE_KEY = "identity_principal"


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def client_address(request: Request) -> str | None:
    """The caller's address by the gateway's one rule (trusted proxies' X-Forwarded-For)."""
    trusted: TrustedProxies = request.app.state.trusted_proxies
    return clientaddr.client_address(request.scope, trusted)


AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]
DbDep = Annotated[Database, Depends(get_db)]
ClientAddress = Annotated[str | None, Depends(client_address)]


async def resolve_principal(request: Request) -> Principal | None:
    """The caller by bearer token or API key, once per request (also for Idempotency-Key)."""
    state = request.scope.setdefault("state", {})
    if _STATE_KEY in state:
        cached: Principal | None = state[_STATE_KEY]
        return cached
    principal = await get_authenticator(request).authenticate(request)
    state[_STATE_KEY] = principal
    if principal is not None:
        # The kit's idempotency bookkeeping keys stored answers by this principal.
        state["principal"] = principal
    return principal


async def current_principal(request: Request) -> Principal:
    principal = await resolve_principal(request)
    if principal is None:
        raise Unauthorized("sign in: send 'Authorization: Bearer <access token>' or X-API-Key")
    return principal


CurrentIdentity = Annotated[Principal, Depends(current_principal)]


async def current_user(principal: CurrentIdentity) -> Principal:
    if principal.kind != "user":
        raise Forbidden("this endpoint is for signed-in users, not API keys")
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


async def admin_user(principal: CurrentIdentity) -> Principal:
    if principal.kind != "user" or not principal.is_admin:
        raise Forbidden("only an admin may do this")
    return principal


AdminUser = Annotated[Principal, Depends(admin_user)]


def writes(request: Request) -> bool:
    """Whether the request changes what it loads (the record is then locked)."""
    return request.method not in ("GET", "HEAD")
