"""Identity's HTTP routes (public: they authenticate with the Authenticator, not the internal
token): /api/v1/auth, /me, /users, /teams, /api-keys, /audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Query, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from gateway.identity import repository, service
from gateway.identity.dependencies import (
    AdminUser,
    AuthenticatorDep,
    ClientAddress,
    CurrentIdentity,
    CurrentUser,
    DbDep,
    ValidTeam,
    ValidUser,
    resolve_principal,
)
from gateway.identity.models import ApiKey, Team, User
from gateway.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    AuditRead,
    LogoutRequest,
    MeRead,
    PasswordChange,
    RefreshRequest,
    Role,
    TeamCreate,
    TeamRead,
    TeamUpdate,
    TokenResponse,
    UserCreate,
    UserRead,
    UserUpdate,
)
from servicekit.app import json_response
from servicekit.errors import NotFound, Unauthorized, ValidationFailed
from servicekit.etag import check_if_match, etag_for
from servicekit.pagination import Page, PageDep, make_page
from servicekit.routing import IDEMPOTENCY_HEADER, KitRoute, SessionDep, kit_router

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


router = kit_router(prefix="/api/v1", tags=["identity"])
router.route_class = IdentityRoute


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj, from_attributes=True).model_dump(mode="json")


# --- auth -------------------------------------------------------------------------------------


def _tokens(tokens: TokenResponse) -> Response:
    # RFC 6749 section 5.1: responses carrying tokens must not be cached.
    return json_response(
        tokens.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    tags=["auth"],
    summary="Sign in (OAuth2 password grant; also the refresh_token grant)",
)
async def token(
    db: DbDep,
    authn: AuthenticatorDep,
    address: ClientAddress,
    grant_type: Annotated[str, Form(pattern="^(password|refresh_token)$")] = "password",
    username: Annotated[str | None, Form(max_length=254)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=512)] = None,
    scope: Annotated[str, Form()] = "",
) -> Response:
    if grant_type == "refresh_token":
        if not refresh_token:
            raise ValidationFailed.field("refresh_token", "required for the refresh_token grant")
        return _tokens(await service.refresh(db, authn, refresh_token, address))
    if not username:
        raise ValidationFailed.field("username", "required: the user's email")
    if not password:
        raise ValidationFailed.field("password", "required")
    return _tokens(await service.login(db, authn, username, password, address))


@router.post(
    "/auth/refresh",
    response_model=TokenResponse,
    tags=["auth"],
    summary="Exchange a refresh token for new tokens (the old one stops working)",
)
async def refresh(
    body: RefreshRequest, db: DbDep, authn: AuthenticatorDep, address: ClientAddress
) -> Response:
    return _tokens(await service.refresh(db, authn, body.refresh_token, address))


@router.post(
    "/auth/logout",
    status_code=204,
    tags=["auth"],
    summary="End the session of the bearer token and/or of the refresh token sent",
    dependencies=SECURITY,
)
async def logout(
    request: Request,
    db: DbDep,
    authn: AuthenticatorDep,
    address: ClientAddress,
    body: LogoutRequest | None = None,
) -> Response:
    await service.logout(
        db,
        authn,
        access_token=_bearer_token(request),
        refresh_token=body.refresh_token if body else None,
        address=address,
    )
    return Response(status_code=204)


@router.get("/me", response_model=MeRead, tags=["auth"], dependencies=SECURITY)
async def me(principal: CurrentIdentity, session: SessionDep) -> MeRead:
    if principal.kind == "key":
        return MeRead(
            kind="key",
            id=uuid.UUID(principal.sub),
            name=principal.name,
            role=principal.role,
            visible_team_ids=[],
            scopes=sorted(principal.scopes),
        )
    user = await session.get(User, uuid.UUID(principal.sub))
    if user is None:
        raise Unauthorized("this account no longer exists")
    return MeRead(
        kind="user",
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        team_id=user.team_id,
        active=user.active,
        visible_team_ids=sorted(uuid.UUID(t) for t in principal.visible_team_ids),
        scopes=sorted(principal.scopes),
    )


@router.post(
    "/me/password",
    status_code=204,
    tags=["auth"],
    summary="Change one's own password; one's other sessions end",
    dependencies=SECURITY,
)
async def change_password(
    request: Request,
    body: PasswordChange,
    principal: CurrentUser,
    session: SessionDep,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    token = _bearer_token(request)
    current = uuid.UUID(authn.access_claims(token).session_id) if token else None
    await service.change_own_password(
        session, authn, principal, current, body.current_password, body.new_password, address
    )
    return Response(status_code=204)


# --- users ------------------------------------------------------------------------------------


def _versioned_response(
    model: type[BaseModel], record: User | Team, collection: str, status: int = 200
) -> Response:
    """A user or team with its ETag, and its Location when just created."""
    headers = {"ETag": etag_for(record.version)}
    if status == 201:
        headers["Location"] = f"/api/v1/{collection}/{record.id}"
    return json_response(_dump(model, record), status, headers)


def _user_response(user: User, status: int = 200) -> Response:
    return _versioned_response(UserRead, user, "users", status)


@router.post(
    "/users", status_code=201, response_model=UserRead, tags=["users"], dependencies=SECURITY
)
async def create_user(
    body: UserCreate,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    user = await service.create_user(session, authn, actor, body, address)
    return _user_response(user, 201)


@router.get(
    "/users",
    response_model=Page[UserRead],
    tags=["users"],
    summary="Users: all for admins, the subtree's for managers, oneself for reps",
    dependencies=SECURITY,
)
async def list_users(
    page: PageDep,
    session: SessionDep,
    principal: CurrentUser,
    team_id: uuid.UUID | None = None,
    role: Role | None = None,
    active: bool | None = None,
) -> Page[UserRead]:
    visible: frozenset[str] | None = None
    if not principal.is_admin:
        visible = principal.visible_team_ids if principal.is_manager else frozenset()
    stmt = repository.users_query(
        page,
        visible_team_ids=visible,
        self_id=principal.user_id,
        team_id=team_id,
        role=role,
        active=active,
    )
    rows = (await session.execute(stmt)).scalars().all()
    items, cursor = make_page(rows, page, lambda u: (u.created_at, u.id))
    return Page(
        items=[UserRead.model_validate(u, from_attributes=True) for u in items],
        next_cursor=cursor,
    )


@router.get("/users/{user_id}", response_model=UserRead, tags=["users"], dependencies=SECURITY)
async def get_user(user: ValidUser) -> Response:
    return _user_response(user)


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    tags=["users"],
    summary="Change a user (If-Match honoured); active=false deactivates at once",
    dependencies=SECURITY,
)
async def update_user(
    request: Request,
    body: UserUpdate,
    user: ValidUser,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    check_if_match(request, user.version, required=False)
    user = await service.update_user(session, authn, actor, user, body, address)
    return _user_response(user)


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserRead,
    tags=["users"],
    summary="Deactivate: the user's access and refresh tokens stop working at once",
    dependencies=SECURITY,
)
async def deactivate_user(
    user: ValidUser,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    if user.active:
        user = await service.update_user(
            session, authn, actor, user, UserUpdate(active=False), address
        )
    return _user_response(user)


@router.delete(
    "/users/{user_id}",
    status_code=204,
    tags=["users"],
    summary="Deactivate (users are never erased: their records keep an owner)",
    dependencies=SECURITY,
)
async def delete_user(
    user: ValidUser,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    if user.active:
        await service.update_user(session, authn, actor, user, UserUpdate(active=False), address)
    return Response(status_code=204)


# --- teams ------------------------------------------------------------------------------------


def _team_response(team: Team, status: int = 200) -> Response:
    return _versioned_response(TeamRead, team, "teams", status)


@router.post(
    "/teams", status_code=201, response_model=TeamRead, tags=["teams"], dependencies=SECURITY
)
async def create_team(
    body: TeamCreate,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    team = await service.create_team(session, authn, actor, body, address)
    return _team_response(team, 201)


@router.get(
    "/teams",
    response_model=Page[TeamRead],
    tags=["teams"],
    summary="Teams: all for admins, the subtree for managers, their own for reps",
    dependencies=SECURITY,
)
async def list_teams(
    page: PageDep,
    session: SessionDep,
    principal: CurrentUser,
    parent_id: uuid.UUID | None = None,
) -> Page[TeamRead]:
    visible = None if principal.is_admin else principal.visible_team_ids
    stmt = repository.teams_query(page, visible_team_ids=visible, parent_id=parent_id)
    rows = (await session.execute(stmt)).scalars().all()
    items, cursor = make_page(rows, page, lambda t: (t.created_at, t.id))
    return Page(
        items=[TeamRead.model_validate(t, from_attributes=True) for t in items],
        next_cursor=cursor,
    )


@router.get("/teams/{team_id}", response_model=TeamRead, tags=["teams"], dependencies=SECURITY)
async def get_team(team: ValidTeam) -> Response:
    return _team_response(team)


@router.patch("/teams/{team_id}", response_model=TeamRead, tags=["teams"], dependencies=SECURITY)
async def update_team(
    request: Request,
    body: TeamUpdate,
    team: ValidTeam,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    check_if_match(request, team.version, required=False)
    team = await service.update_team(session, authn, actor, team, body, address)
    return _team_response(team)


@router.delete("/teams/{team_id}", status_code=204, tags=["teams"], dependencies=SECURITY)
async def delete_team(
    team: ValidTeam,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    await service.delete_team(session, authn, actor, team, address)
    return Response(status_code=204)


# --- API keys ---------------------------------------------------------------------------------


@router.post(
    "/api-keys",
    status_code=201,
    response_model=ApiKeyCreated,
    tags=["api-keys"],
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
    payload = _dump(ApiKeyRead, key) | {"key": secret}
    return json_response(
        payload, 201, {"Location": f"/api/v1/api-keys/{key.id}", "Cache-Control": "no-store"}
    )


@router.get("/api-keys", response_model=Page[ApiKeyRead], tags=["api-keys"], dependencies=SECURITY)
async def list_api_keys(
    page: PageDep,
    session: SessionDep,
    _admin: AdminUser,
    authn: AuthenticatorDep,
    include_revoked: bool = True,
) -> Page[ApiKeyRead]:
    await authn.flush_key_usage()
    stmt = repository.api_keys_query(page, include_revoked=include_revoked)
    rows = (await session.execute(stmt)).scalars().all()
    items, cursor = make_page(rows, page, lambda k: (k.created_at, k.id))
    return Page(
        items=[ApiKeyRead.model_validate(k, from_attributes=True) for k in items],
        next_cursor=cursor,
    )


@router.get(
    "/api-keys/{key_id}", response_model=ApiKeyRead, tags=["api-keys"], dependencies=SECURITY
)
async def get_api_key(
    key_id: uuid.UUID, session: SessionDep, _admin: AdminUser, authn: AuthenticatorDep
) -> ApiKeyRead:
    await authn.flush_key_usage()
    key = await session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    return ApiKeyRead.model_validate(key, from_attributes=True)


@router.post(
    "/api-keys/{key_id}/revoke",
    response_model=ApiKeyRead,
    tags=["api-keys"],
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


@router.delete("/api-keys/{key_id}", status_code=204, tags=["api-keys"], dependencies=SECURITY)
async def delete_api_key(
    key_id: uuid.UUID,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    await service.revoke_api_key(session, authn, actor, key_id, address)
    return Response(status_code=204)


# --- audit ------------------------------------------------------------------------------------


@router.get(
    "/audit",
    response_model=Page[AuditRead],
    tags=["audit"],
    summary="Audit trail, newest first (sign-ins, failures, keys, user changes)",
    dependencies=SECURITY,
)
async def list_audit(
    page: PageDep,
    session: SessionDep,
    _admin: AdminUser,
    action: Annotated[
        str | None, Query(max_length=100, description="e.g. login, login.failed")
    ] = None,
    actor_id: Annotated[str | None, Query(max_length=100)] = None,
    subject_id: Annotated[str | None, Query(max_length=100)] = None,
    since: datetime | None = None,
) -> Page[AuditRead]:
    stmt = repository.audit_query(
        page, action=action, actor_id=actor_id, subject_id=subject_id, since=since
    )
    rows = (await session.execute(stmt)).scalars().all()
    items, cursor = make_page(rows, page, lambda a: (a.at, a.id))
    return Page(
        items=[AuditRead.model_validate(a, from_attributes=True) for a in items],
        next_cursor=cursor,
    )


__all__ = ["router"]
