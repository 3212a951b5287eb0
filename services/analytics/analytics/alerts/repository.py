"""Every statement of the alerts: the rules' SQL (each a set of hits over all subjects, or
narrowed to some), recording the hits (raise, refresh, resolve), the rules' rows, and the
lists.

A rule's hits are one statement answering `subject_kind, subject_id, rep_id, team_id,
customer_id, region, figures` per subject whose condition holds. A team's override of a
threshold is a CASE on the subject's team (the overrides are few); the company's value is the
ELSE.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence, Sized
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alerts.events import ALERT_RAISED, ALERT_RESOLVED, READ_FIELDS
from analytics.alerts.models import ALERT_RULES, ALERTS
from analytics.alerts.rules import OVER_VISIT_WINDOW_DAYS, SUBJECT, Rule, SubjectKind
from analytics.facts.models import CUSTOMERS, MEMBERSHIPS, OPPORTUNITIES, ORDERS, VISITS
from analytics.models import directory
from analytics.rollups.contributions import NOT_COUNTED
from analytics.rollups.models import DAILY_REPS
from servicekit.db import utcnow
from servicekit.pagination import PageParams, keyset

A, C, V, OD = ALERTS.c, CUSTOMERS.c, VISITS.c, ORDERS.c
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

    def lowest(self, name: str) -> Col:
        """The lowest value of the threshold `name` the company or any team has (a filter
        that every team's own then narrows)."""
        values = [getattr(self.thresholds, name)]
        values += [getattr(th, name) for _, th in self.overrides.values()]
        default = values[0]
        kind: Any = sa.Numeric if isinstance(default, Decimal) else sa.Integer
        return sa.literal(min(values), kind)

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


class Narrowing(Enum):
    """How an evaluation narrowed to some subjects binds them (None: every subject). One
    subject is one scalar parameter: the generic plan is estimated as each run's custom plan
    is, so PostgreSQL settles on it by itself after a few runs. Several are one array
    parameter (the statement's text the same for any number of them), whose generic plan is
    estimated for ten: PostgreSQL then keeps planning it for each run unless told otherwise
    (`prefer_generic_plans`)."""

    one = "one"
    some = "some"


def narrowing(ids: Sized) -> Narrowing:
    return Narrowing.one if len(ids) == 1 else Narrowing.some


def ids_param(kind: SubjectKind) -> str:
    """The name of the parameter carrying the subjects of `kind` an evaluation is narrowed to."""
    return f"ids_{kind.value}"


def narrowed_to(column: Col, kind: SubjectKind, narrowed: Narrowing) -> sa.ColumnElement[bool]:
    """`column` among the subjects of `kind` given at run time (`Narrowing`)."""
    if narrowed is Narrowing.one:
        return column == sa.bindparam(ids_param(kind), type_=sa.Uuid)
    return column == sa.any_(sa.bindparam(ids_param(kind), type_=ARRAY(sa.Uuid)))


def subject_params(kind: SubjectKind, ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    """The parameters of an evaluation narrowed to `ids` of `kind` (`narrowed_to`), and of its
    resolve, which compares them as text with the alerts' subject ids."""
    if narrowing(ids) is Narrowing.one:
        return {ids_param(kind): ids[0], _subject_ids(kind): str(ids[0])}
    return {ids_param(kind): list(ids), _subject_ids(kind): [str(i) for i in ids]}


def _among(column: Col, values: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column IN values`, the values as one array: SQLAlchemy renders an IN list's
    statement again at every run, an array parameter is bound as it is."""
    return column == sa.any_(sa.literal(list(values), ARRAY(sa.Text)))


def _not_among(column: Col, values: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column NOT IN values`, as `_among`."""
    return column != sa.all_(sa.literal(list(values), ARRAY(sa.Text)))


def neglect_over_visit(cfg: RuleConfig, today: date, narrowed: Narrowing | None) -> Any:
    u = USERS.c
    first = today - timedelta(days=OVER_VISIT_WINDOW_DAYS - 1)
    where = [V.day >= first, V.day <= today]
    if narrowed:
        where.append(narrowed_to(V.rep_id, SubjectKind.rep, narrowed))
    # A rep's visits per customer, counted from the visits index alone; only the customers
    # past the lowest threshold of any team are looked up (their level, the rep's team).
    counted = (
        sa.select(V.rep_id, V.customer_id, sa.func.count().label("visits"))
        .where(*where)
        .group_by(V.rep_id, V.customer_id)
        .having(sa.func.count() > cfg.lowest("over_visits_per_month"))
        .subquery("counted")
    )
    key = CUSTOMERS.alias("key")
    over = (
        sa.select(counted.c.rep_id, u.team_id, counted.c.customer_id, counted.c.visits)
        .select_from(
            counted.join(key, key.c.id == counted.c.customer_id).outerjoin(
                USERS, u.id == counted.c.rep_id
            )
        )
        .where(
            key.c.level == "A",
            counted.c.visits > cfg.param("over_visits_per_month", u.team_id),
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
    mine, seen, went = CUSTOMERS.alias("mine"), VISITS.alias("seen"), VISITS.alias("went")
    # A customer's last visit up to today: the day its row keeps, unless that visit is dated
    # after today (then one step down the customer's visits index).
    kept = mine.c.last_visit_day
    last_seen = sa.case(
        (sa.or_(kept.is_(None), kept <= sa.literal(today, sa.Date)), kept),
        else_=sa.select(sa.func.max(seen.c.day))
        .where(seen.c.customer_id == mine.c.id, seen.c.day <= today)
        .scalar_subquery(),
    )
    neglected = sa.and_(
        _among(mine.c.level, ("B", "C")),
        mine.c.status != "lost",
        sa.func.coalesce(last_seen, sa.literal(date.min, sa.Date)) <= since,
    )
    # The regions the rep visited in the window, read once per rep: an array, not a subquery
    # in the aggregates below (the planner copies those into the filter it pushes down, and
    # would read the visits twice).
    visited = (
        sa.select(
            sa.func.coalesce(
                sa.func.array_agg(sa.distinct(went.c.region)),
                sa.cast(sa.literal([]), ARRAY(sa.Text)),
            ).label("regions")
        )
        .where(
            went.c.rep_id == rep,
            went.c.region.is_not(None),
            went.c.day > since,
            went.c.day <= today,
        )
        .lateral("visited")
    )
    sample = sa.type_coerce(
        sa.func.array_agg(aggregate_order_by(mine.c.id, mine.c.id)).filter(neglected),
        ARRAY(sa.Uuid),
    )[1:5]
    regions = sa.func.array_agg(
        aggregate_order_by(sa.distinct(mine.c.region), mine.c.region)
    ).filter(mine.c.region.is_not(None), mine.c.region != sa.all_(visited.c.regions))
    # The rep's customers read once for both: the weak ones not visited since the window
    # began, and the regions of all of them the rep did not visit in it; every column read
    # here is in the owner index (`ix_customers_owner_id`), so the rows come from it alone.
    customers = (
        sa.select(
            sa.func.count().filter(neglected).label("count"),
            sa.func.coalesce(sample, sa.cast(sa.literal([]), ARRAY(sa.Uuid))).label("sample"),
            sa.func.coalesce(regions, sa.cast(sa.literal([]), ARRAY(sa.Text))).label("regions"),
        )
        .where(mine.c.owner_id == rep, _not_among(mine.c.status, GONE))
        .lateral("customers_of_rep")
    )
    figures = _obj(
        over_visited=per_rep.c.over_visited,
        over_visits_per_month=cfg.param("over_visits_per_month", team),
        window_days=sa.literal(OVER_VISIT_WINDOW_DAYS),
        neglect_days=days,
        neglected_customers=customers.c.count,
        neglected_sample=customers.c.sample,
        neglected_regions=customers.c.regions,
    )
    return (
        sa.select(*_hit(SubjectKind.rep, rep, rep_id=rep, team_id=team, figures=figures))
        .select_from(per_rep.join(visited, sa.true()).join(customers, sa.true()))
        .where(sa.or_(customers.c.count > 0, sa.func.cardinality(customers.c.regions) > 0))
    )


def low_daily_visits(
    cfg: RuleConfig,
    week_start: date,
    week_end: date,
    label: str,
    working_days: int,
    starts: datetime,
    ends: datetime,
    narrowed: Narrowing | None,
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
        where.append(narrowed_to(m.user_id, SubjectKind.rep, narrowed))
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


def incomplete_key_customer(cfg: RuleConfig, narrowed: Narrowing | None) -> Any:
    floor = cfg.param("floor", C.team_id)
    score = sa.func.coalesce(C.quality_score, 0)
    where = [
        C.level == "A",
        C.data_incomplete,
        _not_among(C.status, GONE),
        score < floor,
        cfg.enabled_for(C.team_id),
    ]
    if narrowed:
        where.append(narrowed_to(C.id, SubjectKind.customer, narrowed))
    figures = _obj(quality_score=C.quality_score, floor=floor, level=C.level)
    return sa.select(*_customer_hit(figures)).where(*where)


def churn_risk(cfg: RuleConfig, today: date, narrowed: Narrowing | None) -> Any:
    """Order days per customer → the intervals between them → their median; the gap since
    the last order against it."""
    # NOT cancelled, as the live orders' index (ix_orders_live_customer_day) is written.
    where = [sa.not_(OD.cancelled), OD.day <= today]
    if narrowed:
        where.append(narrowed_to(OD.customer_id, SubjectKind.customer, narrowed))
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
            _not_among(C.status, GONE),
            cfg.enabled_for(C.team_id),
        )
    )


def stalled_opportunity(
    cfg: RuleConfig,
    today: date,
    start_of_today: datetime,
    usual_cycle: Decimal | None,
    narrowed: Narrowing | None,
) -> Any:
    P = OPPORTUNITIES.c
    usual: Col = (
        sa.literal(usual_cycle, sa.Numeric)
        if usual_cycle is not None
        else sa.cast(cfg.param("default_cycle_days", P.team_id), sa.Numeric)
    )
    factor = cfg.param("factor", P.team_id)
    age = sa.extract("epoch", sa.literal(start_of_today) - P.created_at) / 86400
    where = [_not_among(P.stage, CLOSED_STAGES), age > factor * usual, cfg.enabled_for(P.team_id)]
    if narrowed:
        where.append(narrowed_to(P.id, SubjectKind.opportunity, narrowed))
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


def rules_fingerprint() -> Col:
    """The rules as stored (each row's rule, team, switch and thresholds) summed up in one
    text ("" without rows): a statement built from rules read earlier checks it before it
    writes anything, so the rules are read again only when they changed."""
    R = ALERT_RULES.c
    listed = sa.func.jsonb_agg(
        aggregate_order_by(
            sa.func.jsonb_build_array(R.rule, R.scope_key, R.enabled, R.thresholds),
            R.rule,
            R.scope_key,
        )
    )
    return sa.select(sa.func.coalesce(sa.func.md5(sa.cast(listed, sa.Text)), "")).scalar_subquery()


@functools.cache
def _stored_rules() -> Any:
    R = ALERT_RULES.c
    return sa.select(ALERT_RULES, rules_fingerprint().label("fingerprint")).order_by(
        R.rule, R.scope_key
    )


async def rules_as_stored(session: AsyncSession) -> tuple[str, list[Any]]:
    """The rules' rows and their fingerprint (`rules_fingerprint`), in one round trip."""
    rows = list(await session.execute(_stored_rules()))
    return (rows[0].fingerprint if rows else ""), rows


@dataclass(frozen=True, slots=True)
class Recorded:
    """A rule of an evaluation statement: its hits (a statement of `_hit`'s columns) and how
    they are narrowed to the rule's kind of subject (None: every subject)."""

    rule: Rule
    hits: Any
    narrowed: Narrowing | None


def _subject_ids(kind: SubjectKind) -> str:
    return f"subject_ids_{kind.value}"


_EVENT_COLUMNS = ("id", "type", "source", "subject", "time", "data", "dataversion")
# An alert's times in its events as the API writes them: ISO 8601 in UTC, whatever the
# session's time zone.
_ISO_UTC = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'


def _alert_data(rows: Any) -> Col:
    """An alert row as the API reads it (`events.READ_FIELDS`), as JSON."""

    def value(name: str) -> Col:
        col = rows.c[name]
        if isinstance(col.type, sa.DateTime):
            return sa.func.to_char(sa.func.timezone("UTC", col), _ISO_UTC)
        return col  # type: ignore[no-any-return]

    return _obj(**{name: value(name) for name in READ_FIELDS})


def evaluation(rules: Sequence[Recorded], outbox: sa.Table) -> Any:
    """One statement recording what the rules find, one round trip for the whole
    evaluation. Per rule, as data-modifying CTEs: its hits (computed once); an alert raised
    for each hit without a live one (a live one has its figures and owner refreshed and is
    stamped); its live alerts of the subjects looked at that it did not find again,
    resolved; and the `alert.raised` / `alert.resolved` events of both in `outbox`. Nothing
    is written when the rules as stored are no longer those the statement was built from
    (the `fingerprint` parameter): the caller reads them again and builds anew.

    Answers `current` (false: nothing written) and per rule, by position, `raised_<n>` and
    `resolved_<n>`. Parameters: `now`, `fingerprint`, `source` and `written` (the events'
    source and time), and per narrowed kind its ids (`ids_param`, and as text
    `subject_ids_<kind>`)."""
    now = sa.bindparam("now", type_=sa.DateTime(timezone=True))
    source = sa.bindparam("source", type_=sa.Text)
    written = sa.bindparam("written", type_=sa.DateTime(timezone=True))
    # The rules read once; every write below is conditional on them being unchanged.
    unchanged = (rules_fingerprint() == sa.bindparam("fingerprint", type_=sa.Text)).label("ok")
    checked = sa.select(unchanged).cte("rules_unchanged")
    current = sa.select(checked.c.ok).scalar_subquery()

    def announced(rows: Any, type_: str, *where: Any) -> Any:
        return sa.select(
            sa.func.gen_random_uuid(),
            sa.literal(type_),
            source,
            sa.cast(rows.c.id, sa.Text),
            written,
            # Built as jsonb (like the alert's figures), stored as the outbox's json.
            sa.cast(_alert_data(rows), outbox.c.data.type),
            sa.literal("1"),
        ).where(*where)

    def count(rows: Any, name: str, *where: Any) -> Any:
        return (
            sa.select(sa.func.count()).select_from(rows).where(*where).scalar_subquery().label(name)
        )

    counts, events = [], []
    for n, spec in enumerate(rules):
        hits = spec.hits.cte(f"hits_{n}")
        raised = _raise(spec.rule, hits, now, current).cte(f"raised_{n}")
        resolved = _resolve(spec, hits, now, current, n).cte(f"resolved_{n}")
        events += [
            announced(raised, ALERT_RAISED, raised.c.fresh),
            announced(resolved, ALERT_RESOLVED),
        ]
        counts += [
            count(raised, f"raised_{n}", raised.c.fresh),
            count(resolved, f"resolved_{n}"),
        ]
    written_events = (
        sa.insert(outbox).from_select(_EVENT_COLUMNS, sa.union_all(*events)).cte("alert_events")
    )
    # PostgreSQL runs a data-modifying CTE whether or not the statement reads it.
    return sa.select(current.label("current"), *counts).add_cte(written_events)


def _raise(rule: Rule, hits: Any, now: Any, current: Any) -> Any:
    """Raise an alert for each hit without a live one; refresh and stamp the live one."""
    found = [c.name for c in hits.c]  # the hit's columns (`_hit`)
    names = ["rule", *found, "status", "raised_at", "evaluated_at"]
    source = sa.select(
        sa.literal(rule.value), *hits.c, sa.literal("open"), now, sa.func.clock_timestamp()
    ).where(current)
    ins = pg_insert(ALERTS).from_select(names, source)
    refreshed = ("rep_id", "team_id", "customer_id", "region", "figures", "evaluated_at")
    return ins.on_conflict_do_update(
        index_elements=[A.rule, A.subject_kind, A.subject_id],
        index_where=A.resolved_at.is_(None),
        set_={k: ins.excluded[k] for k in refreshed},
    ).returning(*ALERTS.c, sa.literal_column("(xmax = 0)", sa.Boolean).label("fresh"))


def _resolve(spec: Recorded, hits: Any, now: Any, current: Any, n: int) -> Any:
    """Resolve the rule's live alerts (of the narrowed subjects, or all) it did not find.
    Only those stamped before this statement: one a concurrent evaluation refreshed since is
    that evaluation's to judge. The live alerts not found are an EXCEPT (hashed or sorted,
    whatever the estimates): an anti-join against the hits let the planner, misled by the
    estimates of a fresh table or a CTE, compare every live alert with every hit."""
    live = [
        A.rule == spec.rule.value,
        A.subject_kind == SUBJECT[spec.rule].value,
        A.resolved_at.is_(None),
    ]
    if spec.narrowed is Narrowing.one:
        live.append(A.subject_id == sa.bindparam(_subject_ids(SUBJECT[spec.rule]), type_=sa.Text))
    elif spec.narrowed is Narrowing.some:
        texts = sa.bindparam(_subject_ids(SUBJECT[spec.rule]), type_=ARRAY(sa.Text))
        live.append(A.subject_id == sa.any_(texts))
    ended = sa.except_(sa.select(A.subject_id).where(*live), sa.select(hits.c.subject_id)).cte(
        f"ended_{n}"
    )
    return (
        sa.update(ALERTS)
        .where(
            *live,
            A.subject_id.in_(sa.select(ended.c.subject_id)),
            A.evaluated_at < sa.func.statement_timestamp(),
            current,
        )
        .values(status="resolved", resolved_at=now, version=A.version + 1)
        .returning(*ALERTS.c)
    )


_GENERIC_PLANS = sa.select(sa.func.set_config("plan_cache_mode", "force_generic_plan", True))


async def prefer_generic_plans(session: AsyncSession) -> None:
    """Until the transaction ends, run prepared statements on their generic plan: for an
    evaluation of several subjects (`Narrowing.some`), which PostgreSQL would otherwise plan
    again for each run's ids. It is large: planning it costs the database more than running
    it, and its narrowed plans do not depend on which subjects. (One subject's statement
    needs no telling, `Narrowing`: no round trip of its own.)"""
    await session.execute(_GENERIC_PLANS)


async def record(
    session: AsyncSession,
    statement: Any,
    rules: int,
    *,
    now: datetime,
    fingerprint: str,
    subjects: dict[SubjectKind, Sequence[uuid.UUID]],
) -> list[tuple[int, int]] | None:
    """Run an `evaluation` statement of `rules` rules; per rule (raised, resolved), or None
    when the rules changed since `fingerprint` was read (nothing written)."""
    params: dict[str, Any] = {
        "now": now,
        "fingerprint": fingerprint,
        "source": session.info["outbox_source"],
        "written": utcnow(),
    }
    for kind, ids in subjects.items():
        params |= subject_params(kind, ids)
    row = (await session.execute(statement, params)).one()
    if not row.current:
        return None
    counts = row._mapping
    return [(counts[f"raised_{n}"], counts[f"resolved_{n}"]) for n in range(rules)]


async def count_hits(
    session: AsyncSession,
    hits: Any,
    kind: SubjectKind | None = None,
    subjects: Sequence[uuid.UUID] | None = None,
) -> int:
    """How many subjects a rule's statement finds (the benchmark's baseline)."""
    sub = hits.subquery("hits")
    stmt = sa.select(sa.func.count()).select_from(sub)
    params = {} if kind is None or subjects is None else subject_params(kind, subjects)
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
