"""Annotated dependencies: the lead of the path, loaded under the access rule (they answer the
404, or the 403, themselves)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from opportunities.leads import service
from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep


async def _visible(
    lead_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await service.get_lead(session, principal, lead_id)


async def _changeable(
    lead_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    return await service.changeable(session, principal, lead_id)


# The lead of the path, visible to the caller (else 404); its columns as a dict.
VisibleLead = Annotated[dict[str, Any], Depends(_visible)]
# The lead of the path, locked, and the caller's to change (404 / 403 otherwise).
ChangeableLead = Annotated[dict[str, Any], Depends(_changeable)]
