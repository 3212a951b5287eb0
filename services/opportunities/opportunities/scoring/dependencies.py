"""Annotated dependencies: the scoring model of the path (they answer the 404 themselves)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from opportunities.scoring import service
from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep


async def _visible(model_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.visible_model(session, principal, model_id)


async def _for_change(model_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.model_for_change(session, principal, model_id)


# The scoring model of the path (else 404).
VisibleModel = Annotated[Any, Depends(_visible)]
# The scoring model of the path, locked for a change (else 404).
LockedModel = Annotated[Any, Depends(_for_change)]
