"""The KPI functions: (scope, period) → the measures, → every figure with its numerator and
denominator. Reusable by any feature (the weekly report, the period summary, alerts).

    figures = await kpi_figures(session, ctx, scope, period)
    figures["effective_visit_rate"].value, .numerator, .denominator

Attribution (how a fact lands in a scope) — part of the API:

- A fact counts for the rep and team it carried when it happened (the owner and team in its
  event): a visit for its rep and the rep's team at the visit; an order, a payment, a
  customer's creation, a lead, an opportunity and a stage move for the owner and team the
  event named. A rep who moved team keeps their earlier facts in the old team.
- Counts of customers at a period's end (a_level_customers, customer_share's active
  customers, development_rate's customers still without an order) count each customer for the
  owner, team and region it had at the end of the period's last day. developed_customers
  counts a customer for its first order's owner, team and region (that order is the fact).
  Invalid and merged customers count in none of the customer counts; their orders still count
  as sales.
- A team's scope is that team and every team below it, as the tree stands when asked.
- A region is the customer's region when the fact happened (a plan item: the customer's
  region on the plan's day).
- The company is everything.
- A period is [from, to) in company days (the company's time zone, a setting, default UTC);
  a visit counts on its visit date (the day of its check-in), once completed; an order on
  its order date; a
  payment on the day it was received; a lead on the day it was received.
- Working days are Monday to Friday unless the settings list others (and its holidays).
- The reps of a team or of the company during a period are those who were members as reps at
  any moment of it (a user's first known membership holds from the beginning); of a region,
  the reps who visited a customer there in the period. avg_daily_visits is the scope's
  completed visits over (its reps x working days), which is the mean of its reps' daily
  averages; avg_sales_per_rep_per_week is sales_amount over (reps x the period's days / 7).
- customer_share compares the scope with the scope above it: a rep with the team they were in
  at the period's end, a team with its parent team, a top team or a region with the company.
- The funnel follows the leads received in the period to where they stand now: contacted (the
  assigned rep's first contact), qualified (converted into an opportunity after contact),
  won (that opportunity won); a lead counts for the rep and team it is assigned to and its
  region.
- redevelopment_success: a customer re-engaged in the period (a completed visit while it was
  dormant or lost) succeeded if it has an order dated on or after the day of that (first)
  visit and within the period.
- stage_conversion: per stage, the opportunities that left it forward (to a later stage or
  won) over those that left it (also backward or lost), moves made in the period; reopening a
  closed opportunity leaves no stage.
- sales_cycle_days: the median of (won - created) in days, of the opportunities won in the
  period; revenue_concentration: the top 20 % (a setting; at least one customer) of the
  customers with orders in the period, by amount, their share of sales_amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from analytics import scopes
from analytics.config import Settings
from analytics.kpis import repository
from analytics.kpis.definitions import Figure, Measures, figures, target_figure
from analytics.periods import Calendar, Period, top_count
from analytics.scopes import Scope, ScopeKind
from analytics.targets import repository as targets
from servicekit.directory import Directory


@dataclass(frozen=True, slots=True)
class Context:
    """What the KPI functions need besides a session: the company's calendar, the settings
    that shape the definitions, and the organisation directory."""

    calendar: Calendar
    active_window_days: int
    top_customer_share: Decimal
    directory: Directory

    @classmethod
    def of(cls, settings: Settings, directory: Directory) -> Context:
        return cls(
            settings.calendar,
            settings.active_window_days,
            settings.top_customer_share,
            directory,
        )


def _rows(
    scope: repository.AnyScope,
    period: repository.Span,
    share: Decimal | repository.Col,
    start: datetime | repository.Col,
    end: datetime | repository.Col,
    share_rows: list[repository.Row],
    *,
    plain: bool,
) -> list[repository.Row]:
    """The one-row statements `scope`'s measures of `period` are read from; `share_rows`:
    customer_share's denominator."""
    r = repository
    named = period.named if isinstance(period, r.PeriodParams) else period.kind is not None
    # The company's customers counted once in a named period are all precomputed.
    counted = not plain and scope.kind == "company" and named
    rows: list[r.Row] = [
        r.reps(scope, start, end, period),
        r.funnel(scope, period),
        r.won(scope, period),
        r.stages(scope, period),
        targets.for_scope(scope.kind, r.scope_key(scope), period),
        *share_rows,
    ]
    if not counted:
        rows.append(r.redevelopment(scope, period))
    if plain:
        rows += [r.flows_from_facts(scope, period), r.plan_items_from_facts(scope, period)]
    else:
        rows.append(r.rolled_up(scope, period))
        if scope.kind == "region":
            rows.append(r.plan_items_from_facts(scope, period))
    if counted:
        rows.append(r.period_counted(period, share))
    else:
        rows.append(r.distinct_from_facts(scope, period, share, rolled_up=not plain))
    return rows


