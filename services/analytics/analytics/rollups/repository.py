"""Every statement that writes the rollups: deltas added row by row, and the rebuild's
aggregates over the fact tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts.models import PLAN_ITEMS, VISITS
from analytics.periods import KINDS, Kind
from analytics.rollups.contributions import Contribution, Number, SalesKey
from analytics.rollups.models import (
    DAILY_COMPANY,
    DAILY_REGIONS,
    DAILY_REPS,
    DAILY_TEAMS,
    MEASURES,
    PERIOD_COUNTS,
    PERIOD_COUNTS_MEASURES,
    PERIOD_SALES,
    PERIOD_TEAM_COUNTS,
)
from servicekit.bulk import insert_rows

DAILY = {"rep": DAILY_REPS, "team": DAILY_TEAMS, "region": DAILY_REGIONS, "company": DAILY_COMPANY}
DAILY_KEY = {"rep": "rep_id", "team": "team_id", "region": "region", "company": None}
# Keys per statement of a delete by key.
_BATCH = 1000


async def _add(
    session: AsyncSession,
    table: sa.Table,
    keys: Sequence[str],
    measures: Sequence[str],
    rows: list[dict[str, Any]],
) -> None:
    """Add each row's measures to the row of its key (inserted at zero when missing). Rows go
    in key order, so two writers lock shared rows in the same order."""
    if not rows:
        return
    rows.sort(key=lambda r: tuple(str(r[k]) for k in keys))
    stmt = pg_insert(table)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[table.c[k] for k in keys],
            set_={m: table.c[m] + stmt.excluded[m] for m in measures},
        ),
        rows,
    )


# The key of the transaction lock that orders the feeds' changes to the rollups.
_ROLLUPS_LOCK = 0x616E616C79746963


async def lock(session: AsyncSession) -> None:
    """Hold the rollups until the transaction ends: the customers and visits consumers change
    the same rows (a rep's day) in their own orders, and would deadlock each other."""
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(_ROLLUPS_LOCK)))


async def apply(session: AsyncSession, delta: Contribution) -> None:
    """Add a contribution (usually a difference) to the rollups."""
    by_grain: dict[str, list[dict[str, Any]]] = {g: [] for g in DAILY}
    for (grain, key, day), measures in delta.daily.items():
        row: dict[str, Any] = dict.fromkeys(MEASURES, 0)
        row.update(measures)
        row["day"] = day
        column = DAILY_KEY[grain]
        if column is not None:
            row[column] = key
        by_grain[grain].append(row)
    for grain, rows in by_grain.items():
        column = DAILY_KEY[grain]
        keys = ["day"] if column is None else [column, "day"]
        await _add(session, DAILY[grain], keys, MEASURES, rows)

    counts: list[dict[str, Any]] = []
    for (kind, period), measures in delta.period.items():
        counts.append(
            {
                "kind": kind,
                "period": period,
                **dict.fromkeys(PERIOD_COUNTS_MEASURES, 0),
                **measures,
            }
        )
    await _add(
        session,
        PERIOD_COUNTS,
        ["kind", "period"],
        PERIOD_COUNTS_MEASURES,
        counts,
    )

    teams = [
        {"kind": kind, "period": period, "team_id": team_id, "visited": measures.get("visited", 0)}
        for (kind, period, team_id), measures in delta.teams.items()
    ]
    await _add(session, PERIOD_TEAM_COUNTS, ["kind", "period", "team_id"], ("visited",), teams)

    sales: list[dict[str, Any]] = []
    for (kind, period, customer_id), measures in delta.sales.items():
        sales.append(
            {
                "kind": kind,
                "period": period,
                "customer_id": customer_id,
                "orders": measures.get("orders", 0),
                "amount": measures.get("amount", 0),
            }
        )
    keys = ["kind", "period", "customer_id"]
    await _add(session, PERIOD_SALES, keys, ("orders", "amount"), sales)
    emptied = [tuple(r[k] for k in keys) for r in sales if r["orders"] < 0]
    s = PERIOD_SALES.c
    for at in range(0, len(emptied), _BATCH):
        await session.execute(
            sa.delete(PERIOD_SALES).where(
                sa.tuple_(s.kind, s.period, s.customer_id).in_(emptied[at : at + _BATCH]),
                s.orders <= 0,
            )
        )


