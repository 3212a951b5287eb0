"""Every statement of the alerts: the rules' SQL (each a set of hits over all subjects, or
narrowed to some), recording the hits (raise, refresh, resolve), the rules' rows, and the
lists.

A rule's hits are one statement answering `subject_kind, subject_id, rep_id, team_id,
customer_id, region, figures` per subject whose condition holds. A team's override of a
threshold is a CASE on the subject's team (the overrides are few); the company's value is the
ELSE.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alerts.models import ALERT_RULES, ALERTS
from analytics.alerts.rules import OVER_VISIT_WINDOW_DAYS, Rule, SubjectKind
from analytics.facts.models import CUSTOMERS, MEMBERSHIPS, OPPORTUNITIES, ORDERS, VISITS
from analytics.models import directory
from analytics.rollups.contributions import NOT_COUNTED
from analytics.rollups.models import DAILY_REPS
from servicekit.pagination import PageParams, keyset

A, C, V, OD = ALERTS.c, CUSTOMERS.c, VISITS.c, ORDERS.c
IDS = "ids"
USERS = directory.users
Col = sa.ColumnElement[Any]
# Customers no rule speaks of: invalid or merged into another.
GONE = sorted(NOT_COUNTED)
CLOSED_STAGES = ("won", "lost")


# --- the rules as stored ---------------------------------------------------------------------


@dataclass(slots=True)
class RuleConfig:
    """A rule's company thresholds and the teams' overrides (team id -> enabled, thresholds)."""

    rule: Rule
    enabled: bool
    thresholds: Any
    overrides: dict[uuid.UUID, tuple[bool, Any]] = field(default_factory=dict)

    def param(self, name: str, team: Col) -> Col:
        """The threshold `name` for a subject of `team` (the team's override, else the
        company's)."""
        default = getattr(self.thresholds, name)
        kind: Any = sa.Numeric if isinstance(default, Decimal) else sa.Integer
        differing = [
            (team == t, sa.literal(getattr(th, name), kind))
            for t, (_, th) in self.overrides.items()
            if getattr(th, name) != default
        ]
        value = sa.literal(default, kind)
        return sa.case(*differing, else_=value) if differing else value

    def enabled_for(self, team: Col) -> sa.ColumnElement[bool]:
        differing = [(team == t, sa.literal(on)) for t, (on, _) in self.overrides.items()]
        if not differing:
            return sa.true() if self.enabled else sa.false()
        return sa.case(*differing, else_=sa.literal(self.enabled)).is_(True)

    def runs_anywhere(self) -> bool:
        return self.enabled or any(on for on, _ in self.overrides.values())


async def rule_rows(session: AsyncSession) -> list[Any]:
    R = ALERT_RULES.c
    return list(await session.execute(sa.select(ALERT_RULES).order_by(R.rule, R.scope_key)))


async def get_rule(
    session: AsyncSession, rule: str, scope_key: str, *, for_update: bool = False
) -> Any:
    R = ALERT_RULES.c
    stmt = sa.select(ALERT_RULES).where(R.rule == rule, R.scope_key == scope_key)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def put_rule(session: AsyncSession, values: dict[str, Any]) -> Any:
    ins = pg_insert(ALERT_RULES).values(values)
    R = ALERT_RULES.c
    stmt = ins.on_conflict_do_update(
        index_elements=[R.rule, R.scope_key],
        set_={
            "enabled": ins.excluded.enabled,
            "thresholds": ins.excluded.thresholds,
            "updated_by": ins.excluded.updated_by,
            "updated_at": ins.excluded.updated_at,
            "version": R.version + 1,
        },
    ).returning(ALERT_RULES)
    return (await session.execute(stmt)).one()


# --- the rules' hits -------------------------------------------------------------------------


def _hit(
    kind: SubjectKind,
    subject_id: Col,
    *,
    rep_id: Col | None = None,
    team_id: Col | None = None,
    customer_id: Col | None = None,
    region: Col | None = None,
    figures: Col,
) -> list[Any]:
    def or_null(col: Col | None, type_: Any) -> Any:
        return sa.null().cast(type_) if col is None else col

    return [
        sa.literal(kind.value).label("subject_kind"),
        sa.cast(subject_id, sa.Text).label("subject_id"),
        or_null(rep_id, sa.Uuid).label("rep_id"),
        or_null(team_id, sa.Uuid).label("team_id"),
        or_null(customer_id, sa.Uuid).label("customer_id"),
        or_null(region, sa.Text).label("region"),
        figures.label("figures"),
    ]


def _obj(**pairs: Any) -> Col:
    args: list[Any] = []
    for key, value in pairs.items():
        args += [sa.literal(key), value]
    return sa.func.jsonb_build_object(*args)


def _days_before(day: date, days: Col) -> Col:
    """`day` minus a number of days (an SQL integer), as a date."""
    return sa.cast(sa.literal(day, sa.Date) - days, sa.Date)


def ids() -> Any:
    """The subjects an evaluation is narrowed to (`ids` at run time): a statement narrowed
    this way is built once and run for any subjects."""
    return sa.bindparam(IDS, expanding=True, type_=sa.Uuid)


def neglect_over_visit(cfg: RuleConfig, today: date, narrowed: bool) -> Any:
    u = USERS.c
    first = today - timedelta(days=OVER_VISIT_WINDOW_DAYS - 1)
    key = CUSTOMERS.alias("key")
    visits = sa.func.count().label("visits")
    where = [V.day >= first, V.day <= today, key.c.level == "A"]
    if narrowed:
        where.append(V.rep_id.in_(ids()))
    over = (
        sa.select(V.rep_id, u.team_id, V.customer_id, visits)
        .select_from(VISITS.join(key, key.c.id == V.customer_id).outerjoin(USERS, u.id == V.rep_id))
        .where(*where)
        .group_by(V.rep_id, u.team_id, V.customer_id)
        .having(
            sa.func.count() > cfg.param("over_visits_per_month", u.team_id),
            cfg.enabled_for(u.team_id),
        )
        .subquery("over")
    )
    listed = sa.func.jsonb_agg(
        aggregate_order_by(
            _obj(customer_id=over.c.customer_id, visits=over.c.visits),
            over.c.visits.desc(),
            over.c.customer_id,
        )
    )
    per_rep = (
        sa.select(over.c.rep_id, over.c.team_id, listed.label("over_visited"))
        .group_by(over.c.rep_id, over.c.team_id)
        .subquery("per_rep")
    )
    rep, team = per_rep.c.rep_id, per_rep.c.team_id
    days = cfg.param("neglect_days", team)
    since = _days_before(today, days)
    weak, seen = CUSTOMERS.alias("weak"), VISITS.alias("seen")
    neglected = (
        sa.select(
            sa.func.count().label("count"),
            sa.func.coalesce(
                sa.func.array_agg(aggregate_order_by(weak.c.id, weak.c.id))[1:5],
                sa.cast(sa.literal([]), ARRAY(sa.Uuid)),
            ).label("sample"),
        )
        .where(
            weak.c.owner_id == rep,
            weak.c.level.in_(("B", "C")),
            weak.c.status.not_in([*GONE, "lost"]),
            ~sa.select(sa.literal(1))
            .where(seen.c.customer_id == weak.c.id, seen.c.day > since, seen.c.day <= today)
            .exists(),
        )
        .lateral("neglected")
    )
    mine, went = CUSTOMERS.alias("mine"), VISITS.alias("went")
    regions = (
        sa.select(
            sa.func.coalesce(
                sa.func.array_agg(aggregate_order_by(sa.distinct(mine.c.region), mine.c.region)),
                sa.cast(sa.literal([]), ARRAY(sa.Text)),
            ).label("regions")
        )
        .where(
            mine.c.owner_id == rep,
            mine.c.region.is_not(None),
            mine.c.status.not_in(GONE),
            ~sa.select(sa.literal(1))
            .where(
                went.c.rep_id == mine.c.owner_id,
                went.c.region == mine.c.region,
                went.c.day > since,
                went.c.day <= today,
            )
            .exists(),
        )
        .lateral("weak_regions")
    )
    figures = _obj(
        over_visited=per_rep.c.over_visited,
        over_visits_per_month=cfg.param("over_visits_per_month", team),
        window_days=sa.literal(OVER_VISIT_WINDOW_DAYS),
        neglect_days=days,
        neglected_customers=neglected.c.count,
        neglected_sample=neglected.c.sample,
        neglected_regions=regions.c.regions,
    )
    return (
        sa.select(*_hit(SubjectKind.rep, rep, rep_id=rep, team_id=team, figures=figures))
        .select_from(per_rep.join(neglected, sa.true()).join(regions, sa.true()))
        .where(sa.or_(neglected.c.count > 0, sa.func.cardinality(regions.c.regions) > 0))
    )


def low_daily_visits(
    cfg: RuleConfig,
    week_start: date,
    week_end: date,
    label: str,
    working_days: int,
    starts: datetime,
    ends: datetime,
    narrowed: bool,
) -> Any:
    """The reps of the week (members as reps at any moment of it, as part 1 counts them) whose
    completed visits over the week's working days fall below the floor."""
    m, d, u = MEMBERSHIPS.c, DAILY_REPS.c, USERS.c
    where = [
        m.role == "rep",
        sa.or_(m.valid_from.is_(None), m.valid_from < ends),
        sa.or_(m.valid_to.is_(None), m.valid_to > starts),
    ]
    if narrowed:
        where.append(m.user_id.in_(ids()))
    members = sa.select(m.user_id.label("rep_id")).where(*where).distinct().subquery("members")
    visits = sa.func.coalesce(
        sa.select(sa.func.sum(d.visits))
        .where(d.rep_id == members.c.rep_id, d.day >= week_start, d.day < week_end)
        .scalar_subquery(),
        0,
    )
    counted = (
        sa.select(members.c.rep_id, u.team_id, visits.label("visits"))
        .select_from(members.outerjoin(USERS, u.id == members.c.rep_id))
        .subquery("counted")
    )
    floor = cfg.param("floor", counted.c.team_id)
    average = sa.func.round(sa.cast(counted.c.visits, sa.Numeric) / working_days, 2)
    figures = _obj(
        # decimals as text, as the KPIs answer them
        avg_daily_visits=sa.cast(average, sa.Text),
        visits=counted.c.visits,
        working_days=sa.literal(working_days),
        floor=sa.cast(floor, sa.Text),
        week=sa.literal(label),
    )
    rep = counted.c.rep_id
    return sa.select(
        *_hit(SubjectKind.rep, rep, rep_id=rep, team_id=counted.c.team_id, figures=figures)
    ).where(
        cfg.enabled_for(counted.c.team_id),
        # avg < floor, exactly (the figure shows the KPI's rounding)
        counted.c.visits < floor * working_days,
    )


def region_hits(rows: Sequence[dict[str, Any]]) -> Any:
    """Hits computed in Python (a region's KPI), as a statement like the others'."""
    if not rows:
        return sa.select(*_hit(SubjectKind.region, sa.literal(""), figures=_obj())).where(
            sa.false()
        )
    table = sa.values(
        sa.column("region", sa.Text), sa.column("figures", JSONB), name="regions"
    ).data([(r["region"], r["figures"]) for r in rows])
    return sa.select(
        *_hit(
            SubjectKind.region,
            table.c.region,
            region=table.c.region,
            figures=table.c.figures,
        )
    )


async def regions(session: AsyncSession) -> list[str]:
    """The regions of the customers."""
    stmt = sa.select(C.region).where(C.region.is_not(None)).distinct().order_by(C.region)
    return [r[0] for r in await session.execute(stmt)]


def _customer_hit(figures: Col) -> list[Any]:
    """A customer's hit: its owner, team and region as they are now."""
    return _hit(
        SubjectKind.customer,
        C.id,
        rep_id=C.owner_id,
        team_id=C.team_id,
        customer_id=C.id,
        region=C.region,
        figures=figures,
    )


def incomplete_key_customer(cfg: RuleConfig, narrowed: bool) -> Any:
    floor = cfg.param("floor", C.team_id)
    score = sa.func.coalesce(C.quality_score, 0)
    where = [
        C.level == "A",
        C.data_incomplete,
        C.status.not_in(GONE),
        score < floor,
        cfg.enabled_for(C.team_id),
    ]
    if narrowed:
        where.append(C.id.in_(ids()))
    figures = _obj(quality_score=C.quality_score, floor=floor, level=C.level)
    return sa.select(*_customer_hit(figures)).where(*where)


def churn_risk(cfg: RuleConfig, today: date, narrowed: bool) -> Any:
    """Order days per customer → the intervals between them → their median; the gap since
    the last order against it."""
    where = [OD.cancelled.is_(False), OD.day <= today]
    if narrowed:
        where.append(OD.customer_id.in_(ids()))
    days = sa.select(OD.customer_id, OD.day).where(*where).distinct().subquery("order_days")
    gaps = sa.select(
        days.c.customer_id,
        days.c.day,
        (
            days.c.day
            - sa.func.lag(days.c.day).over(partition_by=days.c.customer_id, order_by=days.c.day)
        ).label("gap"),
    ).subquery("gaps")
    per = (
        sa.select(
            gaps.c.customer_id,
            sa.func.count().label("orders"),
            sa.func.max(gaps.c.day).label("last_day"),
            sa.func.percentile_cont(0.5).within_group(gaps.c.gap).label("usual"),
        )
        .group_by(gaps.c.customer_id)
        .subquery("per_customer")
    )
    since = sa.literal(today, sa.Date) - per.c.last_day
    factor = cfg.param("factor", C.team_id)
    figures = _obj(
        orders=per.c.orders,
        last_order_on=per.c.last_day,
        days_since_last_order=since,
        usual_interval_days=per.c.usual,
        factor=factor,
    )
    return (
        sa.select(*_customer_hit(figures))
        .select_from(per.join(CUSTOMERS, C.id == per.c.customer_id))
        .where(
            per.c.orders >= cfg.param("min_orders", C.team_id),
            per.c.usual > 0,
            sa.cast(since, sa.Numeric) > factor * sa.cast(per.c.usual, sa.Numeric),
            C.status.not_in(GONE),
            cfg.enabled_for(C.team_id),
        )
    )


def stalled_opportunity(
    cfg: RuleConfig,
    today: date,
    start_of_today: datetime,
    usual_cycle: Decimal | None,
    narrowed: bool,
) -> Any:
    P = OPPORTUNITIES.c
    usual: Col = (
        sa.literal(usual_cycle, sa.Numeric)
        if usual_cycle is not None
        else sa.cast(cfg.param("default_cycle_days", P.team_id), sa.Numeric)
    )
    factor = cfg.param("factor", P.team_id)
    age = sa.extract("epoch", sa.literal(start_of_today) - P.created_at) / 86400
    where = [P.stage.not_in(CLOSED_STAGES), age > factor * usual, cfg.enabled_for(P.team_id)]
    if narrowed:
        where.append(P.id.in_(ids()))
    figures = _obj(
        days_open=sa.func.floor(age),
        usual_cycle_days=usual,
        factor=factor,
        stage=P.stage,
        created_at=P.created_at,
    )
    return sa.select(
        *_hit(
            SubjectKind.opportunity,
            P.id,
            rep_id=P.owner_id,
            team_id=P.team_id,
            customer_id=P.customer_id,
            region=P.region,
            figures=figures,
        )
    ).where(*where)


# --- recording hits --------------------------------------------------------------------------


async def stamp(session: AsyncSession) -> datetime:
    """The moment this evaluation starts: alerts it finds again are stamped later, so those
    stamped before it and not found are the ones whose condition ended (and a concurrent
    evaluation's fresher stamp keeps its alerts)."""
    return (await session.execute(sa.select(sa.func.clock_timestamp()))).scalar_one()  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class Recording:
    """A rule's two statements, built once per rule, day and thresholds: raise (or refresh)
    the hits, and resolve the live alerts not found again."""

    upsert: Any
    resolve: Any


def recording(rule: Rule, hits: Any, narrowed: SubjectKind | None) -> Recording:
    """Raise an alert for each hit without a live one (the live one's figures and owner are
    refreshed, and it is stamped), and resolve the rule's live alerts stamped before `since`,
    within the narrowed subjects (`subject_ids`) or all."""
    h = hits.subquery("hits")
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    found = [c.name for c in h.c]  # the hit's columns (`_hit`)
    names = ["rule", *found, "status", "raised_at", "evaluated_at"]
    source = sa.select(
        sa.literal(rule.value), *h.c, sa.literal("open"), now, sa.func.clock_timestamp()
    )
    ins = pg_insert(ALERTS).from_select(names, source)
    refreshed = ("rep_id", "team_id", "customer_id", "region", "figures", "evaluated_at")
    upsert = ins.on_conflict_do_update(
        index_elements=[A.rule, A.subject_kind, A.subject_id],
        index_where=A.resolved_at.is_(None),
        set_={k: ins.excluded[k] for k in refreshed},
    ).returning(*ALERTS.c, sa.literal_column("(xmax = 0)", sa.Boolean).label("fresh"))
    done = upsert.cte("upserted")
    where = [
        A.rule == rule.value,
        A.resolved_at.is_(None),
        A.evaluated_at < sa.bindparam("since", type_=sa.DateTime(timezone=True)),
    ]
    if narrowed is not None:
        where += [
            A.subject_kind == narrowed.value,
            A.subject_id.in_(sa.bindparam("subject_ids", expanding=True, type_=sa.Text)),
        ]
    resolve = (
        sa.update(ALERTS)
        .where(*where)
        .values(status="resolved", resolved_at=now, version=A.version + 1)
        .returning(*ALERTS.c)
    )
    return Recording(sa.select(done).where(done.c.fresh), resolve)


async def record(
    session: AsyncSession,
    statements: Recording,
    *,
    now: datetime,
    since: datetime,
    subjects: Sequence[uuid.UUID] | None,
) -> tuple[list[Any], list[Any]]:
    """Run a rule's recording; returns the alerts (raised, resolved)."""
    params: dict[str, Any] = {"now": now, "since": since}
    if subjects is not None:
        params[IDS] = list(subjects)
        params["subject_ids"] = [str(i) for i in subjects]
    raised = list(await session.execute(statements.upsert, params))
    resolved = list(await session.execute(statements.resolve, params))
    return raised, resolved


async def count_hits(
    session: AsyncSession, hits: Any, subjects: Sequence[uuid.UUID] | None = None
) -> int:
    """How many subjects a rule's statement finds (the benchmark's baseline)."""
    sub = hits.subquery("hits")
    stmt = sa.select(sa.func.count()).select_from(sub)
    params = {} if subjects is None else {IDS: list(subjects)}
    return int((await session.execute(stmt, params)).scalar_one())


async def customer_of_order(session: AsyncSession, order_id: uuid.UUID) -> uuid.UUID | None:
    row = (await session.execute(sa.select(OD.customer_id).where(OD.id == order_id))).first()
    return None if row is None else row[0]


# --- reading alerts --------------------------------------------------------------------------


def visibility(
    *, everything: bool, me: uuid.UUID | None, teams: Sequence[uuid.UUID]
) -> sa.ColumnElement[bool]:
    """Alerts about the caller (or their customers and opportunities), and those of the teams
    they see."""
    if everything:
        return sa.true()
    mine = A.rep_id == me if me is not None else sa.false()
    return sa.or_(mine, A.team_id.in_(list(teams))) if teams else mine


async def get(session: AsyncSession, alert_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = sa.select(ALERTS).where(A.id == alert_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def page(
    session: AsyncSession,
    params: PageParams,
    visible: sa.ColumnElement[bool],
    *,
    status: str | None,
    rule: str | None,
    rep_id: uuid.UUID | None,
    teams: Sequence[uuid.UUID] | None,
    subject_kind: str | None,
    customer_id: uuid.UUID | None,
) -> list[Any]:
    where: list[sa.ColumnElement[bool]] = [visible]
    if status is not None:
        where.append(A.status == status)
    if rule is not None:
        where.append(A.rule == rule)
    if rep_id is not None:
        where.append(A.rep_id == rep_id)
    if teams is not None:
        where.append(A.team_id.in_(list(teams)))
    if subject_kind is not None:
        where.append(A.subject_kind == subject_kind)
    if customer_id is not None:
        where.append(A.customer_id == customer_id)
    stmt = keyset(sa.select(ALERTS).where(*where), [A.raised_at, A.id], params, descending=True)
    return list(await session.execute(stmt))


async def decide(session: AsyncSession, alert_id: uuid.UUID, values: dict[str, Any]) -> Any:
    stmt = (
        sa.update(ALERTS)
        .where(A.id == alert_id)
        .values(**values, version=A.version + 1)
        .returning(ALERTS)
    )
    return (await session.execute(stmt)).one()


async def live_on_customers(session: AsyncSession, rep_id: uuid.UUID) -> list[Any]:
    """The live alerts (not resolved, not dismissed) on a rep's customers."""
    stmt = (
        sa.select(ALERTS)
        .where(
            A.rep_id == rep_id,
            A.customer_id.is_not(None),
            A.resolved_at.is_(None),
            A.status != "dismissed",
        )
        .order_by(A.raised_at, A.id)
    )
    return list(await session.execute(stmt))


async def alerts_raised_between(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    *,
    rep_ids: Sequence[uuid.UUID] | None = None,
    team_ids: Sequence[uuid.UUID] | None = None,
    subject_kind: str | None = None,
) -> list[Any]:
    """The alerts raised in [start, end) about these reps (and their customers and
    opportunities) or in these teams (both None: every alert), oldest first: e.g. the weekly
    report's abnormal customers (`subject_kind="customer"`)."""
    where = [A.raised_at >= start, A.raised_at < end]
    scope = []
    if rep_ids is not None:
        scope.append(A.rep_id.in_(list(rep_ids)))
    if team_ids is not None:
        scope.append(A.team_id.in_(list(team_ids)))
    if scope:
        where.append(sa.or_(*scope))
    if subject_kind is not None:
        where.append(A.subject_kind == subject_kind)
    stmt = sa.select(ALERTS).where(*where).order_by(A.raised_at, A.id)
    return list(await session.execute(stmt))
