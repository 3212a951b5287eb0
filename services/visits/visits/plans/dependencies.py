"""The plan of the path, loaded under the access rule (404 itself)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep
from visits.plans import service


async def _visible(plan_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.visible_plan(session, principal, plan_id)


async def _locked(plan_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.visible_plan(session, principal, plan_id, for_update=True)


# The plan of the path, visible to the caller (else 404).
VisiblePlan = Annotated[Any, Depends(_visible)]
# The same, locked for a change.
LockedPlan = Annotated[Any, Depends(_locked)]
