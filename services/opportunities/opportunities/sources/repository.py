"""Statements of source effectiveness and costs."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.leads.models import LEADS
from opportunities.leads.repository import visibility_filter
from opportunities.pipeline.models import OPPORTUNITIES
from opportunities.sources.models import SOURCE_COSTS
from servicekit.auth import Principal

L, P, C = LEADS.c, OPPORTUNITIES.c, SOURCE_COSTS.c


async def figures(session: AsyncSession, principal: Principal, start: date, end: date) -> list[Any]:
    """Per source, over the leads received in [start, end) the caller sees: the funnel's
    counts, the won opportunities' amount and the median days from receipt to won."""
    won = P.stage == "won"
    days = sa.extract("epoch", P.won_at - L.received_at) / 86400.0
    stmt = (
        sa.select(
            L.source,
            sa.func.count().label("leads"),
            sa.func.count().filter(L.status == "invalid").label("invalid"),
            sa.func.count().filter(L.qualified_at.is_not(None)).label("qualified"),
            sa.func.count().filter(L.contacted_at.is_not(None)).label("contacted"),
            sa.func.count().filter(L.converted_at.is_not(None)).label("converted"),
            sa.func.count(P.id).filter(won).label("won"),
            sa.func.coalesce(sa.func.sum(P.amount).filter(won), 0).label("won_amount"),
            sa.func.percentile_cont(0.5).within_group(days).filter(won).label("median_days"),
        )
        .select_from(LEADS.outerjoin(OPPORTUNITIES, P.lead_id == L.id))
        .where(L.received_at >= start, L.received_at < end, visibility_filter(principal))
        .group_by(L.source)
    )
    return list((await session.execute(stmt)).all())


async def costs_in(session: AsyncSession, start: date, end: date) -> list[Any]:
    """The recorded costs of the months that begin within [start's month, end)."""
    first = start.replace(day=1)
    stmt = (
        sa.select(SOURCE_COSTS).where(C.month >= first, C.month < end).order_by(C.source, C.month)
    )
    return list((await session.execute(stmt)).all())


async def put_cost(session: AsyncSession, values: dict[str, Any]) -> Any:
    insert = pg_insert(SOURCE_COSTS).values(values)
    stmt = insert.on_conflict_do_update(
        index_elements=[C.source, C.month],
        set_={k: insert.excluded[k] for k in ("amount", "note", "updated_at", "updated_by")},
    ).returning(SOURCE_COSTS)
    return (await session.execute(stmt)).one()
