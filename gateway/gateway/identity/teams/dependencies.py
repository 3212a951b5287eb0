"""`ValidTeam`: the team of the path, or the 404 itself."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi import Path as PathParam
from starlette.requests import Request

from gateway.identity.dependencies import CurrentUser, writes
from gateway.identity.models import Team
from gateway.identity.teams import service
from servicekit.routing import SessionDep


async def visible_team(
    request: Request,
    team_id: Annotated[uuid.UUID, PathParam()],
    principal: CurrentUser,
    session: SessionDep,
) -> Team:
    return await service.visible_team(session, principal, team_id, lock=writes(request))


ValidTeam = Annotated[Team, Depends(visible_team)]
