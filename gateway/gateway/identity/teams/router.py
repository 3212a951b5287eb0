"""/api/v1/teams: create, list, read, change, delete."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from gateway.identity.dependencies import AdminUser, AuthenticatorDep, ClientAddress, CurrentUser
from gateway.identity.models import Team
from gateway.identity.routing import SECURITY, identity_router, versioned_response
from gateway.identity.teams import service
from gateway.identity.teams.dependencies import ValidTeam
from gateway.identity.teams.schemas import TeamCreate, TeamRead, TeamUpdate
from servicekit.etag import OptionalIfMatch
from servicekit.openapi import with_headers
from servicekit.pagination import Page, PageDep, make_page
from servicekit.routing import SessionDep

router = identity_router()
TEAMS = "teams"


def _team_response(team: Team, status: int = 200) -> Response:
    return versioned_response(TeamRead, team, "teams", status)


@router.post(
    "/teams",
    status_code=201,
    response_model=TeamRead,
    operation_id="teams_create",
    tags=[TEAMS],
    responses={201: with_headers("ETag", "Location")},
    summary="Create a team (admin)",
    dependencies=SECURITY,
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
    operation_id="teams_list",
    tags=[TEAMS],
    summary="Teams: all for admins, the subtree for managers, their own for reps",
    dependencies=SECURITY,
)
async def list_teams(
    page: PageDep,
    session: SessionDep,
    principal: CurrentUser,
    parent_id: uuid.UUID | None = None,
) -> Page[TeamRead]:
    rows = await service.list_teams(session, principal, page, parent_id=parent_id)
    items, cursor = make_page(rows, page, lambda t: (t.created_at, t.id))
    return Page(
        items=[TeamRead.model_validate(t, from_attributes=True) for t in items],
        next_cursor=cursor,
    )


@router.get(
    "/teams/{team_id}",
    response_model=TeamRead,
    operation_id="teams_get",
    tags=[TEAMS],
    responses={200: with_headers("ETag")},
    summary="A team",
    dependencies=SECURITY,
)
async def get_team(team: ValidTeam) -> Response:
    return _team_response(team)


@router.patch(
    "/teams/{team_id}",
    response_model=TeamRead,
    operation_id="teams_update",
    tags=[TEAMS],
    summary="Change a team (admin)",
    dependencies=SECURITY,
)
async def update_team(
    body: TeamUpdate,
    if_match: OptionalIfMatch,
    team: ValidTeam,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    if_match.check(team.version)
    team = await service.update_team(session, authn, actor, team, body, address)
    return _team_response(team)


@router.delete(
    "/teams/{team_id}",
    status_code=204,
    operation_id="teams_delete",
    tags=[TEAMS],
    responses={409: {"description": "The team still has members or sub-teams"}},
    summary="Delete an empty team (admin)",
    dependencies=SECURITY,
)
async def delete_team(
    team: ValidTeam,
    session: SessionDep,
    actor: AdminUser,
    authn: AuthenticatorDep,
    address: ClientAddress,
) -> Response:
    await service.delete_team(session, authn, actor, team, address)
    return Response(status_code=204)
