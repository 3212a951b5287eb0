"""What one customer's facts contribute to the rollups. Pure: facts in, keyed deltas out.

The rollups are kept exact by difference: before a customer's facts change, its contribution
is derived; after, again; the rollups take the difference. Applying the same fact twice
derives the same contribution twice, so the difference is nothing. The rebuild from the fact
tables derives every customer's contribution with the same function.

A customer counts (new_customers, developed, undeveloped, a_level, active) only while it is
valid: invalid and merged customers contribute none of those. Its orders and payments count
as money whatever the customer became (sales, collections, ordering and repeat customers).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from analytics.periods import Kind, containing, starts

NOT_COUNTED = frozenset({"invalid", "merged"})
ZERO = Decimal(0)

Grain = str  # "rep" | "team" | "region" | "company"
Number = int | Decimal
DailyKey = tuple[Grain, uuid.UUID | str | None, date]
PeriodKey = tuple[Kind, date]
SalesKey = tuple[Kind, date, uuid.UUID]
TeamKey = tuple[Kind, date, uuid.UUID]


@dataclass(frozen=True, slots=True)
class Attribution:
    rep_id: uuid.UUID | None
    team_id: uuid.UUID | None
    region: str | None

    def grains(self) -> Iterator[tuple[Grain, uuid.UUID | str | None]]:
        """The rollup rows a fact with this attribution lands in."""
        if self.rep_id is not None:
            yield "rep", self.rep_id
        if self.team_id is not None:
            yield "team", self.team_id
        if self.region:
            yield "region", self.region
        yield "company", None


@dataclass(frozen=True, slots=True)
class State:
    """One version of the customer: who owned it, where, at which level, from `day` on."""

    day: date
    seq: int
    who: Attribution
    level: str | None
    status: str


@dataclass(frozen=True, slots=True)
class OrderFact:
    id: uuid.UUID
    seq: int
    day: date
    who: Attribution
    amount: Decimal
    gross_profit: Decimal | None
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class PaymentFact:
    id: uuid.UUID
    order_id: uuid.UUID
    day: date
    who: Attribution
    amount: Decimal
    reversed: bool = False


@dataclass(slots=True)
class CustomerFacts:
    id: uuid.UUID
    status: str
    created_day: date | None
    created_by: Attribution
    versions: list[State] = field(default_factory=list)
    orders: list[OrderFact] = field(default_factory=list)
    payments: list[PaymentFact] = field(default_factory=list)
    # The days of its completed visits made while it was dormant or lost (re-engagements).
    reengaged: list[date] = field(default_factory=list)

    @property
    def counted(self) -> bool:
        return self.status not in NOT_COUNTED

    def live_orders(self) -> list[OrderFact]:
        return sorted((o for o in self.orders if not o.cancelled), key=lambda o: (o.day, o.seq))

    def first_order(self) -> OrderFact | None:
        live = self.live_orders()
        return live[0] if live else None


@dataclass(slots=True)
class Contribution:
    """Keyed measures: `daily` rows, `period` counts, `sales` rows and `teams` (the teams'
    per-period counts) (rollups.models)."""

    daily: dict[DailyKey, dict[str, Number]] = field(default_factory=lambda: defaultdict(dict))
    period: dict[PeriodKey, dict[str, Number]] = field(default_factory=lambda: defaultdict(dict))
    sales: dict[SalesKey, dict[str, Number]] = field(default_factory=lambda: defaultdict(dict))
    teams: dict[TeamKey, dict[str, Number]] = field(default_factory=lambda: defaultdict(dict))

    def add_daily(self, who: Attribution, day: date, measure: str, value: Number) -> None:
        if not value:
            return
        for grain, key in who.grains():
            row = self.daily[(grain, key, day)]
            row[measure] = row.get(measure, 0) + value

    def add(self, other: Contribution, sign: int = 1) -> None:
        for mine, theirs in (
            (self.daily, other.daily),
            (self.period, other.period),
            (self.sales, other.sales),
            (self.teams, other.teams),
        ):
            for key, measures in theirs.items():
                row = mine[key]  # type: ignore[index]
                for measure, value in measures.items():
                    row[measure] = row.get(measure, 0) + sign * value

    def pruned(self) -> Contribution:
        """Without the measures (and rows) that are zero."""
        out = Contribution()
        for mine, theirs in (
            (out.daily, self.daily),
            (out.period, self.period),
            (out.sales, self.sales),
            (out.teams, self.teams),
        ):
            for key, measures in theirs.items():
                kept = {m: v for m, v in measures.items() if v}
                if kept:
                    mine[key] = kept  # type: ignore[index]
        return out

    def __bool__(self) -> bool:
        return bool(self.daily or self.period or self.sales or self.teams)


def difference(before: Contribution, after: Contribution) -> Contribution:
    out = Contribution()
    out.add(after)
    out.add(before, -1)
    return out.pruned()


def _states(facts: CustomerFacts) -> list[State]:
    """The state in force from each day on: the last version of each day."""
    by_day: dict[date, State] = {}
    for version in sorted(facts.versions, key=lambda v: (v.day, v.seq)):
        by_day[version.day] = version
    return [by_day[d] for d in sorted(by_day)]


Interval = tuple[date, date | None]  # [start, end), end None: still holds


def _attributed(
    intervals: Iterable[Interval], states: list[State]
) -> Iterator[tuple[date, date | None, State]]:
    """Cut the intervals where the customer's state changes; each piece with its state. Before
    its first version the customer is taken as it was first announced."""
    for start, end in intervals:
        if end is not None and end <= start:
            continue
        i = 0
        while i + 1 < len(states) and states[i + 1].day <= start:
            i += 1
        at = start
        while True:
            nxt = states[i + 1].day if i + 1 < len(states) else None
            if nxt is None or (end is not None and nxt >= end):
                yield at, end, states[i]
                break
            yield at, nxt, states[i]
            at, i = nxt, i + 1


def _union(intervals: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    merged: list[tuple[date, date]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def derive(facts: CustomerFacts, *, active_window_days: int) -> Contribution:
    """Everything `facts` contribute to the rollups (see the module)."""
    out = Contribution()
    live = facts.live_orders()
    paid: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
    for payment in facts.payments:
        if payment.reversed:
            continue
        paid[payment.order_id] += payment.amount
        out.add_daily(payment.who, payment.day, "collected", payment.amount)

    first = live[0] if live else None
    for order in live:
        out.add_daily(order.who, order.day, "orders", 1)
        out.add_daily(order.who, order.day, "sales_amount", order.amount)
        out.add_daily(order.who, order.day, "gross_profit", order.gross_profit or ZERO)
        out.add_daily(order.who, order.day, "paid_on_orders", paid.get(order.id, ZERO))
        repeat = order is not first
        for kind, start in starts(order.day):
            row = out.sales[(kind, start, facts.id)]
            row["orders"] = row.get("orders", 0) + 1
            row["amount"] = row.get("amount", ZERO) + order.amount
            counts = out.period[(kind, start)]
            counts["ordering"] = 1
            if repeat:
                counts["repeat"] = 1

    _redevelopment(facts, live, out)
    if not facts.counted:
        return out
    states = _states(facts)
    if facts.created_day is not None:
        out.add_daily(facts.created_by, facts.created_day, "new_customers", 1)
    if first is not None:
        out.add_daily(first.who, first.day, "developed", 1)
    if not states:
        return out

    def holds(measure: str, intervals: Iterable[Interval], level: str | None = None) -> None:
        for start, end, state in _attributed(intervals, states):
            if level is not None and state.level != level:
                continue
            out.add_daily(state.who, start, measure, 1)
            if end is not None:
                out.add_daily(state.who, end, measure, -1)

    if facts.created_day is not None:
        if first is None or facts.created_day < first.day:
            holds("undeveloped", [(facts.created_day, None if first is None else first.day)])
        holds("a_level", [(facts.created_day, None)], level="A")
    window = timedelta(days=active_window_days)
    active = _union((o.day, o.day + window) for o in live)
    holds("active", [(start, end) for start, end in active])
    return out


def _redevelopment(facts: CustomerFacts, live: list[OrderFact], out: Contribution) -> None:
    """Per named period with a re-engagement: re-engaged, and redeveloped when a live order is
    dated on or after the period's first re-engagement and within the period (whatever the
    customer became, as the visit log counts it)."""
    first: dict[PeriodKey, date] = {}
    for day in facts.reengaged:
        for kind, start in starts(day):
            if (kind, start) not in first or day < first[(kind, start)]:
                first[(kind, start)] = day
    for (kind, start), day in first.items():
        counts = out.period[(kind, start)]
        counts["reengaged"] = 1
        end = containing(kind, start).end
        if any(day <= order.day < end for order in live):
            counts["redeveloped"] = 1


@dataclass(frozen=True, slots=True)
class VisitFact:
    who: Attribution
    day: date
    effective: bool
    order_taken: bool


def visit_contribution(visit: VisitFact, out: Contribution) -> None:
    """A completed visit's flows (its customer counted once per period is the visit log's
    own lookup: `rollups.service.count_visited`)."""
    out.add_daily(visit.who, visit.day, "visits", 1)
    out.add_daily(visit.who, visit.day, "effective_visits", int(visit.effective))
    out.add_daily(visit.who, visit.day, "order_visits", int(visit.order_taken))


@dataclass(frozen=True, slots=True)
class PlanItemFact:
    who: Attribution  # the plan's rep and team; a plan item has no region of its own
    day: date
    approved: bool
    fulfilled: bool


def plan_items_contribution(items: Iterable[PlanItemFact]) -> Contribution:
    out = Contribution()
    for item in items:
        if item.approved:
            out.add_daily(item.who, item.day, "plan_items", 1)
            out.add_daily(item.who, item.day, "plan_fulfilled", int(item.fulfilled))
    return out