@cache
def _statement(
    directory: Directory, kind: ScopeKind, one_team: bool, named: tuple[bool, ...]
) -> repository.Groups:
    """The statement of the measures of several periods of a scope, from the rollups, built
    once per shape (the scope's kind, a team without teams below, which periods are named)
    with bound parameters: `_values`."""
    r = repository
    scope = r.ScopeParams(kind, one_team)
    share = sa.bindparam("share", type_=sa.Numeric)
    groups = []
    for n, is_named in enumerate(named):
        period = r.PeriodParams.of(f"p{n}_", named=is_named)
        above = r.share_above(scope, period, directory, f"p{n}")
        rows = _rows(scope, period, share, period.start_at, period.end_at, [above], plain=False)
        groups.append(rows)
    return r.groups_statement(groups)


def _values(ctx: Context, scope: Scope, periods: Sequence[Period]) -> dict[str, Any]:
    values = {"share": ctx.top_customer_share, **repository.ScopeParams.values(scope)}
    for n, period in enumerate(periods):
        start, end = ctx.calendar.start(period.start), ctx.calendar.start(period.end)
        values.update(repository.PeriodParams.values(f"p{n}_", period, start, end))
    return values


def _measures(ctx: Context, period: Period, share_of: str, found: dict[str, Any]) -> Measures:
    share = ctx.top_customer_share
    m = Measures()
    stages = found.pop("stages") or {}
    m.targets = found.pop("targets") or []
    cycle = found.pop("cycle_days")
    for name, value in found.items():
        setattr(m, name, value)
    for money in ("sales_amount", "gross_profit", "paid_on_orders", "collected", "won_amount"):
        setattr(m, money, Decimal(getattr(m, money)))
    m.top_amount = Decimal(m.top_amount)
    m.top_customers = top_count(m.ordering_customers, share)
    m.cycle_days = (
        None if cycle is None else Decimal(str(cycle)).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    )
    m.stages = {stage: (int(v[0]), int(v[1])) for stage, v in sorted(stages.items())}
    m.working_days = ctx.calendar.working_days(period)
    m.weeks = period.weeks
    m.share_of = share_of
    return m


def _share_of(above: Scope) -> str:
    return above.kind if above.key is None else f"{above.kind}:{above.key}"


async def measures(
    session: AsyncSession, ctx: Context, scope: Scope, period: Period, *, plain: bool = False
) -> Measures:
    """Everything the KPIs of `scope` in `period` are made of, in one round trip. From the
    rollups; `plain`: from the fact tables alone (the definition; slower, the same figures)."""
    return (await measures_of_periods(session, ctx, scope, [period], plain=plain))[0]


async def measures_of_periods(
    session: AsyncSession,
    ctx: Context,
    scope: Scope,
    periods: Sequence[Period],
    *,
    plain: bool = False,
) -> list[Measures]:
    """`measures` of several periods of one scope, all read in one round trip (the plain
    aggregate: after the scope above of each period)."""
    if plain:
        return await _plain(session, ctx, scope, periods)
    one_team = scope.kind == "team" and scope.teams == (scope.id,)
    named = tuple(p.kind is not None for p in periods)
    stmt = _statement(ctx.directory, scope.kind, one_team, named)
    found = await repository.read_groups(session, stmt, _values(ctx, scope, periods))
    out = []
    for period, values in zip(periods, found, strict=True):
        team_id = values.pop("share_of")
        share_of = "company" if team_id is None else f"team:{team_id}"
        out.append(_measures(ctx, period, share_of, values))
    return out


async def _plain(
    session: AsyncSession, ctx: Context, scope: Scope, periods: Sequence[Period]
) -> list[Measures]:
    r = repository
    window, share = ctx.active_window_days, ctx.top_customer_share
    groups, above = [], []
    for period in periods:
        start, end = ctx.calendar.start(period.start), ctx.calendar.start(period.end)
        parent = await scopes.parent(session, ctx.directory, scope, end)
        share_rows = [
            r.at_end_from_facts(scope, period, window),
            r.at_end_from_facts(parent, period, window, {"active": "share_active"}),
        ]
        groups.append(_rows(scope, period, share, start, end, share_rows, plain=True))
        above.append(parent)
    found = await r.rows_of_groups(session, groups)
    return [
        _measures(ctx, period, _share_of(parent), values)
        for period, parent, values in zip(periods, above, found, strict=True)
    ]


def target_completion(m: Measures) -> Figure:
    """The targets set for exactly this scope and period, each with its actual."""
    rows = [
        {
            "target_id": target["id"],
            **target_figure(target["metric"], m.actual(target["metric"]), Decimal(target["value"])),
        }
        for target in m.targets
    ]
    return Figure("target_completion", None, details={"targets": rows})


def _figures(m: Measures) -> dict[str, Figure]:
    out = figures(m)
    out["target_completion"] = target_completion(m)
    return out


async def kpi_figures(
    session: AsyncSession, ctx: Context, scope: Scope, period: Period, *, plain: bool = False
) -> dict[str, Figure]:
    """Every KPI of `scope` in `period` (see `measures` for `plain`)."""
    return _figures(await measures(session, ctx, scope, period, plain=plain))


async def kpi_figures_of_periods(
    session: AsyncSession,
    ctx: Context,
    scope: Scope,
    periods: Sequence[Period],
    *,
    plain: bool = False,
) -> list[dict[str, Figure]]:
    """`kpi_figures` of several periods (a dashboard's: the period and the one before), read
    in one round trip."""
    return [
        _figures(m) for m in await measures_of_periods(session, ctx, scope, periods, plain=plain)
    ]
