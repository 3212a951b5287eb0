"""Statements of the daily reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import PageParams, keyset
from visits.daily.models import DAILY_REPORTS
from visits.models import directory

R = DAILY_REPORTS.c
DONE = ("submitted", "signed_off")


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(DAILY_REPORTS).values(values))


async def get(session: AsyncSession, report_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = sa.select(DAILY_REPORTS).where(R.id == report_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def get_for_day(session: AsyncSession, rep_id: uuid.UUID, day: date) -> Any:
    stmt = sa.select(DAILY_REPORTS).where(R.rep_id == rep_id, R.report_date == day)
    return (await session.execute(stmt)).first()


async def update(session: AsyncSession, report_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(DAILY_REPORTS).where(R.id == report_id).values(version=R.version + 1, **values)
    )


async def list_page(
    session: AsyncSession, where: list[sa.ColumnElement[bool]], page: PageParams
) -> list[Any]:
    stmt = keyset(sa.select(DAILY_REPORTS).where(*where), [R.report_date, R.id], page)
    return list((await session.execute(stmt)).all())


async def missing_page(
    session: AsyncSession, team_ids: Sequence[uuid.UUID] | None, day: date, page: PageParams
) -> list[Any]:
    """Active reps (of the given teams; None: of every team) without a submitted or signed-off
    report for the day, with the status of the one they have (a returned one) if any."""
    u = directory.users.c
    report = (
        sa.select(R.status)
        .where(R.rep_id == u.id, R.report_date == day)
        .scalar_subquery()
        .label("report_status")
    )
    stmt = sa.select(u.id, u.name, u.team_id, report).where(
        u.role == "rep",
        u.active.is_(True),
        ~sa.exists().where(R.rep_id == u.id, R.report_date == day, R.status.in_(DONE)),
    )
    if team_ids is not None:
        stmt = stmt.where(u.team_id.in_(list(team_ids)))
    return list((await session.execute(keyset(stmt, [u.id], page))).all())
