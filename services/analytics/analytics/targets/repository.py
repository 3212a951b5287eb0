"""Every statement on the targets (and the product sales a product target is measured by)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts.models import ORDER_LINES, ORDERS
from analytics.kpis.repository import Col, PeriodParams, Span
from analytics.periods import Period
from analytics.targets.models import TARGETS
from servicekit.directory import Directory
from servicekit.pagination import PageParams, keyset

T = TARGETS.c


async def insert(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await session.execute(sa.insert(TARGETS), list(rows))


async def get(session: AsyncSession, target_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = sa.select(TARGETS).where(T.id == target_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def find(
    session: AsyncSession, metric: str, period: Period, scope: str, scope_key: str
) -> Any:
    stmt = sa.select(TARGETS).where(
        T.metric == metric,
        T.period_kind == period.kind,
        T.period_start == period.start,
        T.scope == scope,
        T.scope_key == scope_key,
    )
    return (await session.execute(stmt)).first()


async def update(session: AsyncSession, target_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(sa.update(TARGETS).where(T.id == target_id).values(values))


async def delete(session: AsyncSession, target_id: uuid.UUID) -> None:
    await session.execute(sa.delete(TARGETS).where(T.id == target_id))


async def children(session: AsyncSession, target_id: uuid.UUID) -> list[Any]:
    stmt = sa.select(TARGETS).where(T.parent_id == target_id).order_by(T.scope_key, T.period_start)
    return list(await session.execute(stmt))


def for_scope(scope: str, scope_key: str | Col, period: Span) -> Any:
    """One row: the targets of exactly this scope and named period, as JSON (values as exact
    decimal text). With `PeriodParams`, its kind parameter is "" for a period not named."""
    target = sa.func.jsonb_build_object(
        "id", T.id, "metric", T.metric, "value", sa.cast(T.value, sa.Text)
    )
    found = sa.func.coalesce(
        sa.func.jsonb_agg(aggregate_order_by(target, T.metric)), sa.text("'[]'::jsonb")
    )
    return sa.select(found.label("targets")).where(
        T.scope == scope,
        T.scope_key == scope_key,
        T.period_kind == (period.kind if isinstance(period, PeriodParams) else period.kind or ""),
        T.period_start == period.start,
    )


async def page(
    session: AsyncSession,
    params: PageParams,
    *,
    visible: sa.ColumnElement[bool] | None,
    metric: str | None,
    scope: str | None,
    scope_key: str | None,
    period: Period | None,
    parent_id: uuid.UUID | None,
) -> list[Any]:
    where: list[sa.ColumnElement[bool]] = [] if visible is None else [visible]
    if metric is not None:
        where.append(T.metric == metric)
    if scope is not None:
        where.append(T.scope == scope)
    if scope_key is not None:
        where.append(T.scope_key == scope_key)
    if period is not None:
        where += [T.period_kind == period.kind, T.period_start == period.start]
    if parent_id is not None:
        where.append(T.parent_id == parent_id)
    stmt = keyset(sa.select(TARGETS).where(*where), [T.created_at, T.id], params)
    return list(await session.execute(stmt))


def visible(
    teams: Sequence[uuid.UUID], reps: Sequence[uuid.UUID], me: uuid.UUID | None
) -> sa.ColumnElement[bool]:
    """Targets of these teams, of these reps, and the caller's own."""
    keys = [str(r) for r in reps] + ([str(me)] if me is not None else [])
    return sa.or_(
        sa.and_(T.scope == "team", T.scope_key.in_([str(t) for t in teams])),
        sa.and_(T.scope == "rep", T.scope_key.in_(keys)),
    )


async def top_teams(session: AsyncSession, directory: Directory) -> list[uuid.UUID]:
    t = directory.teams.c
    rows = await session.execute(
        sa.select(t.id).where(t.parent_id.is_(None)).order_by(t.name, t.id)
    )
    return [r[0] for r in rows]


async def product_sales(session: AsyncSession, product: str, period: Period) -> Decimal:
    o, line = ORDERS.c, ORDER_LINES.c
    stmt = (
        sa.select(sa.func.coalesce(sa.func.sum(line.amount), 0))
        .select_from(ORDER_LINES.join(ORDERS, o.id == line.order_id))
        .where(
            line.product == product,
            o.cancelled.is_(False),
            o.day >= period.start,
            o.day < period.end,
        )
    )
    return Decimal((await session.execute(stmt)).scalar_one())
