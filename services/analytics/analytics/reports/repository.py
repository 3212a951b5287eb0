"""Every statement of the reports besides the KPIs (which are `kpis.measures`'): what the team
heard in the week, its complaints, next week's plan and the targets of a month."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts.models import CASE_STEPS, CUSTOMERS, FIELD_REPORTS, PLAN_ITEMS, VISITS
from analytics.kpis import repository as kpi_records
from analytics.kpis.repository import within
from analytics.periods import Period
from analytics.targets.models import TARGETS

# The most remarks of each source (visits, daily reports) one report lists.
MAX_ITEMS = 500
COMPLAINT = "complaint"
DAILY_REPORT = "daily_report"


async def reps_rolled_up(
    session: AsyncSession, rep_ids: Sequence[uuid.UUID], period: Period
) -> dict[uuid.UUID, dict[str, Any]]:
    """Each rep's flows of the period from the rollups (`kpis.repository.rolled_up_by_rep`);
    a rep with none is absent."""
    if not rep_ids:
        return {}
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for row in await session.execute(kpi_records.rolled_up_by_rep(rep_ids, period)):
        values = {str(k): v for k, v in row._mapping.items()}
        out[values.pop("rep_id")] = values
    return out


async def remarks(session: AsyncSession, teams: Sequence[uuid.UUID], period: Period) -> list[Any]:
    """The week's completed visits and daily reports of the teams that brought competitor news
    or customer feedback, newest first."""
    v, r, c = VISITS.c, FIELD_REPORTS.c, CUSTOMERS.c
    said = sa.or_(v.competitor_news.is_not(None), v.customer_feedback.is_not(None))
    visits = (
        sa.select(
            sa.literal("visit").label("source"),
            v.id,
            v.day,
            v.rep_id,
            v.customer_id,
            c.name.label("customer_name"),
            v.competitor_news,
            v.customer_feedback,
        )
        .select_from(VISITS.outerjoin(CUSTOMERS, c.id == v.customer_id))
        .where(v.team_id.in_(teams), within(v.day, period), said)
        .order_by(v.day.desc(), v.id)
        .limit(MAX_ITEMS)
    )
    reports = (
        sa.select(
            sa.literal(DAILY_REPORT).label("source"),
            r.id,
            r.day,
            r.rep_id,
            r.customer_id,
            sa.null().label("customer_name"),
            r.competitor_news,
            r.customer_feedback,
        )
        .where(
            r.kind == DAILY_REPORT,
            r.team_id.in_(teams),
            within(r.day, period),
            sa.or_(r.competitor_news.is_not(None), r.customer_feedback.is_not(None)),
        )
        .order_by(r.day.desc(), r.id)
        .limit(MAX_ITEMS)
    )
    both = sa.union_all(visits, reports).subquery("remarks")
    stmt = sa.select(both).order_by(both.c.day.desc(), both.c.source, both.c.id)
    return list(await session.execute(stmt))


async def complaint_steps(
    session: AsyncSession, teams: Sequence[uuid.UUID], period: Period, steps: Sequence[str]
) -> list[Any]:
    """The complaints of the teams that took one of `steps` (raised, resolved) in the week,
    once per step (on the first day they took it), with what the case says now."""
    s, r = CASE_STEPS.c, FIELD_REPORTS.c
    first = (
        sa.select(s.case_id, s.step, sa.func.min(s.day).label("day"))
        .where(
            s.team_id.in_(teams),
            within(s.day, period),
            s.kind == COMPLAINT,
            s.step.in_(list(steps)),
        )
        .group_by(s.case_id, s.step)
        .subquery("steps")
    )
    stmt = (
        sa.select(
            first.c.step,
            first.c.case_id.label("id"),
            first.c.day,
            r.rep_id,
            r.customer_id,
            r.data["customer_name"].astext.label("customer_name"),
            r.data["category"].astext.label("category"),
            r.severity,
            r.status,
            r.data["description"].astext.label("description"),
        )
        .select_from(first.join(FIELD_REPORTS, r.id == first.c.case_id))
        .order_by(first.c.day, first.c.case_id)
    )
    return list(await session.execute(stmt))


async def planned_items(
    session: AsyncSession, teams: Sequence[uuid.UUID], period: Period
) -> list[Any]:
    """The items of the teams' approved plans in the period (all of them: the report counts
    them per rep)."""
    i, c = PLAN_ITEMS.c, CUSTOMERS.c
    stmt = (
        sa.select(
            i.id,
            i.plan_id,
            i.day,
            i.rep_id,
            i.customer_id,
            c.code.label("customer_code"),
            c.name.label("customer_name"),
            i.purpose,
        )
        .select_from(PLAN_ITEMS.outerjoin(CUSTOMERS, c.id == i.customer_id))
        .where(i.team_id.in_(teams), within(i.day, period), i.approved)
        .order_by(i.day, i.rep_id, i.id)
    )
    return list(await session.execute(stmt))


async def targets_of(
    session: AsyncSession, keys: dict[str, Sequence[str]], period: Period
) -> list[Any]:
    """The targets of these scopes (each kind with its keys) for exactly this named period."""
    t = TARGETS.c
    stmt = (
        sa.select(t.id, t.metric, t.scope, t.scope_key, t.value)
        .where(
            sa.or_(
                *[sa.and_(t.scope == kind, t.scope_key.in_(list(k))) for kind, k in keys.items()]
            ),
            t.period_kind == (period.kind or ""),
            t.period_start == period.start,
        )
        .order_by(t.scope, t.scope_key, t.metric)
    )
    return list(await session.execute(stmt))
