"""Annotated dependencies of the identity routes: who is calling, and the records they may see."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi import Path as PathParam
from starlette.requests import Request

from gateway.identity import repository
from gateway.identity.authn import Authenticator
from gateway.identity.models import Team, User
from gateway.identity.service import can_see_team, can_see_user
from servicekit.auth import Principal
from servicekit.db import Database
from servicekit.errors import Forbidden, NotFound, Unauthorized
from servicekit.routing import SessionDep

_STATE_KEY = "identity_principal"


def get_authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


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


def _writes(request: Request) -> bool:
    return request.method not in ("GET", "HEAD")


async def visible_user(
    request: Request,
    user_id: Annotated[uuid.UUID, PathParam()],
    principal: CurrentUser,
    session: SessionDep,
) -> User:
    """The user (locked when the request changes it); 404 when the caller may not see it."""
    user = await repository.get_user(session, user_id, lock=_writes(request))
    if user is None or not can_see_user(principal, user.id, user.team_id):
        raise NotFound(f"no user {user_id}")
    return user


ValidUser = Annotated[User, Depends(visible_user)]


async def visible_team(
    request: Request,
    team_id: Annotated[uuid.UUID, PathParam()],
    principal: CurrentUser,
    session: SessionDep,
) -> Team:
    team = await repository.get_team(session, team_id, lock=_writes(request))
    if team is None or not can_see_team(principal, team.id):
        raise NotFound(f"no team {team_id}")
    return team


ValidTeam = Annotated[Team, Depends(visible_team)]
