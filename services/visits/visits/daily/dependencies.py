"""The daily report of the path, loaded under the access rule (404 itself)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep
from visits.daily import service


async def _visible(report_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.visible_report(session, principal, report_id)


async def _locked(report_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.visible_report(session, principal, report_id, for_update=True)


VisibleReport = Annotated[Any, Depends(_visible)]
LockedReport = Annotated[Any, Depends(_locked)]
