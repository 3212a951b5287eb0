"""Statements of the scoring models and of their calibration."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.leads.models import LEADS
from opportunities.pipeline.models import OPPORTUNITIES
from opportunities.scoring.models import SCORING_MODELS
from opportunities.scoring.rules import Scorer
from servicekit.pagination import PageParams, keyset, make_page

M = SCORING_MODELS.c
# Model creations take this lock so that two never draw the same version number.
_VERSION_LOCK = 0x5C0E


async def get(
    session: AsyncSession, model_id: uuid.UUID, *, for_update: bool = False
) -> Any | None:
    stmt = sa.select(SCORING_MODELS).where(M.id == model_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def by_ids(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Any]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await session.execute(sa.select(SCORING_MODELS).where(M.id.in_(wanted)))
    return {r.id: r for r in rows}


async def current(session: AsyncSession, *, lock: bool = False) -> list[Any]:
    """The active model and the challenger, if any (active first)."""
    stmt = (
        sa.select(SCORING_MODELS)
        .where(M.status.in_(("active", "challenger")))
        .order_by(sa.case((M.status == "active", 0), else_=1))
    )
    if lock:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).all())


async def page(
    session: AsyncSession, params: PageParams, status: str | None
) -> tuple[list[Any], str | None]:
    stmt = sa.select(SCORING_MODELS)
    if status is not None:
        stmt = stmt.where(M.status == status)
    rows = (await session.execute(keyset(stmt, [M.version], params, descending=True))).all()
    return make_page(rows, params, lambda r: [r.version])


async def next_version(session: AsyncSession) -> int:
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_VERSION_LOCK)))
    top = (await session.execute(sa.select(sa.func.max(M.version)))).scalar_one()
    return int(top or 0) + 1


async def insert(session: AsyncSession, values: dict[str, Any]) -> Any:
    return (
        await session.execute(sa.insert(SCORING_MODELS).values(values).returning(SCORING_MODELS))
    ).one()


async def update(session: AsyncSession, model_id: uuid.UUID, values: dict[str, Any]) -> Any:
    stmt = (
        sa.update(SCORING_MODELS)
        .where(M.id == model_id)
        .values(revision=M.revision + 1, **values)
        .returning(SCORING_MODELS)
    )
    return (await session.execute(stmt)).one()


async def set_status(
    session: AsyncSession, ids: Sequence[uuid.UUID], status: str, now: datetime
) -> None:
    if ids:
        await session.execute(
            sa.update(SCORING_MODELS)
            .where(M.id.in_(list(ids)))
            .values(status=status, updated_at=now, revision=M.revision + 1)
        )


async def mark_used(session: AsyncSession, ids: Sequence[uuid.UUID], now: datetime) -> None:
    """From its first scored lead on, a model never changes."""
    await session.execute(
        sa.update(SCORING_MODELS)
        .where(M.id.in_(list(ids)), M.used_at.is_(None))
        .values(used_at=now)
    )


def points_expression(scorer: Scorer) -> sa.ColumnElement[int]:
    """The model's points for a lead, in SQL, from the lead's evaluation inputs."""
    terms: list[sa.ColumnElement[int]] = [
        sa.case(
            dict(criterion.points),
            value=LEADS.c.evaluation[criterion.key].astext,
            else_=0,
        )
        for criterion in scorer.criteria
    ]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


async def calibration(
    session: AsyncSession,
    scorer: Scorer,
    bands: int,
    closed_from: date | None,
    closed_to: date | None,
) -> list[Any]:
    """Per (band, qualified): closed opportunities from scored leads, how many won, the sum
    of predicted probabilities (points / max points) and of squared errors."""
    o, lead = OPPORTUNITIES.c, LEADS.c
    points = points_expression(scorer).label("points")
    won = sa.case((o.stage == "won", 1), else_=0).label("won")
    scored = (
        sa.select(points, won)
        .select_from(OPPORTUNITIES.join(LEADS, lead.id == o.lead_id))
        .where(o.closed_at.is_not(None), lead.model_id.is_not(None))
    )
    if closed_from is not None:
        scored = scored.where(o.closed_at >= closed_from)
    if closed_to is not None:
        scored = scored.where(o.closed_at < closed_to)
    s = scored.subquery("scored")
    top = max(scorer.max_points, 1)
    p = sa.cast(s.c.points, sa.Float) / top
    band = sa.func.least(sa.func.floor(p * bands), bands - 1).label("band")
    qualified = (s.c.points >= scorer.threshold).label("qualified")
    stmt = sa.select(
        band,
        qualified,
        sa.func.count().label("n"),
        sa.func.sum(s.c.won).label("won"),
        sa.func.sum(p).label("sum_p"),
        sa.func.sum(sa.func.power(p - s.c.won, 2)).label("sum_sq"),
    ).group_by(band, qualified)
    return list((await session.execute(stmt)).all())
