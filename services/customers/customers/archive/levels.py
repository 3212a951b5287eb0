"""Levels A/B/C: cadence per level and the level proposed from purchases and potential.

A customer is proposed A when its trailing-12-month purchases or its estimated potential reach
A's threshold, else B by B's thresholds, else C. Purchases come from the commerce feature's
SQL source (`extensions.set_purchases_source`); until one is set they count as zero.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from customers.archive.files import purchases_select
from customers.archive.models import CUSTOMERS
from customers.archive.settings import LevelThresholds

C = CUSTOMERS.c


def proposed_level(
    purchases_12m: Decimal, potential: Decimal | None, thresholds: LevelThresholds
) -> str:
    pot = potential or Decimal(0)
    for level in ("A", "B"):
        t = getattr(thresholds, level)
        if purchases_12m >= t.purchases_12m or pot >= t.estimated_potential:
            return level
    return "C"


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


def proposals_query(
    thresholds: LevelThresholds, where: list[sa.ColumnElement[bool]]
) -> sa.Select[Any]:
    """Active customers whose proposed level differs from their level.

    Purchases are summed per customer as the page is walked (one index range per customer),
    not aggregated over every order first: a page stops as soon as it has its rows.
    """
    # LATERAL: the sum is computed once per customer, though the CASE names it four times.
    per_customer = purchases_select(C.id).lateral("p12")
    purchases = per_customer.c.amount
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
        .select_from(CUSTOMERS.join(per_customer, sa.true()))
        .where(C.status == "active", proposed != C.level, *where)
    )
