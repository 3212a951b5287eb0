"""HTTP of the follow-up due list (`/api/v1/visits/follow-ups`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from servicekit.app import CurrentPrincipal
from servicekit.pagination import Page
from servicekit.routing import SessionDep, kit_router
from visits.dependencies import SettingsDep
from visits.followups import service
from visits.followups.schemas import FollowUp, FollowUpQuery
from visits.responses import listing

router = kit_router(prefix="/api/v1/visits", tags=["visits"])


@router.get(
    "/follow-ups",
    response_model=Page[FollowUp],
    summary="Customers due a visit: level A first, then the most overdue",
    description="Active customers whose last effective completed visit is older than their "
    "level's cadence (from the customers settings), or who were never visited. A rep's own "
    "(`rep_id`), or the caller's: a rep's book, a manager's teams' customers.",
)
async def follow_ups(
    query: Annotated[FollowUpQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    items, cursor = await service.follow_ups(session, principal, settings, query)
    return listing(items, cursor)
