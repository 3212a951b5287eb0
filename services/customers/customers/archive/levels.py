"""Levels A/B/C: cadence per level and the level proposed from purchases and potential.

A customer is proposed A when its trailing-12-month purchases or its estimated potential reach
A's threshold, else B by B's thresholds, else C. Purchases come from the commerce feature's
SQL source (`extensions.set_purchases_source`); until one is set they count as zero.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.extensions import hooks
from customers.archive.models import CUSTOMERS
from customers.archive.settings import LevelThresholds
from servicekit.db import utcnow

C = CUSTOMERS.c
TRAILING = timedelta(days=365)


def proposed_level(
    purchases_12m: Decimal, potential: Decimal | None, thresholds: LevelThresholds
) -> str:
    pot = potential or Decimal(0)
    for level in ("A", "B"):
        t = getattr(thresholds, level)
        if purchases_12m >= t.purchases_12m or pot >= t.estimated_potential:
            return level
    return "C"


def purchases_subquery() -> sa.Subquery | None:
    if hooks.purchases is None:
        return None
    return hooks.purchases(utcnow() - TRAILING).subquery("purchases")


def proposed_level_expr(
    purchases: sa.ColumnElement[Any], thresholds: LevelThresholds
) -> sa.ColumnElement[str]:
    pot = sa.func.coalesce(C.estimated_potential, 0)
    a, b = thresholds.A, thresholds.B
    return sa.case(
        (sa.or_(purchases >= a.purchases_12m, pot >= a.estimated_potential), sa.literal("A")),
        (sa.or_(purchases >= b.purchases_12m, pot >= b.estimated_potential), sa.literal("B")),
        else_=sa.literal("C"),
    )


async def purchases_of(session: AsyncSession, customer_id: uuid.UUID) -> Decimal:
    sub = purchases_subquery()
    if sub is None:
        return Decimal(0)
    cols = list(sub.c)
    stmt = sa.select(sa.func.coalesce(sa.func.sum(cols[1]), 0)).where(cols[0] == customer_id)
    return Decimal((await session.execute(stmt)).scalar_one())


def proposals_query(
    thresholds: LevelThresholds, where: list[sa.ColumnElement[bool]]
) -> sa.Select[Any]:
    """Active customers whose proposed level differs from their level."""
    sub = purchases_subquery()
    if sub is None:
        purchases: sa.ColumnElement[Any] = sa.literal(Decimal(0), sa.Numeric(16, 2))
        source: Any = CUSTOMERS
    else:
        cols = list(sub.c)
        agg = (
            sa.select(cols[0].label("customer_id"), sa.func.sum(cols[1]).label("amount"))
            .group_by(cols[0])
            .subquery("p12")
        )
        purchases = sa.func.coalesce(agg.c.amount, 0)
        source = CUSTOMERS.outerjoin(agg, agg.c.customer_id == C.id)
    proposed = proposed_level_expr(purchases, thresholds)
    return (
        sa.select(
            C.id,
            C.code,
            C.name,
            C.region,
            C.level,
            proposed.label("proposed_level"),
            purchases.label("purchases_12m"),
            C.estimated_potential,
            C.owner_id,
            C.team_id,
            C.created_at,
        )
        .select_from(source)
        .where(C.status == "active", proposed != C.level, *where)
    )
