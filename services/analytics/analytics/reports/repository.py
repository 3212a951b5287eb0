"""Every statement of the reports besides the summary's KPIs (which are `kpis.measures`').

The weekly report is one statement (`weekly`): the team's reps and their week and month to
date, the team's, the targets, what the team heard, its complaints, next week's plan and the
alerts of the week, each list an array of records in one row (next week's plan, the longest,
as the JSON the API answers). Its figures are part 1's
statements (`kpis.repository`: `rep_members`, `rolled_up`, `reps`, `rolled_up_by_rep_of`) built
with bound parameters (`_days`, `TEAM`), so the statement is built once per app and only the
values change per report.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alerts.events import READ_FIELDS as ALERT_FIELDS
from analytics.alerts.models import ALERTS
from analytics.facts.models import CASE_STEPS, CUSTOMERS, FIELD_REPORTS, PLAN_ITEMS, VISITS
from analytics.kpis import repository as kpi_records
from analytics.kpis.repository import within
from analytics.periods import Period
from analytics.scopes import Scope, ScopeKind
from analytics.targets.models import TARGETS
from servicekit.directory import Directory

# The most remarks of each source (visits, daily reports) one report lists.
MAX_ITEMS = 500
COMPLAINT = "complaint"
DAILY_REPORT = "daily_report"
RAISED, RESOLVED = "raised", "resolved"
CUSTOMER = "customer"


def _days(name: str) -> Period:
    """A period whose days are the bound parameters `<name>_start` and `<name>_end`. Part 1's
    statement builders only put a period's days into SQL, so what they build with it is their
    statement for any period, the days given when it runs."""
    return Period(
        cast(date, sa.bindparam(f"{name}_start", type_=sa.Date())),
        cast(date, sa.bindparam(f"{name}_end", type_=sa.Date())),
    )


WEEK, NEXT_WEEK, TO_DATE = _days("week"), _days("next_week"), _days("to_date")
# The team's tree (a team's scope), and the company moments the week starts and ends at.
TEAMS = sa.bindparam("teams", expanding=True, type_=sa.Uuid())
TEAM = Scope(ScopeKind.team, teams=cast(tuple[uuid.UUID, ...], TEAMS))
TEAM_ID = sa.bindparam("team_id", type_=sa.Uuid())
TEAM_KEY = sa.bindparam("team_key", type_=sa.Text())
START = cast(datetime, sa.bindparam("week_from", type_=sa.DateTime(timezone=True)))
END = cast(datetime, sa.bindparam("week_to", type_=sa.DateTime(timezone=True)))


@dataclass(frozen=True, slots=True)
class WeekValues:
    """The values of one weekly report's statement."""

    teams: Sequence[uuid.UUID]
    team_id: uuid.UUID
    week: Period
    next_week: Period
    to_date: Period  # the month holding the week, up to the week's end
    start: datetime
    end: datetime

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "teams": list(self.teams),
            "team_id": self.team_id,
            "team_key": str(self.team_id),
            "week_from": self.start,
            "week_to": self.end,
        }
        days = {"week": self.week, "next_week": self.next_week, "to_date": self.to_date}
        for name, period in days.items():
            out[f"{name}_start"], out[f"{name}_end"] = period.start, period.end
        return out


@dataclass(frozen=True, slots=True)
class WeekFound:
    """What the weekly statement answered: one-row parts (column → value) and lists (rows as
    dicts, in the statement's order)."""

    parts: dict[str, dict[str, Any]]
    lists: dict[str, list[dict[str, Any]]]
    team_name: str | None
    plan: str  # next week's plan items: a JSON array (`planned_items`)


def _listed(stmt: sa.Select[Any], name: str) -> tuple[Any, tuple[str, ...]]:
    """`stmt`'s rows, in its order, as one array of records: a column of a one-row statement
    (so that several lists come back in one round trip), and the rows' column names."""
    names = tuple(str(c.name) for c in stmt.selected_columns)
    rows = stmt.with_only_columns(
        sa.func.row(*stmt.selected_columns), maintain_column_froms=True
    ).scalar_subquery()
    return sa.func.array(rows).label(name), names


