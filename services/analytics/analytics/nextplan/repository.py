"""The next plan's statements on the read models: a rep's opportunities whose next action is
due, and the names of customers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts.models import CUSTOMERS, OPPORTUNITIES

P, C = OPPORTUNITIES.c, CUSTOMERS.c


async def due_actions(session: AsyncSession, rep_id: uuid.UUID, day: date) -> list[Any]:
    """The rep's open opportunities on a customer of theirs whose next action is due by `day`,
    the most overdue first."""
    stmt = (
        sa.select(P.id, P.customer_id, P.next_action, P.next_action_on, P.stage)
        .select_from(OPPORTUNITIES.join(CUSTOMERS, C.id == P.customer_id))
        .where(
            P.owner_id == rep_id,
            P.next_action_on <= day,
            P.stage.not_in(("won", "lost")),
            C.owner_id == rep_id,
        )
        .order_by(P.next_action_on, P.id)
    )
    return list(await session.execute(stmt))


async def customers(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Any]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(sa.select(C.id, C.code, C.name).where(C.id.in_(wanted)))
    return {r.id: r for r in rows}
