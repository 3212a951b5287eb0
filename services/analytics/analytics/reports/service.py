"""The reports: the weekly team report (周报) and the periodic summary (阶段性总结).

Every figure is part 1's: its measures and the KPIs made of them (`kpis.definitions.figures`,
`target_figure`), under its attribution rules and its access rule (`scopes.readable`: a rep
sees their own figures, so a team's report is a manager's, an admin's or a key's with
`kpis:read`; anything else is 404). The summary takes every measure (`kpis.measures.measures`);
the weekly report only flows, which it reads from the same rollups by the same statements
(`rolled_up` and `reps` for the team, `rolled_up_by_rep` for its reps in one statement).

The weekly report of a team for an ISO week (Monday to Sunday, company days):
- per team and per rep (the reps who were members of the team or a team below it during the
  week, as `group_by=rep` of the KPIs counts them): new customers, sales, collections (the
  payments received in the week: the `collections` target metric's actual), the collection,
  effective visit and transaction rates, average sales per rep per week;
- target completion: the targets set on the team or the rep for the month holding the week
  (the month of its Thursday, as ISO weeks are numbered), with the month's actual from its
  first day up to the week's end;
- competitor news and customer feedback: what the week's completed visits and daily reports
  of the team said (the newest 500 of each source);
- complaints opened (raised in the week) and resolved (a resolution in the week), whatever
  they are now;
- next week's plan: the items of the team's approved visit plans of the following week;
- abnormal customers: the insight alerts about a customer of the team's reps raised in the
  week (churn risk, an A-level customer's incomplete data, ...), whatever their state now.

The summary of any scope over [from, to): the funnel, the stage conversion with its bottleneck
stage, the sales cycle, the average deal size, revenue concentration, new and developed
customers and sales, each beside the period before of the same length (`Period.previous`)
and beside the target set for exactly that scope and period, where there is one.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics import scopes
from analytics.alerts import repository as alert_records
from analytics.alerts.service import read as alert_json
from analytics.kpis import repository as kpi_records
from analytics.kpis.definitions import Measures, amount, figures, target_figure
from analytics.kpis.measures import Context, measures, target_completion
from analytics.kpis.service import as_period, period_json
from analytics.periods import Period, containing, parse_named
from analytics.reports import comparisons, repository
from analytics.reports.schemas import SummaryQuery, WeeklyQuery
from analytics.rollups.models import AMOUNTS
from analytics.scopes import Scope, ScopeKind
from servicekit.auth import Principal
from servicekit.csvfiles import csv_lines
from servicekit.errors import ValidationFailed

# The KPIs of the weekly report, besides collections and target completion.
WEEKLY_FIGURES = (
    "new_customers",
    "sales_amount",
    "collection_rate",
    "effective_visit_rate",
    "transaction_rate",
    "avg_sales_per_rep_per_week",
)
# The summary's figures beside the period before: (metric, is a rate).
SUMMARY_FIGURES = (
    ("new_customers", False),
    ("developed_customers", False),
    ("sales_amount", False),
    ("avg_deal_size", False),
    ("sales_cycle_days", False),
    ("revenue_concentration", True),
)
RAISED, RESOLVED = "raised", "resolved"
TARGET_METRICS_IN_CSV = ("sales_amount", "gross_profit", "new_customers", "collections", "visits")


def parse_week(text: str) -> Period:
    try:
        period = parse_named(text)
    except ValueError as exc:
        raise ValidationFailed.field("week", f"{exc}; a week is written 2026-W47") from None
    if period.kind != "week":
        raise ValidationFailed.field("week", "an ISO week is written 2026-W47")
    return period


def _figures(m: Measures) -> dict[str, Any]:
    found = figures(m)
    out = {name: found[name].as_json() for name in WEEKLY_FIGURES}
    out["collections"] = amount("collections", Decimal(m.actual("collections"))).as_json()
    return out


def _progress(m: Measures | None, month: Period, found: Sequence[Any]) -> list[dict[str, Any]]:
    """The scope's targets of the month, each with `m`'s actual (the month to the week's end)."""
    if m is None:
        return []
    return [
        {
            "target_id": t.id,
            "period": month.label,
            **target_figure(t.metric, m.actual(t.metric), Decimal(t.value)),
        }
        for t in found
    ]


def _rolled_up(ctx: Context, values: dict[str, Any], period: Period, reps: int) -> Measures:
    """A scope's measures as part 1's `measures` reads them from the rollups (`rolled_up`: the
    period's flows) with its reps, weeks and working days. What the rollups do not hold
    (customers counted once, the pipeline) stays empty: the weekly report reads none of it
    (`WEEKLY_FIGURES`, collections, the targets' actuals are all flows)."""
    m = Measures()
    for name, value in values.items():
        setattr(m, name, Decimal(value) if name in AMOUNTS else value)
    m.reps = reps
    m.weeks = period.weeks
    m.working_days = ctx.calendar.working_days(period)
    return m


async def _team_week(session: AsyncSession, ctx: Context, scope: Scope, period: Period) -> Measures:
    start, end = ctx.calendar.start(period.start), ctx.calendar.start(period.end)
    found = await kpi_records.one_row(
        session, kpi_records.rolled_up(scope, period), kpi_records.reps(scope, start, end, period)
    )
    reps = found.pop("reps")
    return _rolled_up(ctx, found, period, reps)


def _by_scope(rows: Sequence[Any]) -> dict[tuple[str, str], list[Any]]:
    out: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        out.setdefault((row.scope, row.scope_key), []).append(row)
    return out


def _remarks(rows: Sequence[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    news: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for row in rows:
        base = {
            "source": row.source,
            "id": row.id,
            "day": row.day,
            "rep_id": row.rep_id,
            "customer_id": row.customer_id,
            "customer_name": row.customer_name,
        }
        if row.competitor_news:
            news.append({**base, "text": row.competitor_news})
        if row.customer_feedback:
            feedback.append({**base, "text": row.customer_feedback})
    return news, feedback


def _rows(rows: Sequence[Any]) -> list[dict[str, Any]]:
    # Column names are SQLAlchemy's `quoted_name` (a str subclass JSON keys may not be).
    return [{str(k): v for k, v in r._mapping.items()} for r in rows]


async def weekly(
    session: AsyncSession, principal: Principal, ctx: Context, query: WeeklyQuery
) -> dict[str, Any]:
    week = parse_week(query.week)
    scope = await scopes.readable(
        session, ctx.directory, principal, ScopeKind.team, str(query.team_id)
    )
    teams = scope.teams
    next_week = containing("week", week.end)
    month = containing("month", week.start + timedelta(days=3))
    to_date = as_period(month.start, min(week.end, month.end))
    start, end = ctx.calendar.start(week.start), ctx.calendar.start(week.end)
    rep_ids: list[uuid.UUID] = await kpi_records.ids_of(
        session, kpi_records.rep_members(scope, week, start, end)
    )
    people = await ctx.directory.get_users(session, rep_ids)
    team = await ctx.directory.get_team(session, query.team_id)
    targets = _by_scope(
        await repository.targets_of(
            session, {"team": [str(query.team_id)], "rep": [str(r) for r in rep_ids]}, month
        )
    )
    team_targets = targets.pop(("team", str(query.team_id)), [])
    rep_targets = {key: found for (_, key), found in targets.items()}

    opened: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    for case in _rows(await repository.complaint_steps(session, teams, week, (RAISED, RESOLVED))):
        (opened if case.pop("step") == RAISED else resolved).append(case)
    plan = _rows(await repository.planned_items(session, teams, next_week))
    news, feedback = _remarks(await repository.remarks(session, teams, week))
    opened_by = Counter(c["rep_id"] for c in opened)
    resolved_by = Counter(c["rep_id"] for c in resolved)
    planned_by = Counter(i["rep_id"] for i in plan)
    abnormal = [
        alert_json(a)
        for a in await alert_records.alerts_raised_between(
            session, start, end, rep_ids=rep_ids, team_ids=teams, subject_kind="customer"
        )
    ]
    abnormal_by = Counter(a["rep_id"] for a in abnormal)

    # Every rep's week (and month to date, for those with targets) in one statement each.
    weeks = await repository.reps_rolled_up(session, rep_ids, week)
    months = await repository.reps_rolled_up(
        session, [r for r in rep_ids if str(r) in rep_targets], to_date
    )
    reps = []
    for rep_id in rep_ids:
        person = people.get(rep_id)
        month_so_far = months.get(rep_id, {}) if str(rep_id) in rep_targets else None
        reps.append(
            {
                "rep_id": rep_id,
                "rep_name": None if person is None else person.name,
                "team_id": None if person is None else person.team_id,
                "figures": _figures(_rolled_up(ctx, weeks.get(rep_id, {}), week, 1)),
                "target_completion": _progress(
                    None if month_so_far is None else _rolled_up(ctx, month_so_far, to_date, 1),
                    month,
                    rep_targets.get(str(rep_id), []),
                ),
                "complaints_opened": opened_by[rep_id],
                "complaints_resolved": resolved_by[rep_id],
                "next_week_plan_items": planned_by[rep_id],
                "abnormal_customers": abnormal_by[rep_id],
            }
        )
    reps.sort(key=lambda r: (r["rep_name"] is None, r["rep_name"] or "", str(r["rep_id"])))
    whole = await _team_week(session, ctx, scope, week)
    whole_so_far = await _team_week(session, ctx, scope, to_date) if team_targets else None
    return {
        "team_id": query.team_id,
        "team_name": None if team is None else team.name,
        "week": period_json(week),
        "next_week": period_json(next_week),
        "team": {
            "figures": _figures(whole),
            "target_completion": _progress(whole_so_far, month, team_targets),
            "complaints_opened": len(opened),
            "complaints_resolved": len(resolved),
            "next_week_plan_items": len(plan),
            "abnormal_customers": len(abnormal),
        },
        "reps": reps,
        "competitor_news": news,
        "customer_feedback": feedback,
        "complaints": {"opened": opened, "resolved": resolved},
        "next_week_plan": plan,
        "abnormal_customers": abnormal,
    }


CSV_HEADER = (
    "rep_id",
    "rep_name",
    "team_id",
    *WEEKLY_FIGURES,
    "collections",
    *(f"target_completion_{m}" for m in TARGET_METRICS_IN_CSV),
    "complaints_opened",
    "complaints_resolved",
    "next_week_plan_items",
    "abnormal_customers",
)


def weekly_csv(report: dict[str, Any]) -> bytes:
    """The per-rep table of a weekly report: one line per rep, the figures' values."""
    lines: list[list[Any]] = [list(CSV_HEADER)]
    for rep in report["reps"]:
        done = {t["target_metric"]: t["completion"] for t in rep["target_completion"]}
        lines.append(
            [
                rep["rep_id"],
                rep["rep_name"],
                rep["team_id"],
                *(rep["figures"][m]["value"] for m in (*WEEKLY_FIGURES, "collections")),
                *(done.get(m) for m in TARGET_METRICS_IN_CSV),
                rep["complaints_opened"],
                rep["complaints_resolved"],
                rep["next_week_plan_items"],
                rep["abnormal_customers"],
            ]
        )
    return csv_lines(lines)


async def summary(
    session: AsyncSession, principal: Principal, ctx: Context, query: SummaryQuery
) -> dict[str, Any]:
    scope = await scopes.readable(session, ctx.directory, principal, query.scope, query.scope_id)
    period = as_period(query.from_, query.to)
    before = period.previous()
    m_now = await measures(session, ctx, scope, period)
    now, then = figures(m_now), figures(await measures(session, ctx, scope, before))
    details = target_completion(m_now).details or {}
    targets = [{**t, "period": period.label} for t in details.get("targets", [])]
    target_of = {t["target_metric"]: Decimal(t["target"]) for t in targets}
    return {
        **scope.as_json(),
        "period": period_json(period),
        "previous_period": period_json(before),
        "funnel": comparisons.funnel(now["funnel"], then["funnel"]),
        "stage_conversion": comparisons.stages(now["stage_conversion"], then["stage_conversion"]),
        "figures": {
            name: comparisons.figure_compared(
                now[name], then[name], is_rate=is_rate, target=target_of.get(name)
            )
            for name, is_rate in SUMMARY_FIGURES
        },
        "targets": targets,
    }
