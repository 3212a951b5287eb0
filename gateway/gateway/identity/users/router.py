"""/api/v1/users: create, list, read, change, deactivate."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from gateway.identity.dependencies import AdminUser, AuthenticatorDep, ClientAddress, CurrentUser
from gateway.identity.models import User
from gateway.identity.routing import SECURITY, identity_router, versioned_response
from gateway.identity.schemas import Role
from gateway.identity.users import service
from gateway.identity.users.dependencies import ValidUser
from gateway.identity.users.schemas import UserCreate, UserRead, UserUpdate
from servicekit.etag import OptionalIfMatch
from servicekit.openapi import with_headers
from servicekit.pagination import Page, PageDep, make_page
from servicekit.routing import SessionDep

router = identity_router()
USERS = "users"


def _user_response(user: User, status: int = 200) -> Response:
    return versioned_response(UserRead, user, "users", status)


@router.post(
    "/users",
    status_code=201,
    response_model=UserRead,
    operation_id="users_create",
    tags=[USERS],
    responses={
        201: with_headers("ETag", "Location"),
        409: {"description": "The email is taken"},
    },
    summary="Create a user (admin)",
    dependencies=SECURITY,
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
    operation_id="users_list",
    tags=[USERS],
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
    rows = await service.list_users(
        session, principal, page, team_id=team_id, role=role, active=active
    )
    items, cursor = make_page(rows, page, lambda u: (u.created_at, u.id))
    return Page(
        items=[UserRead.model_validate(u, from_attributes=True) for u in items],
        next_cursor=cursor,
    )


@router.get(
    "/users/{user_id}",
    response_model=UserRead,
    operation_id="users_get",
    tags=[USERS],
    responses={200: with_headers("ETag")},
    summary="A user",
    dependencies=SECURITY,
)
async def get_user(user: ValidUser) -> Response:
    return _user_response(user)


@router.patch(
    "/users/{user_id}",
    response_model=UserRead,
    operation_id="users_update",
    tags=[USERS],
    responses={409: {"description": "The email is taken, or the last admin would be lost"}},
    summary="Change a user (If-Match honoured); active=false deactivates at once",
    dependencies=SECURITY,
)
async def update_user(
    body: UserUpdate,
    if_match: OptionalIfMatch,
    user: ValidUser,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    if_match.check(user.version)
    user = await service.update_user(session, authn, actor, user, body, address)
    return _user_response(user)


@router.post(
    "/users/{user_id}/deactivate",
    response_model=UserRead,
    operation_id="users_deactivate",
    tags=[USERS],
    responses={
        200: with_headers("ETag"),
        409: {"description": "The last active admin cannot be deactivated"},
    },
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
    user = await service.deactivate_user(session, authn, actor, user, address)
    return _user_response(user)


@router.delete(
    "/users/{user_id}",
    status_code=204,
    operation_id="users_delete",
    tags=[USERS],
    responses={409: {"description": "The last active admin cannot be deactivated"}},
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
    await service.deactivate_user(session, authn, actor, user, address)
    return Response(status_code=204)
