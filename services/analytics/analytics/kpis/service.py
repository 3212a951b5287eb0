"""The rules of the KPI endpoints: who may ask for which scope, the figure of one metric
(grouped, explained) and the dashboard (every KPI, the period before, the targets)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics import scopes
from analytics.kpis import repository
from analytics.kpis.definitions import Figure
from analytics.kpis.measures import Context, kpi_figures, kpi_figures_of_periods
from analytics.kpis.repository import Records
from analytics.kpis.schemas import DashboardQuery, GroupBy, KpiQuery
from analytics.periods import KINDS, Period, containing, parse_named, split
from analytics.scopes import Scope, ScopeKind
from analytics.targets import repository as targets
from servicekit.auth import Principal
from servicekit.errors import ValidationFailed
from servicekit.pagination import PageParams, make_page

# The longest range one question may cover, and the most groups it may be cut into.
MAX_DAYS = 366 * 5
MAX_GROUPS = 400


def period_json(period: Period) -> dict[str, Any]:
    return {"label": period.label, "from": period.start, "to": period.end}


def as_period(start: date, end: date) -> Period:
    """[start, end), named when it is exactly a week, month, quarter or year."""
    if end <= start:
        raise ValidationFailed.field("to", "must be after from")
    if (end - start).days > MAX_DAYS:
        raise ValidationFailed.field("to", f"a question covers at most {MAX_DAYS} days")
    for kind in KINDS:
        named = containing(kind, start)
        if named.start == start and named.end == end:
            return named
    return Period(start, end)


async def _groups(
    session: AsyncSession,
    ctx: Context,
    principal: Principal,
    query: KpiQuery,
    scope: Scope,
    period: Period,
) -> list[tuple[str, str | None, Scope, Period]]:
    """(key, label, scope, period) of each group."""
    by = query.group_by
    if by in (GroupBy.day, GroupBy.week, GroupBy.month):
        pieces = split(period, by.value)  # type: ignore[arg-type]
        if len(pieces) > MAX_GROUPS:
            raise ValidationFailed.field("group_by", f"at most {MAX_GROUPS} groups")
        return [(p.start.isoformat(), p.label if p.kind else None, scope, p) for p in pieces]
    if by == "rep":
        if scope.kind == "rep":
            raise ValidationFailed.field("group_by", "a rep's figures have no reps to group by")
        start, end = ctx.calendar.start(period.start), ctx.calendar.start(period.end)
        ids = await repository.ids_of(session, repository.rep_members(scope, period, start, end))
        found: list[tuple[str, str | None, Scope, Period]] = []
        for rep_id in ids:
            rep = Scope(ScopeKind.rep, rep_id)
            if await scopes.may_read(session, ctx.directory, principal, rep):
                found.append((str(rep_id), None, rep, period))
        return found
    if by == "team":
        if scope.kind == "company":
            teams = await _top_teams(session, ctx)
        elif scope.kind == "team" and scope.id is not None:
            teams = [t.id for t in await ctx.directory.subteams(session, scope.id)]
        else:
            raise ValidationFailed.field(
                "group_by", "teams group the company's or a team's figures"
            )
        out: list[tuple[str, str | None, Scope, Period]] = []
        for team_id in teams:
            team = await scopes.team_scope(session, ctx.directory, team_id)
            out.append((str(team_id), None, team, period))
        return out
    if scope.kind != "company":
        raise ValidationFailed.field("group_by", "regions group the company's figures")
    return [
        (region, region, Scope(ScopeKind.region, region=region), period)
        for region in await repository.regions_in(session, period)
    ]


async def _top_teams(session: AsyncSession, ctx: Context) -> list[uuid.UUID]:
    return await targets.top_teams(session, ctx.directory)


def _explained(
    ctx: Context, metric: str, scope: Scope, above: Scope, period: Period
) -> tuple[Records | None, Records | None]:
    """The records behind the metric's numerator and denominator."""
    r = repository
    window = ctx.active_window_days
    start, end = ctx.calendar.start(period.start), ctx.calendar.start(period.end)
    visits = r.visits(scope, period)
    sets: dict[str, tuple[Records | None, Records | None]] = {
        "new_customers": (r.customers_created(scope, period), None),
        "developed_customers": (r.customers_developed(scope, period), None),
        "development_rate": (
            r.customers_developed(scope, period),
            r.development_candidates(scope, period, window),
        ),
        "customer_share": (
            r.customers_at_end(scope, period, window, "active"),
            r.customers_at_end(above, period, window, "active"),
        ),
        "repeat_purchase_rate": (
            r.repeat_customers(scope, period),
            r.customer_sales(scope, period),
        ),
        "avg_daily_visits": (visits, r.rep_members(scope, period, start, end)),
        "visits_per_customer": (visits, r.visited_customers(scope, period)),
        "effective_visit_rate": (r.visits(scope, period, "effective"), visits),
        "transaction_rate": (r.visits(scope, period, "order_taken"), visits),
        "plan_adherence": (
            r.plan_items(scope, period, fulfilled=True),
            r.plan_items(scope, period),
        ),
        "collection_rate": (r.payments_on_orders(scope, period), r.orders(scope, period)),
        "sales_amount": (r.orders(scope, period), None),
        "gross_profit": (r.orders(scope, period), None),
        "a_level_customers": (r.customers_at_end(scope, period, window, "a_level"), None),
        "avg_sales_per_rep_per_week": (
            r.orders(scope, period),
            r.rep_members(scope, period, start, end),
        ),
        "funnel": (r.leads(scope, period, won_only=True), r.leads(scope, period)),
        "redevelopment_success": (
            r.reengaged_customers(scope, period, redeveloped=True),
            r.reengaged_customers(scope, period),
        ),
        "avg_deal_size": (r.won_opportunities(scope, period), r.won_opportunities(scope, period)),
        "sales_cycle_days": (None, r.won_opportunities(scope, period)),
        "revenue_concentration": (
            r.customer_sales(scope, period, top=ctx.top_customer_share),
            r.customer_sales(scope, period),
        ),
        "target_completion": (None, None),
        "stage_conversion": (
            r.stage_moves(scope, period, forward=True),
            r.stage_moves(scope, period),
        ),
    }
    return sets[metric]


