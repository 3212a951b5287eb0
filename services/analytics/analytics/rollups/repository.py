"""Every statement that writes the rollups: deltas added row by row, and the rebuild's
aggregates over the fact tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts.events import REENGAGED_STATUSES
from analytics.facts.models import (
    CUSTOMER_VERSIONS,
    CUSTOMERS,
    ORDERS,
    PAYMENTS,
    PLAN_ITEMS,
    VISITS,
)
from analytics.periods import KINDS, Kind
from analytics.rollups.contributions import NOT_COUNTED, Contribution
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
    POINT_IN_TIME,
)

DAILY = {"rep": DAILY_REPS, "team": DAILY_TEAMS, "region": DAILY_REGIONS, "company": DAILY_COMPANY}
DAILY_KEY = {"rep": "rep_id", "team": "team_id", "region": "region", "company": None}
Col = sa.ColumnElement[Any]
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


# --- the rebuild, set-based: what `contributions.derive` gives every customer, in SQL --------

# The daily measures a customer's facts give (the visits' and plan items' are
# `rebuild_visit_flows`').
_CUSTOMER_MEASURES = (
    "new_customers",
    "developed",
    "orders",
    "sales_amount",
    "gross_profit",
    "paid_on_orders",
    "collected",
    *POINT_IN_TIME,
)


def _known(customer_id: Col) -> sa.ColumnElement[bool]:
    """A fact of a customer the rollups derive (the rebuild derives every known customer)."""
    known = CUSTOMERS.alias("known")
    return customer_id.in_(sa.select(known.c.id))


def _counted() -> sa.ColumnElement[bool]:
    return CUSTOMERS.c.status.not_in(sorted(NOT_COUNTED))


def _first_orders() -> sa.Subquery:
    """Each known customer's first live order (by day, then the feed's order)."""
    o = ORDERS.c
    return (
        sa.select(o.customer_id, o.id, o.day, o.owner_id, o.team_id, o.region)
        .where(o.cancelled.is_(False), _known(o.customer_id))
        .order_by(o.customer_id, o.day, o.seq)
        .ext(distinct_on(o.customer_id))
        .subquery("firsts")
    )


async def rebuild_first_orders(session: AsyncSession) -> None:
    """Every customer's first order (`facts.set_first_orders` for all of them at once): the
    customers' columns and the orders' `first` flags."""
    c, o = CUSTOMERS.c, ORDERS.c
    firsts = _first_orders()
    other = CUSTOMERS.alias("other")
    found = (
        sa.select(
            other.c.id.label("customer_id"),
            firsts.c.id,
            firsts.c.day,
            firsts.c.owner_id,
            firsts.c.team_id,
            firsts.c.region,
        )
        .select_from(other.outerjoin(firsts, firsts.c.customer_id == other.c.id))
        .subquery("found")
    )
    mine = (c.first_order_id, c.first_order_day, c.first_owner_id, c.first_team_id, c.first_region)
    theirs = (found.c.id, found.c.day, found.c.owner_id, found.c.team_id, found.c.region)
    await session.execute(
        sa.update(CUSTOMERS)
        .where(c.id == found.c.customer_id, sa.tuple_(*mine).is_distinct_from(sa.tuple_(*theirs)))
        .values({col.name: value for col, value in zip(mine, theirs, strict=True)})
    )
    await session.execute(
        sa.update(ORDERS)
        .where(o.customer_id == firsts.c.customer_id, o.first != (o.id == firsts.c.id))
        .values(first=o.id == firsts.c.id)
    )
    # A known customer without a live order has no first order.
    await session.execute(
        sa.update(ORDERS).where(o.first, o.cancelled, _known(o.customer_id)).values(first=False)
    )


def _delta(who: Sequence[Col], day: Col, **measures: Any) -> list[Any]:
    """One row of a daily delta: the attribution, the day and each measure (0 when absent)."""
    owner, team, region = who
    return [
        owner.label("owner_id"),
        team.label("team_id"),
        region.label("region"),
        day.label("day"),
        *[sa.cast(measures.get(m, 0), DAILY_REPS.c[m].type).label(m) for m in _CUSTOMER_MEASURES],
    ]


def _held(window_days: int) -> sa.CTE:
    """The intervals a customer counts in a point-in-time measure ([start, end), end null:
    still), each cut where its state changes and attributed to that state (`contributions`'s
    `_attributed`): measure, owner, team, region, start, end."""
    c, o, v = CUSTOMERS.c, ORDERS.c, CUSTOMER_VERSIONS.c
    # The state in force from each day on: the last version of the day; the first holds since
    # always (a customer is taken as first announced before its first version).
    last = (
        sa.select(v.customer_id, v.day, v.owner_id, v.team_id, v.region, v.level)
        .order_by(v.customer_id, v.day, v.seq.desc())
        .ext(distinct_on(v.customer_id, v.day))
        .subquery("last")
    )
    after = sa.func.lead(last.c.day).over(partition_by=last.c.customer_id, order_by=last.c.day)
    first = sa.func.row_number().over(partition_by=last.c.customer_id, order_by=last.c.day) == 1
    states = sa.select(
        last.c.customer_id,
        sa.case((first, sa.null()), else_=last.c.day).label("since"),
        after.label("until"),
        last.c.owner_id,
        last.c.team_id,
        last.c.region,
        last.c.level,
    ).subquery("states")
    # The live orders' windows [day, day + window) merged where they overlap or touch.
    ends = (o.day + window_days).label("ends")
    reach = sa.func.max(o.day + window_days).over(
        partition_by=o.customer_id, order_by=(o.day, o.seq), rows=(None, -1)
    )
    windows = (
        sa.select(
            o.customer_id,
            o.day,
            ends,
            sa.case((sa.or_(reach.is_(None), o.day > reach), 1), else_=0).label("opens"),
        )
        .where(o.cancelled.is_(False))
        .subquery("windows")
    )
    w = windows.c
    island = sa.func.sum(w.opens).over(partition_by=w.customer_id, order_by=(w.day, w.ends))
    numbered = sa.select(w.customer_id, w.day, w.ends, island.label("island")).subquery("numbered")
    n = numbered.c
    active = (
        sa.select(
            n.customer_id.label("id"),
            sa.literal("active").label("measure"),
            sa.func.min(n.day).label("start"),
            sa.func.max(n.ends).label("end"),
        )
        .group_by(n.customer_id, n.island)
        .subquery("active")
    )
    created = c.created_day.is_not(None)
    intervals = sa.union_all(
        sa.select(
            c.id,
            sa.literal("undeveloped").label("measure"),
            c.created_day.label("start"),
            c.first_order_day.label("end"),
        ).where(created, sa.or_(c.first_order_day.is_(None), c.created_day < c.first_order_day)),
        sa.select(
            c.id,
            sa.literal("a_level").label("measure"),
            c.created_day.label("start"),
            sa.cast(sa.null(), sa.Date).label("end"),
        ).where(created),
        sa.select(active),
    ).subquery("intervals")
    i, s = intervals.c, states.c
    return (
        sa.select(
            i.measure,
            s.owner_id,
            s.team_id,
            s.region,
            sa.func.greatest(i.start, s.since).label("start"),
            sa.func.least(i.end, s.until).label("end"),
        )
        .select_from(intervals.join(CUSTOMERS, c.id == i.id).join(states, s.customer_id == i.id))
        .where(
            _counted(),
            sa.or_(i.end.is_(None), i.start < i.end),
            sa.or_(s.until.is_(None), s.until > i.start),
            sa.or_(s.since.is_(None), i.end.is_(None), s.since < i.end),
            sa.or_(i.measure != "a_level", s.level == "A"),
        )
        .cte("held")
    )


def _daily_deltas(window_days: int) -> sa.CTE:
    """Every customer's daily deltas (`contributions.derive`'s `daily`) summed per
    attribution (rep, team, region) and day."""
    c, o, p = CUSTOMERS.c, ORDERS.c, PAYMENTS.c
    paid = (
        sa.select(p.order_id, p.customer_id, sa.func.sum(p.amount).label("amount"))
        .where(p.reversed.is_(False))
        .group_by(p.order_id, p.customer_id)
        .subquery("paid")
    )
    held = _held(window_days)
    h = held.c

    def changes(sign: int) -> dict[str, Any]:
        return {m: sa.case((h.measure == m, sign), else_=0) for m in POINT_IN_TIME}

    deltas = sa.union_all(
        sa.select(*_delta((p.owner_id, p.team_id, p.region), p.day, collected=p.amount)).where(
            p.reversed.is_(False), _known(p.customer_id)
        ),
        sa.select(
            *_delta(
                (o.owner_id, o.team_id, o.region),
                o.day,
                orders=1,
                sales_amount=o.amount,
                gross_profit=sa.func.coalesce(o.gross_profit, 0),
                paid_on_orders=sa.func.coalesce(paid.c.amount, 0),
            )
        )
        .select_from(
            ORDERS.outerjoin(
                paid, sa.and_(paid.c.order_id == o.id, paid.c.customer_id == o.customer_id)
            )
        )
        .where(o.cancelled.is_(False), _known(o.customer_id)),
        sa.select(
            *_delta(
                (c.created_owner_id, c.created_team_id, c.created_region),
                c.created_day,
                new_customers=1,
            )
        ).where(_counted(), c.created_day.is_not(None)),
        sa.select(
            *_delta(
                (c.first_owner_id, c.first_team_id, c.first_region), c.first_order_day, developed=1
            )
        ).where(_counted(), c.first_order_day.is_not(None)),
        sa.select(*_delta((h.owner_id, h.team_id, h.region), h.start, **changes(1))),
        sa.select(*_delta((h.owner_id, h.team_id, h.region), h.end, **changes(-1))).where(
            h.end.is_not(None)
        ),
    ).subquery("deltas")
    d = deltas.c
    who = (d.owner_id, d.team_id, d.region, d.day)
    return (
        sa.select(*who, *[sa.func.sum(d[m]).label(m) for m in _CUSTOMER_MEASURES])
        .group_by(*who)
        .cte("summed")
    )


async def rebuild_customer_flows(session: AsyncSession, window_days: int) -> None:
    """The daily rows every customer's facts give, summed per rep, team, region and the
    company and day, in one statement (the rollups start cleared)."""
    deltas = _daily_deltas(window_days)
    d = deltas.c
    inserts = []
    for grain, table in DAILY.items():
        column = DAILY_KEY[grain]
        # A delta's rep is its owner.
        key = [] if column is None else [d["owner_id" if grain == "rep" else column]]
        where: list[sa.ColumnElement[bool]] = [k.is_not(None) for k in key]
        if grain == "region":
            where.append(d.region != "")
        sums = [sa.func.sum(d[m]) for m in _CUSTOMER_MEASURES]
        select = (
            sa.select(*key, d.day, *sums)
            .where(*where)
            .group_by(*key, d.day)
            .having(sa.or_(*[total != 0 for total in sums]))
        )
        names = ["day"] if column is None else [column, "day"]
        inserts.append(sa.insert(table).from_select([*names, *_CUSTOMER_MEASURES], select))
    *others, last = inserts
    stmt = last.add_cte(*[insert.cte(f"into_{n}") for n, insert in enumerate(others)])
    await session.execute(stmt)


async def rebuild_customer_periods(session: AsyncSession) -> None:
    """Per named period: each known customer's sales (`period_sales`) and the company's
    ordering, repeat-purchasing, re-engaged and redeveloped customers (`period_counts`)."""
    o, v = ORDERS.c, VISITS.c
    live = [o.cancelled.is_(False), _known(o.customer_id)]
    for kind in KINDS:
        period = sa.cast(sa.func.date_trunc(kind, o.day), sa.Date)
        sales = (
            sa.select(
                sa.literal(kind), period, o.customer_id, sa.func.count(), sa.func.sum(o.amount)
            )
            .where(*live)
            .group_by(period, o.customer_id)
        )
        await session.execute(
            sa.insert(PERIOD_SALES).from_select(
                ["kind", "period", "customer_id", "orders", "amount"], sales
            )
        )
        counts = (
            sa.select(
                sa.literal(kind),
                period,
                sa.func.count(sa.distinct(o.customer_id)),
                sa.func.count(sa.distinct(o.customer_id)).filter(o.first.is_(False)),
            )
            .where(*live)
            .group_by(period)
        )
        await session.execute(
            sa.insert(PERIOD_COUNTS).from_select(["kind", "period", "ordering", "repeat"], counts)
        )
        # Each re-engaged customer's first re-engaging visit of the period, and whether a live
        # order follows it within the period.
        visit_period = sa.cast(sa.func.date_trunc(kind, v.day), sa.Date)
        first = (
            sa.select(v.customer_id, visit_period.label("period"), sa.func.min(v.day).label("day"))
            .where(v.customer_status.in_(REENGAGED_STATUSES), _known(v.customer_id))
            .group_by(v.customer_id, visit_period)
            .subquery("first")
        )
        f = first.c
        ordered = (
            sa.select(sa.literal(1))
            .where(
                o.customer_id == f.customer_id,
                o.cancelled.is_(False),
                o.day >= f.day,
                sa.cast(sa.func.date_trunc(kind, o.day), sa.Date) == f.period,
            )
            .exists()
        )
        reengaged = sa.select(
            sa.literal(kind), f.period, sa.func.count(), sa.func.count().filter(ordered)
        ).group_by(f.period)
        stmt = pg_insert(PERIOD_COUNTS).from_select(
            ["kind", "period", "reengaged", "redeveloped"], reengaged
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[PERIOD_COUNTS.c.kind, PERIOD_COUNTS.c.period],
                set_={
                    "reengaged": stmt.excluded.reengaged,
                    "redeveloped": stmt.excluded.redeveloped,
                },
            )
        )
