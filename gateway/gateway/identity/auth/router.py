"""/api/v1/auth (sign in, refresh, sign out) and /api/v1/me (who am I, my password)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from starlette.requests import Request
from starlette.responses import Response

from gateway.identity.auth import service
from gateway.identity.auth.schemas import (
    LogoutRequest,
    MeRead,
    PasswordChange,
    RefreshRequest,
    TokenResponse,
)
from gateway.identity.dependencies import (
    AuthenticatorDep,
    ClientAddress,
    CurrentIdentity,
    CurrentUser,
    DbDep,
)
from gateway.identity.routing import SECURITY, bearer_token, identity_router
from servicekit.app import json_response
from servicekit.errors import ValidationFailed
from servicekit.routing import SessionDep

router = identity_router()


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
        access_token=bearer_token(request),
        refresh_token=body.refresh_token if body else None,
        address=address,
    )
    return Response(status_code=204)


@router.get("/me", response_model=MeRead, tags=["auth"], dependencies=SECURITY)
async def me(principal: CurrentIdentity, session: SessionDep) -> MeRead:
    return await service.me(session, principal)


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
    db: DbDep,
    session: SessionDep,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    await service.change_own_password(
        db,
        session,
        authn,
        principal,
        bearer_token(request),
        body.current_password,
        body.new_password,
        address,
    )
    return Response(status_code=204)
