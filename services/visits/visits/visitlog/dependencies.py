"""The visit of the path, loaded under the access rule (404 itself)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep
from visits.visitlog import service


async def _visible(visit_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.visible_visit(session, principal, visit_id)


async def _locked(visit_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.visible_visit(session, principal, visit_id, for_update=True)


VisibleVisit = Annotated[Any, Depends(_visible)]
LockedVisit = Annotated[Any, Depends(_locked)]