async def first_visits(
    session: AsyncSession,
    candidates: Sequence[tuple[Kind, date, date, uuid.UUID, uuid.UUID | None]],
    new_ids: Iterable[uuid.UUID],
) -> list[int]:
    """Of the candidates (kind, period start, end, customer, team or None), the positions of
    those with no completed visit in the period (of that team, when one is named) other than
    `new_ids`: the customers these visits make "visited" in that period (for that team)."""
    if not candidates:
        return []
    keys = (
        sa.func.unnest(
            sa.bindparam("n", type_=ARRAY(sa.Integer)),
            sa.bindparam("customer_ids", type_=ARRAY(sa.Uuid)),
            sa.bindparam("starts", type_=ARRAY(sa.Date)),
            sa.bindparam("ends", type_=ARRAY(sa.Date)),
            sa.bindparam("team_ids", type_=ARRAY(sa.Uuid)),
        )
        .table_valued(
            sa.column("n", sa.Integer),
            sa.column("customer_id", sa.Uuid),
            sa.column("start", sa.Date),
            sa.column("end", sa.Date),
            sa.column("team_id", sa.Uuid),
        )
        .render_derived(name="k")
    )
    v = VISITS.c
    other = (
        sa.select(sa.literal(1))
        .where(
            v.customer_id == keys.c.customer_id,
            v.day >= keys.c.start,
            v.day < keys.c.end,
            sa.or_(keys.c.team_id.is_(None), v.team_id == keys.c.team_id),
            sa.not_(v.id == sa.any_(sa.bindparam("new_ids", type_=ARRAY(sa.Uuid)))),
        )
        .exists()
    )
    rows = await session.execute(
        sa.select(keys.c.n).where(~other).order_by(keys.c.n),
        {
            "n": list(range(len(candidates))),
            "customer_ids": [c[3] for c in candidates],
            "starts": [c[1] for c in candidates],
            "ends": [c[2] for c in candidates],
            "team_ids": [c[4] for c in candidates],
            "new_ids": list(new_ids),
        },
    )
    return [r[0] for r in rows]


# --- the rebuild from the fact tables ------------------------------------------------------


async def insert_sales(session: AsyncSession, sales: dict[SalesKey, dict[str, Number]]) -> None:
    """Customers' sales rows no other row adds to (a rebuild's), in one COPY."""
    rows = [
        {
            "kind": kind,
            "period": period,
            "customer_id": customer_id,
            "orders": measures.get("orders", 0),
            "amount": measures.get("amount", 0),
        }
        for (kind, period, customer_id), measures in sales.items()
        if measures.get("orders")
    ]
    await insert_rows(session, PERIOD_SALES, rows)


async def clear(session: AsyncSession) -> None:
    for table in (*DAILY.values(), PERIOD_COUNTS, PERIOD_TEAM_COUNTS, PERIOD_SALES):
        await session.execute(sa.delete(table))


async def rebuild_visit_flows(session: AsyncSession) -> None:
    """The visits' and plan items' daily measures, aggregated over their fact tables."""
    v, p = VISITS.c, PLAN_ITEMS.c
    for grain, table in DAILY.items():
        column = DAILY_KEY[grain]
        for facts, key_of, measures, where in (
            (
                VISITS,
                {"rep": v.rep_id, "team": v.team_id, "region": v.region, "company": None},
                {
                    "visits": sa.func.count(),
                    "effective_visits": sa.func.count().filter(v.effective),
                    "order_visits": sa.func.count().filter(v.order_taken),
                },
                [],
            ),
            (
                PLAN_ITEMS,
                {"rep": p.rep_id, "team": p.team_id, "region": None, "company": None},
                {
                    "plan_items": sa.func.count(),
                    "plan_fulfilled": sa.func.count().filter(p.fulfilled_by.is_not(None)),
                },
                [p.approved],
            ),
        ):
            key = key_of[grain]
            if grain == "region" and key is None:
                continue
            group = [facts.c.day] if key is None else [key, facts.c.day]
            conditions: list[sa.ColumnElement[bool]] = list(where)
            if key is not None:
                conditions.append(key.is_not(None))
                if grain == "region":
                    conditions.append(key != "")
            select = sa.select(*group, *measures.values()).where(*conditions).group_by(*group)
            names = ["day"] if column is None else [column, "day"]
            stmt = pg_insert(table).from_select([*names, *measures], select)
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[table.c[n] for n in names],
                    set_={m: table.c[m] + stmt.excluded[m] for m in measures},
                )
            )


async def rebuild_visited(session: AsyncSession) -> None:
    """The company's customers visited per named period."""
    v = VISITS.c
    for kind in KINDS:
        period = sa.cast(sa.func.date_trunc(kind, v.day), sa.Date)
        select = sa.select(
            sa.literal(kind), period, sa.func.count(sa.distinct(v.customer_id))
        ).group_by(period)
        stmt = pg_insert(PERIOD_COUNTS).from_select(["kind", "period", "visited"], select)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[PERIOD_COUNTS.c.kind, PERIOD_COUNTS.c.period],
                set_={"visited": PERIOD_COUNTS.c.visited + stmt.excluded.visited},
            )
        )


async def rebuild_team_visited(session: AsyncSession) -> None:
    """Each team's customers visited per named period (the rollups start cleared)."""
    v = VISITS.c
    for kind in KINDS:
        period = sa.cast(sa.func.date_trunc(kind, v.day), sa.Date)
        select = (
            sa.select(
                sa.literal(kind), period, v.team_id, sa.func.count(sa.distinct(v.customer_id))
            )
            .where(v.team_id.is_not(None))
            .group_by(period, v.team_id)
        )
        await session.execute(
            pg_insert(PERIOD_TEAM_COUNTS).from_select(
                ["kind", "period", "team_id", "visited"], select
            )
        )
