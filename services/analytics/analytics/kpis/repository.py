"""Every statement the KPIs read: the rollups (the fast path), the fact tables (the definition,
for explanations, for what the rollups do not hold, and as the plain aggregate the rollups are
checked against), and the records behind each figure."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts.events import REENGAGED_STATUSES
from analytics.facts.models import (
    CUSTOMER_VERSIONS,
    CUSTOMERS,
    LEADS,
    MEMBERSHIPS,
    OPPORTUNITIES,
    ORDERS,
    PAYMENTS,
    PLAN_ITEMS,
    STAGE_MOVES,
    VISITS,
)
from analytics.periods import Period
from analytics.rollups.contributions import NOT_COUNTED
from analytics.rollups.models import (
    DAILY_COMPANY,
    DAILY_REGIONS,
    DAILY_REPS,
    DAILY_TEAMS,
    FLOWS,
    PERIOD_COUNTS,
    PERIOD_SALES,
    PERIOD_TEAM_COUNTS,
    POINT_IN_TIME,
)
from analytics.scopes import COMPANY, Scope, ScopeKind
from servicekit.directory import Directory
from servicekit.pagination import PageParams, keyset

Col = sa.ColumnElement[Any]
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PeriodParams:
    """A period whose bounds are bound parameters named after `prefix`: a statement built once
    with it answers every period given as `values` (the dashboard's statement of one shape).
    `named`: whether the periods it answers are named (week ... year), which decides the
    statement's shape."""

    start: Col
    end: Col
    kind: Col  # the named period's kind; "" for none
    start_at: Col  # the moments its first day and the day after its last begin
    end_at: Col
    named: bool

    @classmethod
    def of(cls, prefix: str, *, named: bool) -> PeriodParams:
        def day(name: str) -> Col:
            return sa.bindparam(f"{prefix}{name}", type_=sa.Date)

        def moment(name: str) -> Col:
            return sa.bindparam(f"{prefix}{name}", type_=sa.DateTime(timezone=True))

        kind = sa.bindparam(f"{prefix}kind", type_=sa.Text)
        return cls(day("start"), day("end"), kind, moment("start_at"), moment("end_at"), named)

    @staticmethod
    def values(prefix: str, period: Period, start_at: datetime, end_at: datetime) -> dict[str, Any]:
        return {
            f"{prefix}start": period.start,
            f"{prefix}end": period.end,
            f"{prefix}kind": period.kind or "",
            f"{prefix}start_at": start_at,
            f"{prefix}end_at": end_at,
        }


_SCOPE_ID = sa.bindparam("scope_id", type_=sa.Uuid)
_SCOPE_TEAMS = sa.bindparam("scope_teams", type_=sa.Uuid, expanding=True)
_SCOPE_REGION = sa.bindparam("scope_region", type_=sa.Text)
_SCOPE_KEY = sa.bindparam("scope_key", type_=sa.Text)


@dataclass(frozen=True, slots=True)
class ScopeParams:
    """A scope of a fixed kind whose rep, teams and region are bound parameters (`values`).
    `one_team`: a team scope without teams below it (a shape of its own: `one_team`)."""

    kind: ScopeKind
    one_team: bool = False
    id: Col = _SCOPE_ID
    teams: Col = _SCOPE_TEAMS
    region: Col = _SCOPE_REGION
    key: Col = _SCOPE_KEY

    @staticmethod
    def values(scope: Scope) -> dict[str, Any]:
        return {
            "scope_id": scope.id,
            "scope_teams": list(scope.teams),
            "scope_region": scope.region,
            "scope_key": scope.key or "",
        }


# What the statements take: a period or scope with values, or one with bound parameters.
Span = Period | PeriodParams
AnyScope = Scope | ScopeParams


def scope_key(scope: AnyScope) -> str | Col:
    """The scope's key as targets name it ("" for the company)."""
    return scope.key if isinstance(scope, ScopeParams) else scope.key or ""


def in_scope(scope: AnyScope, rep: Col, team: Col, region: Col) -> sa.ColumnElement[bool]:
    """A fact's attribution (its rep, team and region columns) within the scope."""
    if scope.kind == "rep":
        return rep == scope.id
    if scope.kind == "team":
        return team.in_(scope.teams)
    if scope.kind == "region":
        return region == scope.region
    return sa.true()


def within(day: Col, period: Span) -> sa.ColumnElement[bool]:
    return sa.and_(day >= period.start, day < period.end)


def _last_day(period: Period) -> date:
    return period.end - timedelta(days=1)


def _counted() -> sa.ColumnElement[bool]:
    return CUSTOMERS.c.status.not_in(sorted(NOT_COUNTED))


Row = Any  # a statement that answers one row of labelled measures


async def one_row(session: AsyncSession, *rows: Row) -> dict[str, Any]:
    """Several one-row statements answered in one round trip (their labels kept)."""
    if len(rows) == 1:
        return dict((await session.execute(rows[0])).one()._mapping)
    subs = [r.subquery(f"m{n}") for n, r in enumerate(rows)]
    joined: Any = subs[0]
    for sub in subs[1:]:
        joined = joined.join(sub, sa.true())
    stmt = sa.select(*[c for sub in subs for c in sub.c]).select_from(joined)
    return dict((await session.execute(stmt)).one()._mapping)


@dataclass(frozen=True, slots=True)
class Groups:
    """Several groups of one-row statements as one statement (`groups_statement`), and the
    names of each group's measures."""

    stmt: sa.Select[Any]
    names: list[list[str]]


def groups_statement(groups: Sequence[Sequence[Row]]) -> Groups:
    subs = [[r.subquery(f"g{g}m{n}") for n, r in enumerate(rows)] for g, rows in enumerate(groups)]
    flat = [sub for group in subs for sub in group]
    joined: Any = flat[0]
    for sub in flat[1:]:
        joined = joined.join(sub, sa.true())
    columns = [
        c.label(f"g{g}_{c.name}") for g, group in enumerate(subs) for sub in group for c in sub.c
    ]
    names = [[c.name for sub in group for c in sub.c] for group in subs]
    return Groups(sa.select(*columns).select_from(joined), names)


async def read_groups(
    session: AsyncSession, groups: Groups, values: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Per group, its statements' labelled measures (a label may recur in another group), in
    one round trip (`values`: the bound parameters' values)."""
    row = (await session.execute(groups.stmt, values)).one()
    out: list[dict[str, Any]] = []
    at = 0
    for names in groups.names:
        out.append(dict(zip(names, row[at : at + len(names)], strict=True)))
        at += len(names)
    return out


async def rows_of_groups(
    session: AsyncSession, groups: Sequence[Sequence[Row]]
) -> list[dict[str, Any]]:
    """Several groups of one-row statements answered in one round trip: per group, its
    statements' labelled measures (a label may recur in another group)."""
    return await read_groups(session, groups_statement(groups))


# --- the rollups ----------------------------------------------------------------------------

_DAILY = {"rep": DAILY_REPS, "team": DAILY_TEAMS, "region": DAILY_REGIONS, "company": DAILY_COMPANY}


def _daily_scope(scope: AnyScope) -> tuple[sa.Table, sa.ColumnElement[bool]]:
    table = _DAILY[scope.kind]
    if scope.kind == "rep":
        return table, table.c.rep_id == scope.id
    if scope.kind == "team":
        return table, table.c.team_id.in_(scope.teams)
    if scope.kind == "region":
        return table, table.c.region == scope.region
    return table, sa.true()


def _total(t: Any, name: str) -> Any:
    return sa.func.coalesce(sa.func.sum(t[name]), 0).label(name)


def rolled_up(scope: AnyScope, period: Span) -> Row:
    """The period's flows (its days summed) and the counts at its end (every change before
    its end summed), from the daily rollups: two scans, the period's days from the table and
    the changes before its end from the index that holds them (`ix_daily_*_at_end`)."""
    table, where = _daily_scope(scope)
    t = table.c
    # A region's plan items are asked of the facts (a plan belongs to a rep, not a region).
    names = [m for m in FLOWS if scope.kind != "region" or not m.startswith("plan_")]
    flows = sa.select(*[_total(t, m) for m in names]).where(where, within(t.day, period))
    at_end = sa.select(*[_total(t, m) for m in POINT_IN_TIME]).where(where, t.day < period.end)
    f, a = flows.subquery("flows"), at_end.subquery("at_end")
    return sa.select(*f.c, *a.c).select_from(f.join(a, sa.true()))


def _flow(t: Any, name: str, period: Span) -> Any:
    return sa.func.coalesce(sa.func.sum(t[name]).filter(t.day >= period.start), 0).label(name)


def rolled_up_by_rep(rep_ids: Sequence[uuid.UUID], period: Period) -> sa.Select[Any]:
    """`rolled_up`'s flows of each of these reps, one row per rep with any (for a report of
    many reps in one statement)."""
    t = DAILY_REPS.c
    return (
        sa.select(t.rep_id, *[_flow(t, m, period) for m in FLOWS])
        .where(t.rep_id.in_(list(rep_ids)), t.day >= period.start, t.day < period.end)
        .group_by(t.rep_id)
    )


def rolled_up_by_rep_of(reps: Any, period: Period) -> sa.Select[Any]:
    """`rolled_up_by_rep` for the reps a subquery or CTE lists (its `id` column, e.g. a team's
    `rep_members`): joined, so that one statement finds the reps and their flows."""
    t = DAILY_REPS.c
    on = sa.and_(t.rep_id == reps.c.id, within(t.day, period))
    flows = [_flow(t, m, period) for m in FLOWS]
    return (
        sa.select(reps.c.id.label("rep_id"), *flows)
        .select_from(reps.join(DAILY_REPS, on))
        .group_by(reps.c.id)
    )


def active_at_end(scope: AnyScope, period: Span, label: str) -> Row:
    table, where = _daily_scope(scope)
    t = table.c
    total = sa.func.coalesce(sa.func.sum(t.active), 0).label(label)
    return sa.select(total).where(where, t.day < period.end)


def share_above(scope: ScopeParams, period: PeriodParams, directory: Directory, name: str) -> Row:
    """customer_share's denominator with the scope above resolved in the statement (as
    `scopes.parent` does): the active customers at the period's end of a rep's team at the
    period's end (its membership then, else the directory's team), of a team's parent team,
    else of the company; and that team (`share_of`, null: the company)."""
    company = active_at_end(COMPANY, period, "share_active").scalar_subquery()
    users, teams = directory.users.c, directory.teams.c
    if scope.kind == "rep":
        m = MEMBERSHIPS.c
        member = (
            sa.select(m.team_id)
            .where(
                m.user_id == scope.id,
                sa.or_(m.valid_from.is_(None), m.valid_from < period.end_at),
            )
            .order_by(m.valid_from.desc().nulls_last())
            .limit(1)
            .scalar_subquery()
        )
        user = sa.select(users.team_id).where(users.id == scope.id).scalar_subquery()
        above: Col = sa.func.coalesce(member, user)
    elif scope.kind == "team":
        above = sa.select(teams.parent_id).where(teams.id == scope.id).scalar_subquery()
    else:
        return sa.select(company.label("share_active"), sa.null().label("share_of"))
    top = sa.select(above.label("id")).cte(f"{name}_above")
    tree = sa.select(top.c.id).where(top.c.id.is_not(None)).cte(f"{name}_tree", recursive=True)
    tree = tree.union(sa.select(teams.id).where(teams.parent_id == tree.c.id))
    d = DAILY_TEAMS.c
    # Team by team from `ix_daily_teams_at_end` (as a semi-join it scans every team's days).
    per_team = (
        sa.select(sa.func.sum(d.active).label("active"))
        .where(d.team_id == tree.c.id, d.day < period.end)
        .lateral(f"{name}_active")
    )
    # A sum of the teams' sums (bigint) is numeric: a count again, as the company's is.
    below = (
        sa.select(sa.cast(sa.func.coalesce(sa.func.sum(per_team.c.active), 0), sa.BigInteger))
        .select_from(tree.join(per_team, sa.true()))
        .scalar_subquery()
    )
    team_id = sa.select(top.c.id).scalar_subquery()
    return sa.select(
        sa.case((team_id.is_(None), company), else_=below).label("share_active"),
        team_id.label("share_of"),
    )


def period_counted(period: Span, share: Decimal | Col) -> Row:
    """The company's customers counted once in a named period (visited, ordering,
    repeat-purchasing), and the amount of the top share of the ordering ones."""
    p, s = PERIOD_COUNTS.c, PERIOD_SALES.c
    key = sa.and_(p.kind == period.kind, p.period == period.start)

    def counted(column: Col, label: str) -> Any:
        found = sa.select(column).where(key).scalar_subquery()
        return sa.func.coalesce(found, 0).label(label)

    ordering = sa.select(p.ordering).where(key).scalar_subquery()
    top = (
        sa.select(s.amount)
        .where(s.kind == period.kind, s.period == period.start)
        .order_by(s.amount.desc(), s.customer_id)
        .limit(sa.cast(sa.func.coalesce(sa.func.ceil(ordering * share), 0), sa.BigInteger))
        .subquery("top")
    )
    return sa.select(
        counted(p.visited, "visited_customers"),
        counted(p.ordering, "ordering_customers"),
        counted(p.repeat, "repeat_customers"),
        counted(p.reengaged, "reengaged"),
        counted(p.redeveloped, "redeveloped"),
        sa.select(sa.func.coalesce(sa.func.sum(top.c.amount), 0))
        .scalar_subquery()
        .label("top_amount"),
    )


# --- the fact tables -------------------------------------------------------------------------


def _state_at(day: date) -> Any:
    """The customer's state at the end of `day`: its last version of that day or before (its
    first version when it has none so early)."""
    v = CUSTOMER_VERSIONS.alias("state")
    early = v.c.day <= day
    return (
        sa.select(v.c.owner_id, v.c.team_id, v.c.region, v.c.level)
        .where(v.c.customer_id == CUSTOMERS.c.id)
        .order_by(
            early.desc(),
            sa.case((early, v.c.day)).desc().nulls_last(),
            sa.case((early, v.c.seq)).desc().nulls_last(),
            v.c.day,
            v.c.seq,
        )
        .limit(1)
        .lateral("state")
    )


def _ever_in_scope(scope: Scope) -> sa.ColumnElement[bool]:
    """Narrowing: a customer that never was in the scope cannot be in it at a period's end."""
    if scope.kind == "company":
        return sa.true()
    v = CUSTOMER_VERSIONS.c
    return CUSTOMERS.c.id.in_(
        sa.select(v.customer_id).where(in_scope(scope, v.owner_id, v.team_id, v.region))
    )


def _live_order_between(first: date, last: date) -> sa.ColumnElement[bool]:
    o = ORDERS.alias("recent")
    return (
        sa.select(sa.literal(1))
        .where(
            o.c.customer_id == CUSTOMERS.c.id,
            o.c.cancelled.is_(False),
            o.c.day >= first,
            o.c.day <= last,
        )
        .exists()
    )


def _at_end_conditions(
    scope: Scope, period: Period, window_days: int
) -> tuple[Any, dict[str, sa.ColumnElement[bool]]]:
    last = _last_day(period)
    state = _state_at(last)
    c = CUSTOMERS.c
    mine = in_scope(scope, state.c.owner_id, state.c.team_id, state.c.region)
    return state, {
        "undeveloped": sa.and_(
            mine,
            c.created_day <= last,
            sa.or_(c.first_order_day.is_(None), c.first_order_day > last),
        ),
        "a_level": sa.and_(mine, c.created_day <= last, state.c.level == "A"),
        "active": sa.and_(mine, _live_order_between(last - timedelta(days=window_days - 1), last)),
    }


def at_end_from_facts(
    scope: Scope, period: Period, window_days: int, labels: dict[str, str] | None = None
) -> Row:
    """The customers counted at the period's end (`labels` renames them)."""
    state, conditions = _at_end_conditions(scope, period, window_days)
    names = labels or {name: name for name in conditions}
    return (
        sa.select(
            *[
                sa.func.count().filter(conditions[name]).label(label)
                for name, label in names.items()
            ]
        )
        .select_from(CUSTOMERS.join(state, sa.true()))
        .where(_counted(), _ever_in_scope(scope))
    )


def _live_orders(scope: AnyScope, period: Span) -> sa.ColumnElement[bool]:
    o = ORDERS.c
    return sa.and_(
        within(o.day, period),
        o.cancelled.is_(False),
        in_scope(scope, o.owner_id, o.team_id, o.region),
    )


def _visits(scope: AnyScope, period: Span) -> sa.ColumnElement[bool]:
    v = VISITS.c
    return sa.and_(within(v.day, period), in_scope(scope, v.rep_id, v.team_id, v.region))


def flows_from_facts(scope: AnyScope, period: Span) -> Row:
    """The period's flows straight from the facts (plan items: `plan_items_from_facts`)."""
    c, v, o, p = CUSTOMERS.c, VISITS.c, ORDERS.c, PAYMENTS.c

    def scalar(stmt: sa.Select[Any], name: str) -> Any:
        return stmt.scalar_subquery().label(name)

    def total(column: Col) -> Any:
        return sa.func.coalesce(sa.func.sum(column), 0)

    stmt = sa.select(
        scalar(
            sa.select(sa.func.count()).where(
                within(c.created_day, period),
                _counted(),
                in_scope(scope, c.created_owner_id, c.created_team_id, c.created_region),
            ),
            "new_customers",
        ),
        scalar(
            sa.select(sa.func.count()).where(
                within(c.first_order_day, period),
                _counted(),
                in_scope(scope, c.first_owner_id, c.first_team_id, c.first_region),
            ),
            "developed",
        ),
        scalar(sa.select(sa.func.count()).where(_visits(scope, period)), "visits"),
        scalar(
            sa.select(sa.func.count()).where(_visits(scope, period), v.effective),
            "effective_visits",
        ),
        scalar(
            sa.select(sa.func.count()).where(_visits(scope, period), v.order_taken),
            "order_visits",
        ),
        scalar(sa.select(sa.func.count()).where(_live_orders(scope, period)), "orders"),
        scalar(sa.select(total(o.amount)).where(_live_orders(scope, period)), "sales_amount"),
        scalar(sa.select(total(o.gross_profit)).where(_live_orders(scope, period)), "gross_profit"),
        scalar(
            sa.select(total(o.paid_amount)).where(_live_orders(scope, period)), "paid_on_orders"
        ),
        scalar(
            sa.select(total(p.amount)).where(
                within(p.day, period),
                p.reversed.is_(False),
                in_scope(scope, p.owner_id, p.team_id, p.region),
            ),
            "collected",
        ),
    )
    return stmt


def _plan_items(scope: AnyScope, period: Span) -> tuple[Any, sa.ColumnElement[bool]]:
    """Plan items of the period in the scope: the plan's rep and team; for a region, the
    customer's region on the plan's day (a plan item carries no region of its own)."""
    i = PLAN_ITEMS.c
    if scope.kind != "region":
        return PLAN_ITEMS, sa.and_(
            within(i.day, period), i.approved, in_scope(scope, i.rep_id, i.team_id, i.team_id)
        )
    v = CUSTOMER_VERSIONS.alias("at_plan")
    region = (
        sa.select(v.c.region)
        .where(v.c.customer_id == i.customer_id, v.c.day <= i.day)
        .order_by(v.c.day.desc(), v.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    return PLAN_ITEMS, sa.and_(within(i.day, period), i.approved, region == scope.region)


def plan_items_from_facts(scope: AnyScope, period: Span) -> Row:
    table, where = _plan_items(scope, period)
    return sa.select(
        sa.func.count().label("plan_items"),
        sa.func.count().filter(table.c.fulfilled_by.is_not(None)).label("plan_fulfilled"),
    ).where(where)


def _customer_sales(scope: AnyScope, period: Span) -> Any:
    """Each customer with orders in the period: its amount, its orders, and whether one of them
    repeats a purchase (is not its first-ever order)."""
    o = ORDERS.c
    return (
        sa.select(
            o.customer_id,
            sa.func.sum(o.amount).label("amount"),
            sa.func.count().label("orders"),
            sa.func.bool_or(sa.not_(o.first)).label("repeat"),
        )
        .where(_live_orders(scope, period))
        .group_by(o.customer_id)
        .subquery("sales")
    )


def one_team(scope: AnyScope, period: Span) -> bool:
    """Whether the scope's visited customers of the period are in `period_team_counts`."""
    named = period.named if isinstance(period, PeriodParams) else period.kind is not None
    if isinstance(scope, ScopeParams):
        return scope.one_team and named
    return scope.kind == "team" and named and scope.teams == (scope.id,)


def distinct_from_facts(
    scope: AnyScope, period: Span, share: Decimal | Col, *, rolled_up: bool = False
) -> Row:
    """Customers counted once in the period, and the top customers' amount. `rolled_up`: the
    visited customers of a one-team scope (`one_team`) from `period_team_counts`."""
    v = VISITS.c
    if rolled_up and one_team(scope, period):
        t = PERIOD_TEAM_COUNTS.c
        visited: Any = sa.func.coalesce(
            sa.select(t.visited)
            .where(t.kind == period.kind, t.period == period.start, t.team_id == scope.id)
            .scalar_subquery(),
            0,
        )
    else:
        visited = (
            sa.select(sa.func.count(sa.distinct(v.customer_id)))
            .where(_visits(scope, period))
            .scalar_subquery()
        )
    sales = _customer_sales(scope, period)
    if rolled_up:
        return _sales_counted(visited, sales, share)
    ranked = sa.select(
        sales.c.amount,
        sales.c.repeat,
        sa.func.row_number().over(order_by=(sales.c.amount.desc(), sales.c.customer_id)).label("n"),
        sa.func.count().over().label("customers"),
    ).subquery("ranked")
    top = ranked.c.n <= sa.func.ceil(ranked.c.customers * share)
    return sa.select(
        visited.label("visited_customers"),
        sa.func.count().label("ordering_customers"),
        sa.func.count().filter(ranked.c.repeat).label("repeat_customers"),
        sa.func.coalesce(sa.func.sum(ranked.c.amount).filter(top), 0).label("top_amount"),
    ).select_from(ranked)


def _sales_counted(visited: Any, sales: Any, share: Decimal | Col) -> Row:
    """`distinct_from_facts`'s customers with orders counted in one aggregate, the top ones'
    amount from their amounts in order (a sort of bare amounts; which of two equal amounts
    is the top's does not change the sum). The plain aggregate ranks the customers instead
    (the definition, kept as the baseline)."""
    amounts = sa.func.array_agg(aggregate_order_by(sales.c.amount, sales.c.amount.desc()))
    counted = sa.select(
        sa.func.count().label("customers"),
        sa.func.count().filter(sales.c.repeat).label("repeat"),
        sa.type_coerce(amounts, ARRAY(sa.Numeric)).label("amounts"),
    ).subquery("counted")
    top_n = sa.cast(sa.func.ceil(counted.c.customers * share), sa.Integer)
    top = sa.func.unnest(counted.c.amounts[1:top_n]).table_valued("amount").render_derived("top")
    top_amount = sa.select(sa.func.coalesce(sa.func.sum(top.c.amount), 0)).scalar_subquery()
    return sa.select(
        visited.label("visited_customers"),
        counted.c.customers.label("ordering_customers"),
        counted.c.repeat.label("repeat_customers"),
        top_amount.label("top_amount"),
    ).select_from(counted)


# --- shared by both paths: small tables ------------------------------------------------------


def reps(scope: AnyScope, start: datetime | Col, end: datetime | Col, period: Span) -> Row:
    """The reps of the scope during the period: members (as reps) of the scope's teams at any
    moment of it; of a region, the reps who visited a customer there."""
    if scope.kind == "rep":
        return sa.select(sa.literal(1).label("reps"))
    if scope.kind == "region":
        v = VISITS.c
        return sa.select(sa.func.count(sa.distinct(v.rep_id)).label("reps")).where(
            _visits(scope, period)
        )
    m = MEMBERSHIPS.c
    where = [
        m.role == "rep",
        sa.or_(m.valid_from.is_(None), m.valid_from < end),
        sa.or_(m.valid_to.is_(None), m.valid_to > start),
    ]
    if scope.kind == "team":
        where.append(m.team_id.in_(scope.teams))
    return sa.select(sa.func.count(sa.distinct(m.user_id)).label("reps")).where(*where)


def _leads(scope: AnyScope, period: Span) -> sa.ColumnElement[bool]:
    lead = LEADS.c
    return sa.and_(
        within(lead.received_day, period), in_scope(scope, lead.owner_id, lead.team_id, lead.region)
    )


def _won_lead() -> sa.ColumnElement[bool]:
    return OPPORTUNITIES.c.stage == "won"


def funnel(scope: AnyScope, period: Span) -> Row:
    lead, opp = LEADS.c, OPPORTUNITIES.c
    return (
        sa.select(
            sa.func.count().label("leads"),
            sa.func.count().filter(lead.contacted_at.is_not(None)).label("contacted"),
            sa.func.count().filter(lead.converted_at.is_not(None)).label("qualified"),
            sa.func.count().filter(lead.converted_at.is_not(None), _won_lead()).label("won_leads"),
            sa.func.count().filter(lead.invalid).label("invalid_leads"),
        )
        .select_from(LEADS.outerjoin(OPPORTUNITIES, opp.id == lead.opportunity_id))
        .where(_leads(scope, period))
    )


def _won(scope: AnyScope, period: Span) -> sa.ColumnElement[bool]:
    o = OPPORTUNITIES.c
    return sa.and_(
        o.stage == "won",
        within(o.won_day, period),
        in_scope(scope, o.owner_id, o.team_id, o.region),
    )


def won(scope: AnyScope, period: Span) -> Row:
    o = OPPORTUNITIES.c
    days = sa.extract("epoch", o.won_at - o.created_at) / 86400
    return sa.select(
        sa.func.count().label("won"),
        sa.func.coalesce(sa.func.sum(o.amount), 0).label("won_amount"),
        sa.func.percentile_cont(0.5).within_group(days).label("cycle_days"),
    ).where(_won(scope, period))


def stages(scope: AnyScope, period: Span) -> Row:
    """Per stage left in the period: [left forward, left], as one JSON object."""
    s = STAGE_MOVES.c
    per_stage = (
        sa.select(
            s.from_stage,
            sa.func.count(sa.distinct(s.opportunity_id)).filter(s.forward).label("forward"),
            sa.func.count(sa.distinct(s.opportunity_id)).label("left"),
        )
        .where(within(s.day, period), in_scope(scope, s.owner_id, s.team_id, s.region))
        .group_by(s.from_stage)
        .subquery("per_stage")
    )
    moves = sa.func.jsonb_object_agg(
        per_stage.c.from_stage, sa.func.jsonb_build_array(per_stage.c.forward, per_stage.c.left)
    )
    return sa.select(sa.func.coalesce(moves, sa.text("'{}'::jsonb")).label("stages"))


def _reengaged(scope: AnyScope, period: Span) -> Any:
    """Customers re-engaged in the period (a completed visit while dormant or lost), with the
    day of their first such visit."""
    v = VISITS.c
    # The statuses written out, as the partial indexes `ix_visits_reengaged_*` name them: a
    # plan made once for every value of bound ones could not use those indexes.
    statuses: Col = sa.bindparam(
        "reengaged_statuses", list(REENGAGED_STATUSES), expanding=True, literal_execute=True
    )
    return (
        sa.select(v.customer_id, sa.func.min(v.day).label("first_day"))
        .where(_visits(scope, period), v.customer_status.in_(statuses))
        .group_by(v.customer_id)
        .subquery("reengaged")
    )


def _ordered_after(reengaged: Any, period: Span) -> sa.ColumnElement[bool]:
    o = ORDERS.c
    return (
        sa.select(sa.literal(1))
        .where(
            o.customer_id == reengaged.c.customer_id,
            # As a live-orders partial index (`WHERE NOT cancelled`) is written, so that one
            # can answer this from the index alone (`IS false` does not prove its condition).
            sa.not_(o.cancelled),
            o.day >= reengaged.c.first_day,
            o.day < period.end,
        )
        .exists()
    )


def redevelopment(scope: AnyScope, period: Span) -> Row:
    r = _reengaged(scope, period)
    return sa.select(
        sa.func.count().label("reengaged"),
        sa.func.count().filter(_ordered_after(r, period)).label("redeveloped"),
    ).select_from(r)


# --- the records behind a figure (explain) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Records:
    """A list of records: its statement and the unique column it pages on."""

    kind: str
    stmt: sa.Select[Any]
    key: Col


async def records_page(session: AsyncSession, records: Records, page: PageParams) -> list[Any]:
    sub = records.stmt.subquery("records")
    stmt = keyset(sa.select(sub), [sub.c[records.key.name]], page)
    return list(await session.execute(stmt))


def customers_created(scope: Scope, period: Period) -> Records:
    c = CUSTOMERS.c
    stmt = sa.select(
        c.id, c.code, c.name, c.created_day.label("day"), c.created_owner_id.label("owner_id")
    ).where(
        within(c.created_day, period),
        _counted(),
        in_scope(scope, c.created_owner_id, c.created_team_id, c.created_region),
    )
    return Records("customer", stmt, c.id)


def customers_developed(scope: Scope, period: Period) -> Records:
    c = CUSTOMERS.c
    stmt = sa.select(
        c.id, c.code, c.name, c.first_order_day.label("day"), c.first_order_id.label("order_id")
    ).where(
        within(c.first_order_day, period),
        _counted(),
        in_scope(scope, c.first_owner_id, c.first_team_id, c.first_region),
    )
    return Records("customer", stmt, c.id)


def customers_at_end(scope: Scope, period: Period, window_days: int, which: str) -> Records:
    """Customers counted at the period's end: `undeveloped`, `a_level` or `active`."""
    state, conditions = _at_end_conditions(scope, period, window_days)
    c = CUSTOMERS.c
    stmt = (
        sa.select(c.id, c.code, c.name, state.c.owner_id, state.c.level)
        .select_from(CUSTOMERS.join(state, sa.true()))
        .where(_counted(), _ever_in_scope(scope), conditions[which])
    )
    return Records("customer", stmt, c.id)


def development_candidates(scope: Scope, period: Period, window_days: int) -> Records:
    """Developed in the period, or existing and still without an order at its end."""
    developed = customers_developed(scope, period).stmt.with_only_columns(CUSTOMERS.c.id)
    undeveloped = customers_at_end(
        scope, period, window_days, "undeveloped"
    ).stmt.with_only_columns(CUSTOMERS.c.id)
    c = CUSTOMERS.c
    stmt = sa.select(c.id, c.code, c.name, c.first_order_day.label("day")).where(
        c.id.in_(sa.union(developed, undeveloped))
    )
    return Records("customer", stmt, c.id)


def visits(scope: Scope, period: Period, only: str | None = None) -> Records:
    v = VISITS.c
    stmt = sa.select(
        v.id, v.day, v.rep_id, v.customer_id, v.effective, v.order_taken, v.customer_status
    ).where(_visits(scope, period))
    if only is not None:
        stmt = stmt.where(v[only])
    return Records("visit", stmt, v.id)


def visited_customers(scope: Scope, period: Period) -> Records:
    v = VISITS.c
    stmt = (
        sa.select(v.customer_id.label("id"), sa.func.count().label("visits"))
        .where(_visits(scope, period))
        .group_by(v.customer_id)
    )
    return Records("customer", stmt, v.customer_id.label("id"))


def orders(scope: Scope, period: Period) -> Records:
    o = ORDERS.c
    stmt = sa.select(
        o.id, o.day, o.customer_id, o.owner_id, o.amount, o.gross_profit, o.paid_amount
    ).where(_live_orders(scope, period))
    return Records("order", stmt, o.id)


def payments_on_orders(scope: Scope, period: Period) -> Records:
    p, o = PAYMENTS.c, ORDERS.c
    stmt = (
        sa.select(p.id, p.day, p.order_id, p.customer_id, p.amount)
        .select_from(PAYMENTS.join(ORDERS, o.id == p.order_id))
        .where(_live_orders(scope, period), p.reversed.is_(False))
    )
    return Records("payment", stmt, p.id)


def customer_sales(scope: Scope, period: Period, *, top: Decimal | None = None) -> Records:
    """Customers with orders in the period and their amounts (`top`: only the top share)."""
    sales = _customer_sales(scope, period)
    ranked = sa.select(
        sales.c.customer_id.label("id"),
        sales.c.amount,
        sales.c.orders,
        sa.func.row_number()
        .over(order_by=(sales.c.amount.desc(), sales.c.customer_id))
        .label("rank"),
        sa.func.count().over().label("customers"),
    ).subquery("ranked")
    stmt = sa.select(ranked.c.id, ranked.c.amount, ranked.c.orders, ranked.c.rank)
    if top is not None:
        stmt = stmt.where(ranked.c.rank <= sa.func.ceil(ranked.c.customers * top))
    return Records("customer", stmt, ranked.c.id)


def repeat_customers(scope: Scope, period: Period) -> Records:
    sales = _customer_sales(scope, period)
    stmt = sa.select(sales.c.customer_id.label("id"), sales.c.amount, sales.c.orders).where(
        sales.c.repeat
    )
    return Records("customer", stmt, sales.c.customer_id.label("id"))


def plan_items(scope: Scope, period: Period, *, fulfilled: bool = False) -> Records:
    table, where = _plan_items(scope, period)
    i = table.c
    stmt = sa.select(i.id, i.day, i.rep_id, i.customer_id, i.fulfilled_by).where(where)
    if fulfilled:
        stmt = stmt.where(i.fulfilled_by.is_not(None))
    return Records("plan_item", stmt, i.id)


def rep_members(scope: Scope, period: Period, start: datetime, end: datetime) -> Records:
    if scope.kind == "region":
        v = VISITS.c
        stmt = sa.select(v.rep_id.label("id")).where(_visits(scope, period)).group_by(v.rep_id)
        return Records("rep", stmt, v.rep_id.label("id"))
    m = MEMBERSHIPS.c
    where = [
        m.role == "rep",
        sa.or_(m.valid_from.is_(None), m.valid_from < end),
        sa.or_(m.valid_to.is_(None), m.valid_to > start),
    ]
    if scope.kind == "team":
        where.append(m.team_id.in_(scope.teams))
    if scope.kind == "rep":
        where.append(m.user_id == scope.id)
    stmt = sa.select(m.user_id.label("id")).where(*where).group_by(m.user_id)
    return Records("rep", stmt, m.user_id.label("id"))


def leads(scope: Scope, period: Period, *, won_only: bool = False) -> Records:
    lead, opp = LEADS.c, OPPORTUNITIES.c
    stmt = (
        sa.select(
            lead.id,
            lead.received_day.label("day"),
            lead.source,
            lead.owner_id,
            (lead.contacted_at.is_not(None)).label("contacted"),
            (lead.converted_at.is_not(None)).label("qualified"),
            sa.func.coalesce(_won_lead(), False).label("won"),
            lead.invalid,
        )
        .select_from(LEADS.outerjoin(OPPORTUNITIES, opp.id == lead.opportunity_id))
        .where(_leads(scope, period))
    )
    if won_only:
        stmt = stmt.where(lead.converted_at.is_not(None), _won_lead())
    return Records("lead", stmt, lead.id)


def won_opportunities(scope: Scope, period: Period) -> Records:
    o = OPPORTUNITIES.c
    days = sa.extract("epoch", o.won_at - o.created_at) / 86400
    stmt = sa.select(
        o.id,
        o.won_day.label("day"),
        o.owner_id,
        o.amount,
        o.created_at,
        o.won_at,
        days.label("days"),
    ).where(_won(scope, period))
    return Records("opportunity", stmt, o.id)


def stage_moves(scope: Scope, period: Period, *, forward: bool = False) -> Records:
    s = STAGE_MOVES.c
    stmt = sa.select(
        s.event_id.label("id"), s.day, s.opportunity_id, s.from_stage, s.to_stage, s.forward
    ).where(within(s.day, period), in_scope(scope, s.owner_id, s.team_id, s.region))
    if forward:
        stmt = stmt.where(s.forward)
    return Records("stage_move", stmt, s.event_id.label("id"))


def reengaged_customers(scope: Scope, period: Period, *, redeveloped: bool = False) -> Records:
    r = _reengaged(scope, period)
    stmt = sa.select(r.c.customer_id.label("id"), r.c.first_day.label("day"))
    if redeveloped:
        stmt = stmt.where(_ordered_after(r, period))
    return Records("customer", stmt, r.c.customer_id.label("id"))


async def ids_of(session: AsyncSession, records: Records) -> list[Any]:
    sub = records.stmt.subquery("records")
    key = sub.c[records.key.name]
    return [r[0] for r in await session.execute(sa.select(key).order_by(key))]


async def regions_in(session: AsyncSession, period: Period) -> list[str]:
    """The regions with any fact in the period."""
    d = DAILY_REGIONS.c
    stmt = sa.select(d.region).distinct().where(within(d.day, period)).order_by(d.region)
    return [r[0] for r in await session.execute(stmt)]
