"""The reports: the weekly team report (周报) and the periodic summary (阶段性总结).

Every figure is part 1's: its measures and the KPIs made of them (`kpis.definitions.figures`,
`target_figure`), under its attribution rules and its access rule (`scopes.readable`: a rep
sees their own figures, so a team's report is a manager's, an admin's or a key's with
`kpis:read`; anything else is 404). The summary takes every measure (`kpis.measures.measures`);
the weekly report only flows, which it reads from the same rollups by the same statements
(`rolled_up` and `reps` for the team, `rolled_up_by_rep_of` for its reps), all it reads in
one statement built once (`repository.weekly`).

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

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from analytics import scopes
from analytics.kpis.definitions import Measures, amount, figures, target_figure
from analytics.kpis.measures import Context, measures_of_periods, target_completion
from analytics.kpis.service import as_period, period_json
from analytics.periods import Period, containing, parse_named
from analytics.reports import comparisons, repository
from analytics.reports.schemas import SummaryQuery, WeeklyQuery
from analytics.rollups.models import AMOUNTS
from analytics.scopes import ScopeKind
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


def _progress(
    m: Measures | None, month: Period, found: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The scope's targets of the month, each with `m`'s actual (the month to the week's end)."""
    if m is None:
        return []
    return [
        {
            "target_id": t["id"],
            "period": month.label,
            **target_figure(t["metric"], m.actual(t["metric"]), Decimal(t["value"])),
        }
        for t in found
    ]


def _rolled_up(values: dict[str, Any], period: Period, reps: int, working_days: int) -> Measures:
    """A scope's measures as part 1's `measures` reads them from the rollups (`rolled_up`: the
    period's flows) with its reps, weeks and working days (the calendar's, counted once per
    report). What the rollups do not hold (customers counted once, the pipeline) stays empty:
    the weekly report reads none of it (`WEEKLY_FIGURES`, collections, the targets' actuals
    are all flows)."""
    m = Measures()
    for name, value in values.items():
        setattr(m, name, Decimal(value) if name in AMOUNTS else value)
    m.reps = reps
    m.weeks = period.weeks
    m.working_days = working_days
    return m


def _by_scope(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault((row["scope"], row["scope_key"]), []).append(row)
    return out


def _remarks(
    rows: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    news: list[dict[str, Any]] = []
    feedback: list[dict[str, Any]] = []
    for row in rows:
        said, heard = row.pop("competitor_news"), row.pop("customer_feedback")
        if said:
            news.append({**row, "text": said})
        if heard:
            feedback.append({**row, "text": heard})
    return news, feedback


def _by_rep(rows: Sequence[dict[str, Any]]) -> dict[uuid.UUID, dict[str, Any]]:
    return {row.pop("rep_id"): row for row in rows}


async def weekly(
    session: AsyncSession, principal: Principal, ctx: Context, query: WeeklyQuery
) -> dict[str, Any]:
    week = parse_week(query.week)
    scope = await scopes.readable(
        session, ctx.directory, principal, ScopeKind.team, str(query.team_id)
    )
    next_week = containing("week", week.end)
    month = containing("month", week.start + timedelta(days=3))
    to_date = as_period(month.start, min(week.end, month.end))
    values = repository.WeekValues(
        teams=scope.teams,
        team_id=query.team_id,
        week=week,
        next_week=next_week,
        to_date=to_date,
        start=ctx.calendar.start(week.start),
        end=ctx.calendar.start(week.end),
    )
    found = await repository.weekly(session, ctx.directory, values)
    lists = found.lists
    targets = _by_scope(lists["targets"])
    team_targets = targets.pop(("team", str(query.team_id)), [])
    rep_targets = {key: theirs for (_, key), theirs in targets.items()}

    opened: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    for case in lists["complaints"]:
        (opened if case.pop("step") == RAISED else resolved).append(case)
    planned_by = {row["rep_id"]: row["items"] for row in lists["planned"]}
    news, feedback = _remarks(lists["remarks"])
    abnormal = lists["alerts"]
    opened_by = Counter(c["rep_id"] for c in opened)
    resolved_by = Counter(c["rep_id"] for c in resolved)
    abnormal_by = Counter(a["rep_id"] for a in abnormal)

    weeks, months = _by_rep(lists["rep_weeks"]), _by_rep(lists["rep_to_date"])
    days = {p: ctx.calendar.working_days(p) for p in (week, to_date)}
    reps = []
    for member in lists["members"]:
        rep_id = member["id"]
        mine = rep_targets.get(str(rep_id), [])
        reps.append(
            {
                "rep_id": rep_id,
                "rep_name": member["name"],
                "team_id": member["team_id"],
                "figures": _figures(_rolled_up(weeks.get(rep_id, {}), week, 1, days[week])),
                "target_completion": _progress(
                    _rolled_up(months.get(rep_id, {}), to_date, 1, days[to_date]) if mine else None,
                    month,
                    mine,
                ),
                "complaints_opened": opened_by[rep_id],
                "complaints_resolved": resolved_by[rep_id],
                "next_week_plan_items": planned_by.get(rep_id, 0),
                "abnormal_customers": abnormal_by[rep_id],
            }
        )
    reps.sort(key=lambda r: (r["rep_name"] is None, r["rep_name"] or "", str(r["rep_id"])))
    team_reps = found.parts["week_reps"]["reps"]
    whole = _rolled_up(found.parts["week"], week, team_reps, days[week])
    # A target's actual is a flow: the reps of the month to date do not enter it.
    so_far = (
        _rolled_up(found.parts["to_date"], to_date, team_reps, days[to_date])
        if team_targets
        else None
    )
    return {
        "team_id": query.team_id,
        "team_name": found.team_name,
        "week": period_json(week),
        "next_week": period_json(next_week),
        "team": {
            "figures": _figures(whole),
            "target_completion": _progress(so_far, month, team_targets),
            "complaints_opened": len(opened),
            "complaints_resolved": len(resolved),
            "next_week_plan_items": sum(planned_by.values()),
            "abnormal_customers": len(abnormal),
        },
        "reps": reps,
        "competitor_news": news,
        "customer_feedback": feedback,
        "complaints": {"opened": opened, "resolved": resolved},
        # Already the API's JSON (`repository.planned_items`).
        "next_week_plan": orjson.Fragment(found.plan),
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
    m_now, m_then = await measures_of_periods(session, ctx, scope, [period, before])
    now, then = figures(m_now), figures(m_then)
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
