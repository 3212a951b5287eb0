"""Annotated dependencies: the assignment rule of the path (they answer the 404, or the 403,
themselves)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from opportunities.assignment import service
from servicekit.app import CurrentPrincipal
from servicekit.routing import SessionDep


async def _visible(rule_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.get_rule(session, principal, rule_id)


async def _changeable(rule_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal) -> Any:
    return await service.changeable_rule(session, principal, rule_id)


# The rule of the path (else 404).
VisibleRule = Annotated[Any, Depends(_visible)]
# The rule of the path, locked, and the caller's to change (404 / 403 otherwise).
ChangeableRule = Annotated[Any, Depends(_changeable)]
