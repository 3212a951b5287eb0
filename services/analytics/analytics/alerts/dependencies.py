"""The alert of the path, loaded under the access rule (404 when the caller may not see it),
and the app's evaluator (wired in main.py)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends
from fastapi import Path as PathParam
from starlette.requests import Request

from analytics.alerts import service
from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep

STATE_KEY = "alerts"


async def _locked(
    alert_id: Annotated[uuid.UUID, PathParam()], session: SessionDep, principal: CurrentPrincipal
) -> Any:
    return await service.visible_alert(session, principal, alert_id, for_update=True)


async def _visible(
    alert_id: Annotated[uuid.UUID, PathParam()], session: SessionDep, principal: CurrentPrincipal
) -> Any:
    return await service.visible_alert(session, principal, alert_id)


async def _evaluator(request: Request) -> service.Evaluator:
    evaluator: service.Evaluator = getattr(request.app.state, STATE_KEY)
    return evaluator


VisibleAlert = Annotated[Any, Depends(_visible)]
LockedAlert = Annotated[Any, Depends(_locked)]
AlertEvaluator = Annotated[service.Evaluator, Depends(_evaluator)]
