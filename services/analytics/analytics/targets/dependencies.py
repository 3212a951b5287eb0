"""The target of the path, loaded under the access rule (404 when the caller may not see it)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends
from fastapi import Path as PathParam

from analytics.dependencies import KpiContext
from analytics.targets import service
from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep


async def _visible(
    target_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
) -> Any:
    return await service.visible_target(session, principal, ctx, target_id)


async def _locked(
    target_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: KpiContext,
) -> Any:
    return await service.visible_target(session, principal, ctx, target_id, for_update=True)


VisibleTarget = Annotated[Any, Depends(_visible)]
LockedTarget = Annotated[Any, Depends(_locked)]
