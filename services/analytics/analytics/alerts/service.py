"""The rules of the alerts: evaluating the insight rules (all subjects in the daily pass, or
only those an incoming event touched), raising and resolving alerts with their events, who
sees which alert, and a manager's acknowledgement or dismissal.

Who sees what (as part 1's figures): a rep the alerts about themselves and about their
customers and opportunities; a manager those of the teams they see (and their own); an admin
everything; an API key everything with `kpis:read`. Region alerts belong to no team: admins and
keys. Anything else is 404. Acknowledging and dismissing is for the managers who see the alert
and for admins (403 for the rep it is about).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alerts import events, repository, rules
from analytics.alerts.exceptions import AlertNotFound, AlertResolved
from analytics.alerts.repository import Narrowing, RuleConfig
from analytics.alerts.rules import Rule, SubjectKind
from analytics.alerts.schemas import AlertListQuery, Decision, RulePut
from analytics.facts import events as feeds
from analytics.kpis import repository as kpis
from analytics.kpis.measures import Context, kpi_figures
from analytics.models import directory
from analytics.periods import Period, containing
from analytics.scopes import COMPANY, KPIS_READ, Scope, ScopeKind
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Forbidden, NotFound, ValidationFailed
from servicekit.outbox import Event, outbox_table, record_events
from servicekit.pagination import PageParams, make_page

# --- evaluating ------------------------------------------------------------------------------


@dataclass(slots=True)
class Subjects:
    """What an event touched: the subjects whose rules are evaluated again."""

    reps: set[uuid.UUID] = field(default_factory=set)
    customers: set[uuid.UUID] = field(default_factory=set)
    opportunities: set[uuid.UUID] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.reps or self.customers or self.opportunities)

    def update(self, other: Subjects) -> None:
        self.reps |= other.reps
        self.customers |= other.customers
        self.opportunities |= other.opportunities


async def stored_configs(session: AsyncSession) -> tuple[str, dict[Rule, RuleConfig]]:
    """The rules as stored, with their fingerprint (`repository.rules_fingerprint`): every
    rule's company thresholds and team overrides (a rule without a row: defaults)."""
    found = {r: RuleConfig(r, True, rules.parse(r, {})) for r in Rule}
    fingerprint, rows = await repository.rules_as_stored(session)
    for row in rows:
        try:
            rule = Rule(row.rule)
        except ValueError:
            continue  # a rule this version no longer knows
        thresholds = rules.parse(rule, row.thresholds)
        if row.scope_key == "":
            found[rule].enabled, found[rule].thresholds = row.enabled, thresholds
        else:
            found[rule].overrides[uuid.UUID(row.scope_key)] = (row.enabled, thresholds)
    return fingerprint, found


async def configs(session: AsyncSession) -> dict[Rule, RuleConfig]:
    """Every rule's company thresholds and team overrides, as stored now."""
    return (await stored_configs(session))[1]


def read(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in events.READ_FIELDS}


@dataclass(frozen=True, slots=True)
class Plan:
    """One rule of an evaluation: how to build its hits (`hits()`), the kind of subject it is
    narrowed to, their ids and how they are bound (None: every subject), and the key its
    built statements are kept under (None: built each time, e.g. hits computed in Python)."""

    rule: Rule
    hits: Any
    kind: SubjectKind | None
    ids: list[uuid.UUID] | None
    key: tuple[Any, ...] | None
    narrowed: Narrowing | None = None