def remarks(teams: Any, period: Period) -> sa.Select[Any]:
    """The week's completed visits and daily reports of the teams that brought competitor news
    or customer feedback, newest first."""
    v, r, c = VISITS.c, FIELD_REPORTS.c, CUSTOMERS.c
    said = sa.or_(v.competitor_news.is_not(None), v.customer_feedback.is_not(None))
    visits = (
        sa.select(
            sa.literal("visit").label("source"),
            v.id,
            v.day,
            v.rep_id,
            v.customer_id,
            c.name.label("customer_name"),
            v.competitor_news,
            v.customer_feedback,
        )
        .select_from(VISITS.outerjoin(CUSTOMERS, c.id == v.customer_id))
        .where(v.team_id.in_(teams), within(v.day, period), said)
        .order_by(v.day.desc(), v.id)
        .limit(MAX_ITEMS)
    )
    reports = (
        sa.select(
            sa.literal(DAILY_REPORT).label("source"),
            r.id,
            r.day,
            r.rep_id,
            r.customer_id,
            sa.null().label("customer_name"),
            r.competitor_news,
            r.customer_feedback,
        )
        .where(
            r.kind == DAILY_REPORT,
            r.team_id.in_(teams),
            within(r.day, period),
            sa.or_(r.competitor_news.is_not(None), r.customer_feedback.is_not(None)),
        )
        .order_by(r.day.desc(), r.id)
        .limit(MAX_ITEMS)
    )
    both = sa.union_all(visits, reports).subquery("remarks")
    return sa.select(both).order_by(both.c.day.desc(), both.c.source, both.c.id)


def complaint_steps(teams: Any, period: Period) -> sa.Select[Any]:
    """The complaints of the teams raised or resolved in the week, once per step (on the first
    day they took it), with what the case says now."""
    s, r = CASE_STEPS.c, FIELD_REPORTS.c
    first = (
        sa.select(s.case_id, s.step, sa.func.min(s.day).label("day"))
        .where(
            s.team_id.in_(teams),
            within(s.day, period),
            s.kind == COMPLAINT,
            s.step.in_([RAISED, RESOLVED]),
        )
        .group_by(s.case_id, s.step)
        .subquery("steps")
    )
    return (
        sa.select(
            first.c.step,
            first.c.case_id.label("id"),
            first.c.day,
            r.rep_id,
            r.customer_id,
            r.data["customer_name"].astext.label("customer_name"),
            r.data["category"].astext.label("category"),
            r.severity,
            r.status,
            r.data["description"].astext.label("description"),
        )
        .select_from(first.join(FIELD_REPORTS, r.id == first.c.case_id))
        .order_by(first.c.day, first.c.case_id)
    )


def _planned(teams: Any, period: Period) -> sa.ColumnElement[bool]:
    i = PLAN_ITEMS.c
    return sa.and_(i.team_id.in_(teams), within(i.day, period), i.approved)


def planned_items(teams: Any, period: Period) -> sa.Select[Any]:
    """The items of the teams' approved plans in the period (all of them), as one JSON array
    in the API's form (`schemas.PlannedItem`), answered as it is: a team's week is a few
    thousand items."""
    i, c = PLAN_ITEMS.c, CUSTOMERS.c
    # One probe of the customers' key per item (LIMIT keeps it a nested loop): a hash join
    # would match them by reading every customer.
    customer = sa.select(c.code, c.name).where(c.id == i.customer_id).limit(1).lateral("customer")
    items = (
        sa.select(
            i.id,
            i.plan_id,
            i.day,
            i.rep_id,
            i.customer_id,
            customer.c.code.label("customer_code"),
            customer.c.name.label("customer_name"),
            i.purpose,
        )
        .select_from(PLAN_ITEMS.outerjoin(customer, sa.true()))
        .where(_planned(teams, period))
        .subquery("item")
    )
    listed = sa.func.json_agg(
        aggregate_order_by(items.table_valued(), items.c.day, items.c.rep_id, items.c.id)
    )
    return sa.select(sa.func.coalesce(sa.cast(listed, sa.Text), "[]"))


