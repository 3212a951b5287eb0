"""`ValidUser`: the user of the path, or the 404 itself."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi import Path as PathParam
from starlette.requests import Request

from gateway.identity.dependencies import CurrentUser, writes
from gateway.identity.models import User
from gateway.identity.users import service
from servicekit.routing import SessionDep


async def visible_user(
    request: Request,
    user_id: Annotated[uuid.UUID, PathParam()],
    principal: CurrentUser,
    session: SessionDep,
) -> User:
    return await service.visible_user(session, principal, user_id, lock=writes(request))


ValidUser = Annotated[User, Depends(visible_user)]
