"""Annotated dependencies: the opportunity of the path, loaded under the access rule (they
answer the 404, or the 403, themselves)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from opportunities.pipeline import service
from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep


async def _visible(
    opportunity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await service.get_visible(session, principal, opportunity_id)


async def _changeable(
    opportunity_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await service.changeable(session, principal, opportunity_id)


# The opportunity of the path, visible to the caller (else 404); its columns as a dict.
VisibleOpportunity = Annotated[dict[str, Any], Depends(_visible)]
# The opportunity of the path, locked, and the caller's to change (404 / 403 otherwise).
ChangeableOpportunity = Annotated[dict[str, Any], Depends(_changeable)]