class Evaluator:
    """Evaluates the rules; one per app (main.py), used by the consumers, the daily pass and
    `POST /api/v1/alerts/evaluate`. It keeps the rules as it last read them (checked against
    the stored ones by every evaluation statement, read again when they changed), the
    statements it built from them, and the usual signing cycle of the day it computed it (a
    figure of the last year: it does not move within a day)."""

    # How often an evaluation reads the rules again when they keep changing under it.
    ATTEMPTS = 3

    def __init__(self) -> None:
        self._built: dict[Any, Any] = {}
        self._rules: tuple[str, dict[Rule, RuleConfig]] | None = None
        # (the day, (opportunities won in the year before it, their median cycle))
        self._cycle: tuple[Any, tuple[int, Decimal | None]] | None = None

    async def usual_cycle(
        self, session: AsyncSession, cfg: RuleConfig, today: Any, *, fresh: bool
    ) -> Decimal | None:
        """Part 1's sales_cycle_days of the company over the last year, once enough were won
        (`fresh`: computed now; else the figure of the day, once computed)."""
        if fresh or self._cycle is None or self._cycle[0] != today:
            year = Period(today - timedelta(days=365), today + timedelta(days=1))
            row = await kpis.one_row(session, kpis.won(COMPANY, year))
            won, cycle = int(row["won"]), row["cycle_days"]
            self._cycle = (today, (won, None if cycle is None else Decimal(str(cycle))))
        won, cycle = self._cycle[1]
        return cycle if won >= cfg.thresholds.min_won else None

    async def evaluate(
        self,
        session: AsyncSession,
        ctx: Context,
        subjects: Subjects | None = None,
        *,
        now: datetime | None = None,
    ) -> dict[str, dict[str, int]]:
        """Every rule over every subject (`subjects` None: the daily pass, a statement per
        rule), or the rules of the subjects given (one statement for all); records the alerts
        and their events. Returns per rule how many alerts were raised and resolved."""
        now = now or utcnow()
        today = ctx.calendar.day(now)
        every = subjects is None
        if every or self._rules is None:
            self._rules = await stored_configs(session)
        generic = False
        summary: dict[str, dict[str, int]] = {}
        for _ in range(self.ATTEMPTS):
            fingerprint, cfgs = self._rules
            plans = list((await self.statements(session, ctx, cfgs, today, subjects)).values())
            if not generic and any(p.narrowed is Narrowing.some for p in plans):
                await repository.prefer_generic_plans(session)
                generic = True
            groups = [[p] for p in plans] if every else [plans]
            for group in filter(None, groups):
                counts = await repository.record(
                    session,
                    self._statement(session, group, fingerprint),
                    len(group),
                    now=now,
                    fingerprint=fingerprint,
                    subjects={
                        p.kind: p.ids for p in group if p.kind is not None and p.ids is not None
                    },
                )
                if counts is None:
                    break  # the rules changed: read them again, evaluate again
                for p, (raised, resolved) in zip(group, counts, strict=True):
                    done = summary.setdefault(p.rule.value, {"raised": 0, "resolved": 0})
                    done["raised"] += raised
                    done["resolved"] += resolved
            else:
                return summary
            self._rules = await stored_configs(session)
        raise RuntimeError(f"the alert rules kept changing during {self.ATTEMPTS} evaluations")

    def _statement(self, session: AsyncSession, plans: list[Plan], fingerprint: str) -> Any:
        """The evaluation statement of these rules, built once per rules as stored, day and
        narrowing (building a large Core statement costs more than running it on one
        subject)."""
        outbox = outbox_table(session)

        def build() -> Any:
            recorded = [repository.Recorded(p.rule, p.hits(), p.narrowed) for p in plans]
            return repository.evaluation(recorded, outbox)

        keys = tuple(p.key for p in plans)
        if None in keys:
            return build()
        key = (keys, fingerprint, outbox.schema)
        built = self._built.get(key)
        if built is None:
            if len(self._built) > 256:
                self._built.clear()  # yesterday's
            built = self._built[key] = build()
        return built

    async def statements(
        self,
        session: AsyncSession,
        ctx: Context,
        cfgs: dict[Rule, RuleConfig],
        today: Any,
        subjects: Subjects | None,
    ) -> dict[Rule, Plan]:
        """Each rule to evaluate: how to build its hits, the subjects it is narrowed to."""
        r = repository
        every = subjects is None
        out: dict[Rule, Plan] = {}

        def how(ids: set[uuid.UUID] | None) -> Narrowing | None:
            return None if ids is None else r.narrowing(ids)

        def plan(rule: Rule, build: Any, ids: set[uuid.UUID] | None, *extra: Any) -> None:
            kind = None if every else rules.SUBJECT[rule]
            chosen = None if ids is None else sorted(ids)
            out[rule] = Plan(rule, build, kind, chosen, (rule, today, how(ids), *extra), how(ids))

        reps = None if subjects is None else subjects.reps
        customers = None if subjects is None else subjects.customers
        opportunities = None if subjects is None else subjects.opportunities
        if every or reps:
            cfg = cfgs[Rule.neglect_over_visit]
            plan(Rule.neglect_over_visit, lambda: r.neglect_over_visit(cfg, today, how(reps)), reps)
            low = cfgs[Rule.low_daily_visits]
            week = containing("week", today - timedelta(days=7))
            plan(
                Rule.low_daily_visits,
                lambda: r.low_daily_visits(
                    low,
                    week.start,
                    week.end,
                    week.label,
                    ctx.calendar.working_days(week),
                    ctx.calendar.start(week.start),
                    ctx.calendar.start(week.end),
                    how(reps),
                ),
                reps,
            )
        if every:
            found = await self._regions(session, ctx, cfgs[Rule.low_development_rate], today)
            out[Rule.low_development_rate] = Plan(
                Rule.low_development_rate, lambda: r.region_hits(found), None, None, None
            )
        if every or customers:
            quality, churn = cfgs[Rule.incomplete_key_customer], cfgs[Rule.churn_risk]
            plan(
                Rule.incomplete_key_customer,
                lambda: r.incomplete_key_customer(quality, how(customers)),
                customers,
            )
            plan(Rule.churn_risk, lambda: r.churn_risk(churn, today, how(customers)), customers)
        if every or opportunities:
            stalled = cfgs[Rule.stalled_opportunity]
            cycle = await self.usual_cycle(session, stalled, today, fresh=every)
            plan(
                Rule.stalled_opportunity,
                lambda: r.stalled_opportunity(
                    stalled, today, ctx.calendar.start(today), cycle, how(opportunities)
                ),
                opportunities,
                cycle,
            )
        return out

    async def _regions(
        self, session: AsyncSession, ctx: Context, cfg: RuleConfig, today: Any
    ) -> list[dict[str, Any]]:
        """Regions whose development_rate (part 1's KPI, the last complete month) is below
        the floor; a region has no team, so the company's thresholds apply."""
        if not cfg.enabled:
            return []
        month = containing("month", containing("month", today).start - timedelta(days=1))
        found = []
        for region in await repository.regions(session):
            scope = Scope(ScopeKind.region, region=region)
            figure = (await kpi_figures(session, ctx, scope, month))["development_rate"]
            th = cfg.thresholds
            if figure.value is None or int(figure.denominator or 0) < th.min_candidates:
                continue
            if figure.value < th.floor:
                found.append(
                    {
                        "region": region,
                        "figures": {
                            "development_rate": str(figure.value),
                            "developed_customers": figure.numerator,
                            "candidates": figure.denominator,
                            "floor": str(th.floor),
                            "month": month.label,
                        },
                    }
                )
        return found

    async def on_events(
        self,
        session: AsyncSession,
        ctx: Context,
        source: str,
        applied: Sequence[Event],
        now: datetime,
    ) -> None:
        """After the facts consumer applied a page of events (same transaction): the rules
        of the subjects they touched, once for the page."""
        subjects = Subjects()
        for event in applied:
            subjects.update(await touched(session, source, event))
        if subjects:
            await self.evaluate(session, ctx, subjects, now=now)