async def _page(
    session: AsyncSession, records: Records | None, limit: int, cursor: str | None
) -> dict[str, Any] | None:
    if records is None:
        return None
    params = PageParams(limit=limit, cursor=cursor)
    rows = await repository.records_page(session, records, params)
    key = records.key.name
    items, next_cursor = make_page(rows, params, lambda r: [r._mapping[key]])
    return {
        "records": records.kind,
        # Column names are SQLAlchemy's `quoted_name` (a str subclass JSON keys may not be).
        "items": [{str(k): v for k, v in r._mapping.items()} for r in items],
        "next_cursor": next_cursor,
    }


async def kpi(
    session: AsyncSession, principal: Principal, ctx: Context, query: KpiQuery
) -> dict[str, Any]:
    scope = await scopes.readable(session, ctx.directory, principal, query.scope, query.scope_id)
    period = as_period(query.from_, query.to)
    figure: Figure = (await kpi_figures(session, ctx, scope, period))[query.metric]
    answer: dict[str, Any] = {
        "metric": query.metric,
        **scope.as_json(),
        "period": period_json(period),
        "figure": figure.as_json(),
    }
    if query.group_by is not None:
        groups = []
        for key, label, group_scope, group_period in await _groups(
            session, ctx, principal, query, scope, period
        ):
            found = (await kpi_figures(session, ctx, group_scope, group_period))[query.metric]
            groups.append(
                {
                    "key": key,
                    "label": label,
                    "from": group_period.start,
                    "to": group_period.end,
                    "figure": found.as_json(),
                }
            )
        answer["groups"] = groups
    if query.explain:
        above = await scopes.parent(session, ctx.directory, scope, ctx.calendar.start(period.end))
        numerator, denominator = _explained(ctx, query.metric, scope, above, period)
        answer["explain"] = {
            "numerator": await _page(session, numerator, query.limit, query.numerator_cursor),
            "denominator": await _page(session, denominator, query.limit, query.denominator_cursor),
        }
    return answer


async def dashboard(
    session: AsyncSession, principal: Principal, ctx: Context, query: DashboardQuery
) -> dict[str, Any]:
    scope = await scopes.readable(session, ctx.directory, principal, query.scope, query.scope_id)
    try:
        period = parse_named(query.period)
    except ValueError as exc:
        raise ValidationFailed.field("period", str(exc)) from None
    before = period.previous()
    now, then = await kpi_figures_of_periods(
        session, ctx, scope, [period, before], plain=query.plain
    )
    return {
        **scope.as_json(),
        "period": period_json(period),
        "previous_period": period_json(before),
        "figures": {k: f.as_json() for k, f in now.items()},
        "previous": {k: f.as_json() for k, f in then.items()},
    }