def planned_per_rep(teams: Any, period: Period) -> sa.Select[Any]:
    """How many of `planned_items` each rep has."""
    i = PLAN_ITEMS.c
    return (
        sa.select(i.rep_id, sa.func.count().label("items"))
        .where(_planned(teams, period))
        .group_by(i.rep_id)
    )


def month_targets(team_key: Any, reps: Any, month: Period) -> sa.Select[Any]:
    """The targets of the team and of its reps (`reps`: their ids) for the month starting
    `month`'s first day."""
    t = TARGETS.c
    return (
        sa.select(t.id, t.metric, t.scope, t.scope_key, t.value)
        .where(
            sa.or_(
                sa.and_(t.scope == "team", t.scope_key == team_key),
                sa.and_(t.scope == "rep", t.scope_key.in_(sa.select(sa.cast(reps, sa.Text)))),
            ),
            t.period_kind == "month",
            t.period_start == month.start,
        )
        .order_by(t.scope, t.scope_key, t.metric)
    )


def alerts_raised(reps: Any, teams: Any, start: Any, end: Any) -> sa.Select[Any]:
    """The alerts about a customer raised in [start, end) of these reps or in these teams,
    oldest first (the columns of `alerts.service.read`)."""
    a = ALERTS.c
    return (
        sa.select(*[a[name] for name in ALERT_FIELDS])
        .where(
            a.raised_at >= start,
            a.raised_at < end,
            sa.or_(a.rep_id.in_(reps), a.team_id.in_(teams)),
            a.subject_kind == CUSTOMER,
        )
        .order_by(a.raised_at, a.id)
    )


@functools.cache
def _weekly(directory: Directory) -> tuple[sa.Select[Any], dict[str, tuple[str, ...]]]:
    """The weekly report's statement (see the module) and the column names of its lists."""
    r = kpi_records
    members = r.rep_members(TEAM, WEEK, START, END).stmt.cte("members")
    users, teams = directory.users.c, directory.teams.c
    parts = {
        "week": r.rolled_up(TEAM, WEEK),
        "week_reps": r.reps(TEAM, START, END, WEEK),
        "to_date": r.rolled_up(TEAM, TO_DATE),
    }
    subs = [stmt.subquery(name) for name, stmt in parts.items()]
    lists = {
        "members": sa.select(members.c.id, users.name, users.team_id)
        .select_from(members.outerjoin(directory.users, users.id == members.c.id))
        .order_by(members.c.id),
        "rep_weeks": r.rolled_up_by_rep_of(members, WEEK),
        "rep_to_date": r.rolled_up_by_rep_of(members, TO_DATE),
        "targets": month_targets(TEAM_KEY, members.c.id, TO_DATE),
        "complaints": complaint_steps(TEAMS, WEEK),
        "planned": planned_per_rep(TEAMS, NEXT_WEEK),
        "remarks": remarks(TEAMS, WEEK),
        "alerts": alerts_raised(sa.select(members.c.id), TEAMS, START, END),
    }
    columns: list[Any] = [c.label(f"{sub.name}__{c.name}") for sub in subs for c in sub.c]
    names: dict[str, tuple[str, ...]] = {}
    for name, stmt in lists.items():
        column, names[name] = _listed(stmt, name)
        columns.append(column)
    team_name = sa.select(teams.name).where(teams.id == TEAM_ID).scalar_subquery()
    columns.append(planned_items(TEAMS, NEXT_WEEK).scalar_subquery().label("plan"))
    joined: Any = subs[0]
    for sub in subs[1:]:
        joined = joined.join(sub, sa.true())
    return sa.select(*columns, team_name.label("team_name")).select_from(joined), names


async def weekly(session: AsyncSession, directory: Directory, values: WeekValues) -> WeekFound:
    """Everything the weekly report reads, in one round trip."""
    stmt, names = _weekly(directory)
    row = (await session.execute(stmt, values.params())).one()._mapping
    parts: dict[str, dict[str, Any]] = {}
    lists: dict[str, list[dict[str, Any]]] = {}
    for key, value in row.items():
        part, _, column = str(key).partition("__")
        if column:
            parts.setdefault(part, {})[column] = value
        elif part in names:
            lists[part] = [dict(zip(names[part], record, strict=True)) for record in value]
    return WeekFound(parts, lists, row["team_name"], row["plan"])
