"""The precomputed figures the dashboard reads, kept exact as each fact arrives.

- `daily_*`: per company day and rep, team (the team the fact carried), region, or for the
  whole company. Flow measures are what happened that day (a period sums its days); the
  point-in-time measures (`undeveloped`, `a_level`, `active`) are changes, +1 on the day a
  customer starts to count and -1 on the day it stops, so the count at the end of a period is
  the sum of every day before its end.
- `period_counts`: the company's customers counted once per named period (week, month,
  quarter, year): visited, ordering, repeat-purchasing, re-engaged and of those redeveloped
  (redevelopment_success).
- `period_team_counts`: per named period and team (the team the visit carried), the
  customers it visited, counted once: a one-team scope's visited customers.
- `period_sales`: each customer's orders and amount per named period, in amount order:
  revenue_concentration's top customers.

A rep's, a region's and a team tree's customers counted once are asked of the facts directly
(a month of theirs is hundreds to thousands of rows, the company's hundreds of thousands); a
one-team scope's visited customers (tens of thousands of visits a month) are read here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from analytics.models import count, metadata, money

COUNTS = (
    "new_customers",
    "developed",
    "visits",
    "effective_visits",
    "order_visits",
    "orders",
    "plan_items",
    "plan_fulfilled",
)
AMOUNTS = ("sales_amount", "gross_profit", "paid_on_orders", "collected")
FLOWS = COUNTS + AMOUNTS
# Changes of a count that holds at a moment (see the module).
POINT_IN_TIME = ("undeveloped", "a_level", "active")
MEASURES = FLOWS + POINT_IN_TIME


def _measures() -> list[sa.Column[Any]]:
    return (
        [count(m) for m in COUNTS] + [money(m) for m in AMOUNTS] + [count(m) for m in POINT_IN_TIME]
    )


def _at_end_index(table: str, key: str) -> sa.Index:
    """The point-in-time changes of a rep or a team in day order, read from the index alone: a
    count at a period's end sums every day before it (years of rows, which in the table lie on
    as many pages)."""
    return sa.Index(f"ix_{table}_at_end", key, "day", postgresql_include=list(POINT_IN_TIME))


DAILY_REPS = sa.Table(
    "daily_reps",
    metadata,
    sa.Column("rep_id", sa.Uuid, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    *_measures(),
    _at_end_index("daily_reps", "rep_id"),
)
DAILY_TEAMS = sa.Table(
    "daily_teams",
    metadata,
    sa.Column("team_id", sa.Uuid, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    *_measures(),
    _at_end_index("daily_teams", "team_id"),
)
DAILY_REGIONS = sa.Table(
    "daily_regions",
    metadata,
    sa.Column("region", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    *_measures(),
)
DAILY_COMPANY = sa.Table(
    "daily_company",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    *_measures(),
)

PERIOD_COUNTS_MEASURES = ("visited", "ordering", "repeat", "reengaged", "redeveloped")

PERIOD_COUNTS = sa.Table(
    "period_counts",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, primary_key=True),
    *[count(m) for m in PERIOD_COUNTS_MEASURES],
)

PERIOD_TEAM_COUNTS = sa.Table(
    "period_team_counts",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, primary_key=True),
    sa.Column("team_id", sa.Uuid, primary_key=True),
    count("visited"),
)

PERIOD_SALES = sa.Table(
    "period_sales",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("period", sa.Date, primary_key=True),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    count("orders"),
    money("amount"),
    sa.Index(
        "ix_period_sales_top",
        "kind",
        "period",
        sa.text("amount DESC"),
        "customer_id",
    ),
)