async def touched(session: AsyncSession, source: str, event: Event) -> Subjects:
    data, kind = event.data, event.type
    found = Subjects()
    if source == feeds.CUSTOMERS:
        for key in ("customer_id", "merged_into_id"):
            if (customer := feeds.as_uuid(data.get(key))) is not None:
                found.customers.add(customer)
        if kind.startswith("customer.") and (customer := feeds.as_uuid(data.get("id"))):
            found.customers.add(customer)
        if kind in (feeds.ORDER_CANCELLED, feeds.ORDER_AMENDED) and not found.customers:
            order = feeds.as_uuid(data.get("order_id"))
            if order is not None and (owner := await repository.customer_of_order(session, order)):
                found.customers.add(owner)
    elif source == feeds.VISITS and kind == feeds.VISIT_COMPLETED:
        if (rep := feeds.as_uuid(data.get("rep_id"))) is not None:
            found.reps.add(rep)
    elif source == feeds.OPPORTUNITIES and kind.startswith(feeds.OPPORTUNITY_PREFIX):
        opportunity = feeds.as_uuid(data.get("id"))
        if opportunity is not None:
            found.opportunities.add(opportunity)
    return found


# --- who sees which alert --------------------------------------------------------------------


def _require_reader(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(KPIS_READ)


def can_see(principal: Principal, alert: Any) -> bool:
    if principal.kind == "key" or principal.is_admin:
        return True
    if alert.rep_id is not None and alert.rep_id == principal.user_id:
        return True
    return principal.is_manager and alert.team_id is not None and principal.sees_team(alert.team_id)


async def visible_alert(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, *, for_update: bool = False
) -> Any:
    _require_reader(principal)
    alert = await repository.get(session, alert_id, for_update=for_update)
    if alert is None or not can_see(principal, alert):
        raise AlertNotFound(alert_id)
    return alert


async def list_alerts(
    session: AsyncSession, principal: Principal, query: AlertListQuery, page: PageParams
) -> tuple[list[dict[str, Any]], str | None]:
    _require_reader(principal)
    everything = principal.kind == "key" or principal.is_admin
    teams = principal.team_uuids() if principal.is_manager else []
    visible = repository.visibility(everything=everything, me=principal.user_id, teams=teams)
    team_filter = None
    if query.team_id is not None:
        if not everything and not (principal.is_manager and principal.sees_team(query.team_id)):
            raise NotFound(f"no team {query.team_id}")
        team_filter = await _team_tree(session, principal, query.team_id)
    rows = await repository.page(
        session,
        page,
        visible,
        status=None if query.status is None else query.status.value,
        rule=None if query.rule is None else query.rule.value,
        rep_id=query.rep_id,
        teams=team_filter,
        subject_kind=None if query.subject_kind is None else query.subject_kind.value,
        customer_id=query.customer_id,
    )
    items, cursor = make_page(rows, page, lambda r: [r.raised_at, r.id])
    return [read(r) for r in items], cursor


async def _team_tree(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID
) -> list[uuid.UUID]:
    return list(await directory.team_tree(session, team_id))


# --- decisions -------------------------------------------------------------------------------


async def decide(
    session: AsyncSession, principal: Principal, alert: Any, decision: str, body: Decision
) -> dict[str, Any]:
    if principal.kind == "key":
        raise Forbidden("alerts are acknowledged and dismissed by managers and admins")
    if not (principal.is_admin or principal.is_manager):
        raise Forbidden("alerts are acknowledged and dismissed by managers and admins")
    if alert.resolved_at is not None:
        raise AlertResolved(f"alert {alert.id} resolved itself at {alert.resolved_at.isoformat()}")
    now = utcnow()
    row = await repository.decide(
        session,
        alert.id,
        {
            "status": decision,
            "decision": decision,
            "decided_by": principal.sub,
            "decided_at": now,
            "note": body.note,
        },
    )
    changed = read(row)
    kind = events.ALERT_ACKNOWLEDGED if decision == "acknowledged" else events.ALERT_DISMISSED
    await record_events(session, [(kind, row.id, events.alert_facts(changed))])
    return changed


# --- the rules as data -----------------------------------------------------------------------


def _rule_read(rule: Rule, row: Any | None, scope_key: str) -> dict[str, Any]:
    thresholds = rules.parse(rule, {} if row is None else row.thresholds)
    return {
        "rule": rule.value,
        "subject_kind": rules.SUBJECT[rule].value,
        "team_id": scope_key or None,
        "enabled": True if row is None else row.enabled,
        "thresholds": thresholds.model_dump(mode="json"),
        "version": 1 if row is None else row.version,
    }


async def list_rules(session: AsyncSession, principal: Principal) -> list[dict[str, Any]]:
    _require_reader(principal)
    rows = {(r.rule, r.scope_key): r for r in await repository.rule_rows(session)}
    out = []
    for rule in Rule:
        out.append(_rule_read(rule, rows.get((rule.value, "")), ""))
        for (name, key), row in rows.items():
            if name == rule.value and key and (principal.kind == "key" or principal.sees_team(key)):
                out.append(_rule_read(rule, row, key))
    return out


async def put_rule(
    session: AsyncSession,
    principal: Principal,
    rule: Rule,
    team_id: uuid.UUID | None,
    body: RulePut,
    if_match: Any,
) -> dict[str, Any]:
    """Set the company's rule (admins) or a team's override (admins, the team's managers)."""
    if principal.kind == "key":
        raise Forbidden("alert rules are set by managers and admins, not by API keys")
    if team_id is None and not principal.is_admin:
        raise Forbidden("the company's rules are set by admins")
    if team_id is not None and not (principal.is_admin or principal.sees_team(team_id)):
        if principal.is_manager:
            raise NotFound(f"no team {team_id}")
        raise Forbidden("a team's rules are set by its managers and admins")
    if team_id is not None and not principal.is_admin and not principal.is_manager:
        raise Forbidden("a team's rules are set by its managers and admins")
    key = "" if team_id is None else str(team_id)
    current = await repository.get_rule(session, rule.value, key, for_update=True)
    if_match.check(1 if current is None else current.version)
    base = {} if current is None else dict(current.thresholds)
    try:
        thresholds = rules.parse(rule, {**base, **(body.thresholds or {})})
    except Exception as exc:  # pydantic's ValidationError: name the fields
        errors: list[dict[str, Any]] = getattr(exc, "errors", list)()
        raise ValidationFailed(
            f"thresholds of {rule.value} are not valid",
            errors=[
                {
                    **{k: e[k] for k in ("msg", "type") if k in e},
                    "loc": ["body", "thresholds", *e["loc"]],
                }
                for e in errors
            ]
            or [{"loc": ["body", "thresholds"], "msg": str(exc)}],
        ) from None
    row = await repository.put_rule(
        session,
        {
            "rule": rule.value,
            "scope_key": key,
            "enabled": body.enabled
            if body.enabled is not None
            else (current is None or current.enabled),
            "thresholds": thresholds.model_dump(mode="json"),
            "updated_by": principal.sub,
            "updated_at": utcnow(),
        },
    )
    return _rule_read(rule, row, key)
