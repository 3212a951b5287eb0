"""/api/v1/auth (sign in, refresh, sign out) and /api/v1/me (who am I, my password)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form
from starlette.requests import Request
from starlette.responses import Response

from gateway.identity.auth import service
from gateway.identity.auth.schemas import (
    GrantType,
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
from servicekit.openapi import with_headers
from servicekit.routing import SessionDep

router = identity_router()
AUTH = "auth"


def _tokens(tokens: TokenResponse) -> Response:
    # RFC 6749 section 5.1: responses carrying tokens must not be cached.
    return json_response(
        tokens.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


_TOKENS = with_headers("Cache-Control")
_SIGN_IN_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {
        "description": "Wrong email or password, a deactivated account, or a refresh token "
        "that is not valid"
    },
    429: {
        "description": "Too many failed sign-ins for this account from this address (or "
        "from this address): locked for Retry-After seconds"
    },
}


@router.post(
    "/auth/token",
    response_model=TokenResponse,
    operation_id="auth_token",
    tags=[AUTH],
    responses={200: _TOKENS, **_SIGN_IN_REFUSED},
    summary="Sign in (OAuth2 password grant; also the refresh_token grant)",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {"username": "admin@example.com", "password": "correct horse"}
                }
            }
        }
    },
)
async def token(
    db: DbDep,
    authn: AuthenticatorDep,
    address: ClientAddress,
    grant_type: Annotated[GrantType, Form()] = GrantType.password,
    username: Annotated[str | None, Form(max_length=254)] = None,
    password: Annotated[str | None, Form(max_length=1024)] = None,
    refresh_token: Annotated[str | None, Form(max_length=512)] = None,
    scope: Annotated[str, Form()] = "",
) -> Response:
    if grant_type == GrantType.refresh_token:
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
    operation_id="auth_refresh",
    tags=[AUTH],
    responses={200: _TOKENS, **_SIGN_IN_REFUSED},
    summary="Exchange a refresh token for new tokens (the old one stops working)",
)
async def refresh(
    body: RefreshRequest, db: DbDep, authn: AuthenticatorDep, address: ClientAddress
) -> Response:
    return _tokens(await service.refresh(db, authn, body.refresh_token, address))


@router.post(
    "/auth/logout",
    status_code=204,
    operation_id="auth_logout",
    tags=[AUTH],
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


@router.get(
    "/me",
    response_model=MeRead,
    operation_id="me_get",
    tags=[AUTH],
    summary="Who is calling: the user or API key, role, teams and scopes",
    dependencies=SECURITY,
)
async def me(principal: CurrentIdentity, session: SessionDep) -> MeRead:
    return await service.me(session, principal)


@router.post(
    "/me/password",
    status_code=204,
    operation_id="me_change_password",
    tags=[AUTH],
    responses={429: _SIGN_IN_REFUSED[429]},
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
