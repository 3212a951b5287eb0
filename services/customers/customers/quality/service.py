"""Data-quality listing: important customers whose records are incomplete."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.access import require_read
from customers.archive.models import CUSTOMERS
from customers.archive.repository import visibility_filter
from customers.quality import scoring
from customers.quality.schemas import DataQualityItem, DataQualityPage
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.pagination import PageParams, keyset, make_page


async def incomplete_customers(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    level: str | None,
    below: int,
    region: str | None = None,
    owner_id: Any = None,
) -> DataQualityPage:
    """Active customers the caller may see whose score is under `below`, worst first."""
    require_read(principal)
    now = utcnow()
    score = scoring.score_sql(now)
    c = CUSTOMERS.c
    stmt = sa.select(
        c.id,
        c.code,
        c.name,
        c.region,
        c.level,
        c.owner_id,
        c.team_id,
        c.updated_at,
        score.label("score"),
        *scoring.present_sql_columns(),
    ).where(c.status == "active", visibility_filter(principal), score < below)
    if level is not None:
        stmt = stmt.where(c.level == level)
    if region is not None:
        stmt = stmt.where(c.region == region)
    if owner_id is not None:
        stmt = stmt.where(c.owner_id == owner_id)
    rows = (await session.execute(keyset(stmt, [score, c.id], page))).all()
    items, cursor = make_page(rows, page, lambda r: (r.score, r.id))
    return DataQualityPage(
        items=[
            DataQualityItem(
                id=r.id,
                code=r.code,
                name=r.name,
                region=r.region,
                level=r.level,
                owner_id=r.owner_id,
                team_id=r.team_id,
                updated_at=r.updated_at,
                data_quality=scoring.from_row(r, now),
            )
            for r in items
        ],
        next_cursor=cursor,
    )
