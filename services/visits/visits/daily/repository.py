"""Statements of the daily reports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import PageParams, keyset
from visits.cases.models import CASES
from visits.daily.models import DAILY_REPORTS
from visits.models import directory
from visits.plans.models import PLAN_ITEMS, PLANS
from visits.visitlog.models import VISITS

R = DAILY_REPORTS.c
DONE = ("submitted", "signed_off")


def _figures() -> Any:
    """The day's figures in one statement (built once, bound per call): the rep's completed
    visits checked in within [start, end), the items of their approved plan of the day and
    those a completed visit fulfilled, and the complaints they raised that day."""
    V, P, IT, K = VISITS.c, PLANS.c, PLAN_ITEMS.c, CASES.c
    rep = sa.bindparam("rep_id", type_=sa.Uuid)
    day = sa.bindparam("day", type_=sa.Date)
    done = V.status == "completed"
    log = (
        sa.select(
            sa.func.count().filter(done).label("visits_completed"),
            sa.func.count().filter(done, V.effective).label("effective_visits"),
            sa.func.count().filter(done, V.order_taken).label("visits_with_order"),
            sa.func.coalesce(sa.func.sum(V.order_amount).filter(done), 0).label("order_amount"),
            sa.func.coalesce(sa.func.sum(V.collected_amount).filter(done), 0).label(
                "collected_amount"
            ),
            sa.func.count().filter(done, V.far_from_customer).label("far_check_ins"),
        )
        .where(
            V.rep_id == rep,
            V.check_in_at >= sa.bindparam("start", type_=sa.DateTime(timezone=True)),
            V.check_in_at < sa.bindparam("end", type_=sa.DateTime(timezone=True)),
        )
        .subquery("log")
    )
    fulfilled = sa.exists().where(V.plan_item_id == IT.id, done)
    plan = (
        sa.select(
            sa.func.count(IT.id).label("planned_items"),
            sa.func.count(IT.id).filter(fulfilled).label("fulfilled_items"),
        )
        .select_from(PLAN_ITEMS.join(PLANS, P.id == IT.plan_id))
        .where(P.rep_id == rep, P.plan_date == day, P.status == "approved")
        .subquery("plan")
    )
    complaints = (
        sa.select(sa.func.count().label("complaints_raised"))
        .where(K.rep_id == rep, K.raised_on == day, K.kind == "complaint")
        .subquery("complaints")
    )
    # Each part is one row: joined on true, one row out.
    one_row = log.join(plan, sa.true()).join(complaints, sa.true())
    return sa.select(log, plan, complaints).select_from(one_row)


_FIGURES = _figures()


async def figures(
    session: AsyncSession, rep_id: uuid.UUID, day: date, start: datetime, end: datetime
) -> Any:
    params = {"rep_id": rep_id, "day": day, "start": start, "end": end}
    return (await session.execute(_FIGURES, params)).one()


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
