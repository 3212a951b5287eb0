"""The KPIs of DOMAIN.md §4 from their measures. Pure: measures in, figures out.

Every rate is a numerator over a denominator, both given with the figure; a zero denominator
makes the figure null (never an error, never zero). Rates are rounded to 4 decimals, averages
to 2, money to the cent, half to even.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

Number = int | Decimal

METRICS = (
    "new_customers",
    "developed_customers",
    "development_rate",
    "customer_share",
    "repeat_purchase_rate",
    "avg_daily_visits",
    "visits_per_customer",
    "effective_visit_rate",
    "transaction_rate",
    "plan_adherence",
    "collection_rate",
    "sales_amount",
    "gross_profit",
    "a_level_customers",
    "avg_sales_per_rep_per_week",
    "funnel",
    "redevelopment_success",
    "avg_deal_size",
    "sales_cycle_days",
    "revenue_concentration",
    "target_completion",
    "stage_conversion",
)
# What a target can be set on, and the measure its actual is.
TARGET_METRICS = {
    "sales_amount": "sales_amount",
    "gross_profit": "gross_profit",
    "new_customers": "new_customers",
    "collections": "collected",
    "visits": "visits",
}
MONEY_TARGETS = frozenset({"sales_amount", "gross_profit", "collections"})

RATE = Decimal("0.0001")
AVERAGE = Decimal("0.01")
CENT = Decimal("0.01")


@dataclass(slots=True)
class Measures:
    """What one scope did in one period, as the KPIs need it (see `kpis.measures`)."""

    # what happened in the period
    new_customers: int = 0
    developed: int = 0
    visits: int = 0
    effective_visits: int = 0
    order_visits: int = 0
    orders: int = 0
    plan_items: int = 0
    plan_fulfilled: int = 0
    sales_amount: Decimal = Decimal(0)
    gross_profit: Decimal = Decimal(0)
    paid_on_orders: Decimal = Decimal(0)
    collected: Decimal = Decimal(0)
    # what held at the period's end
    undeveloped: int = 0
    a_level: int = 0
    active: int = 0
    # customers counted once in the period
    visited_customers: int = 0
    ordering_customers: int = 0
    repeat_customers: int = 0
    top_customers: int = 0
    top_amount: Decimal = Decimal(0)
    # people and time
    reps: int = 0
    working_days: int = 0
    weeks: Decimal = Decimal(0)
    # customer_share's denominator: the active customers of the scope above
    share_of: str | None = None
    share_active: int = 0
    # leads received in the period, followed through
    leads: int = 0
    contacted: int = 0
    qualified: int = 0
    won_leads: int = 0
    invalid_leads: int = 0
    # opportunities won in the period
    won: int = 0
    won_amount: Decimal = Decimal(0)
    cycle_days: Decimal | None = None
    # stage -> (left forward, left)
    stages: dict[str, tuple[int, int]] = field(default_factory=dict)
    reengaged: int = 0
    redeveloped: int = 0
    # the targets set for exactly this scope and period: id, metric, value (decimal text)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def actual(self, target_metric: str) -> Number:
        value: Number = getattr(self, TARGET_METRICS[target_metric])
        return value


@dataclass(slots=True)
class Figure:
    metric: str
    value: Number | None
    numerator: Number | None = None
    denominator: Number | None = None
    details: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
        }
        if self.details is not None:
            out["details"] = self.details
        return out


def ratio(numerator: Number, denominator: Number, places: Decimal = RATE) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(places, ROUND_HALF_EVEN)


def rate(metric: str, numerator: Number, denominator: Number, places: Decimal = RATE) -> Figure:
    return Figure(metric, ratio(numerator, denominator, places), numerator, denominator)


def amount(metric: str, value: Decimal) -> Figure:
    return Figure(metric, value.quantize(CENT, ROUND_HALF_EVEN))


def figures(m: Measures) -> dict[str, Figure]:
    """Every KPI but target_completion (which needs the targets: `target_figure`)."""
    rep_days = m.reps * m.working_days
    rep_weeks = (Decimal(m.reps) * m.weeks).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)
    candidates = m.undeveloped + m.developed
    steps = [
        ("received", m.leads, None),
        ("contacted", m.contacted, m.leads),
        ("qualified", m.qualified, m.contacted),
        ("won", m.won_leads, m.qualified),
    ]
    funnel = Figure(
        "funnel",
        ratio(m.won_leads, m.leads),
        m.won_leads,
        m.leads,
        {
            "steps": [
                {
                    "step": step,
                    "count": count,
                    "conversion_rate": None if previous is None else ratio(count, previous),
                }
                for step, count, previous in steps
            ],
            "invalid": m.invalid_leads,
            "invalid_rate": ratio(m.invalid_leads, m.leads),
        },
    )
    stages = Figure(
        "stage_conversion",
        None,
        details={
            "stages": [
                {
                    "stage": stage,
                    "left_forward": forward,
                    "left": left,
                    "conversion_rate": ratio(forward, left),
                }
                for stage, (forward, left) in m.stages.items()
            ]
        },
    )
    out = [
        Figure("new_customers", m.new_customers),
        Figure("developed_customers", m.developed),
        rate("development_rate", m.developed, candidates),
        Figure(
            "customer_share",
            ratio(m.active, m.share_active),
            m.active,
            m.share_active,
            {"share_of": m.share_of},
        ),
        rate("repeat_purchase_rate", m.repeat_customers, m.ordering_customers),
        Figure(
            "avg_daily_visits",
            ratio(m.visits, rep_days, AVERAGE),
            m.visits,
            rep_days,
            {"reps": m.reps, "working_days": m.working_days},
        ),
        rate("visits_per_customer", m.visits, m.visited_customers, AVERAGE),
        rate("effective_visit_rate", m.effective_visits, m.visits),
        rate("transaction_rate", m.order_visits, m.visits),
        rate("plan_adherence", m.plan_fulfilled, m.plan_items),
        rate("collection_rate", m.paid_on_orders, m.sales_amount),
        amount("sales_amount", m.sales_amount),
        amount("gross_profit", m.gross_profit),
        Figure("a_level_customers", m.a_level),
        Figure(
            "avg_sales_per_rep_per_week",
            ratio(m.sales_amount, rep_weeks, CENT),
            m.sales_amount,
            rep_weeks,
            {"reps": m.reps, "weeks": m.weeks.quantize(Decimal("0.0001"), ROUND_HALF_EVEN)},
        ),
        funnel,
        rate("redevelopment_success", m.redeveloped, m.reengaged),
        rate("avg_deal_size", m.won_amount, m.won, CENT),
        Figure("sales_cycle_days", m.cycle_days, details={"won": m.won}),
        rate("revenue_concentration", m.top_amount, m.sales_amount),
        stages,
    ]
    for figure in out:
        if figure.metric == "revenue_concentration":
            figure.details = {"top_customers": m.top_customers, "customers": m.ordering_customers}
    return {f.metric: f for f in out}


def target_figure(target_metric: str, actual: Number, target: Decimal) -> dict[str, Any]:
    """One target's completion: actual / target."""
    return {
        "target_metric": target_metric,
        "actual": actual,
        "target": target,
        "completion": ratio(actual, target),
    }
