"""The insight rules of DOMAIN.md §4 (seed 000 §4), as data: each rule's name, the kind of
subject it speaks of, when it is evaluated, and its default thresholds (the migration seeds
them; a team may override them in `alert_rules`). Pure: no session here.

- `neglect_over_visit` (rep): a rep visits one key (A-level) customer more than
  `over_visits_per_month` times in the last 30 days while some of their weak (B/C) customers,
  or a region of their customers, had no visit for `neglect_days`.
- `low_daily_visits` (rep): the rep's avg_daily_visits (part 1's KPI: completed visits over
  working days) in the last complete week below `floor`.
- `low_development_rate` (region): the region's development_rate (part 1's KPI) in the last
  complete month below `floor`, once it has at least `min_candidates` candidates.
- `incomplete_key_customer` (customer): an A-level customer whose data-quality score (as the
  customers service announced it) is below `floor`.
- `churn_risk` (customer): a customer with at least `min_orders` orders on distinct days
  whose gap since its last order exceeds `factor` times its usual reorder interval (the
  median of the intervals between its orders).
- `stalled_opportunity` (opportunity): an open opportunity older than `factor` times the
  usual signing cycle (part 1's sales_cycle_days over the last year, once at least `min_won`
  were won; `default_cycle_days` until then).

Rules on a closed period (the last complete week or month) and on a region are evaluated in
the daily pass; the others also as the events that touch their subjects arrive.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Rule(StrEnum):
    neglect_over_visit = "neglect_over_visit"
    low_daily_visits = "low_daily_visits"
    low_development_rate = "low_development_rate"
    incomplete_key_customer = "incomplete_key_customer"
    churn_risk = "churn_risk"
    stalled_opportunity = "stalled_opportunity"


class SubjectKind(StrEnum):
    rep = "rep"
    customer = "customer"
    region = "region"
    opportunity = "opportunity"


SUBJECT = {
    Rule.neglect_over_visit: SubjectKind.rep,
    Rule.low_daily_visits: SubjectKind.rep,
    Rule.low_development_rate: SubjectKind.region,
    Rule.incomplete_key_customer: SubjectKind.customer,
    Rule.churn_risk: SubjectKind.customer,
    Rule.stalled_opportunity: SubjectKind.opportunity,
}

# The window over which a key customer's visits count as "a month".
OVER_VISIT_WINDOW_DAYS = 30

Count = Annotated[int, Field(ge=1, le=3660)]
Share = Annotated[Decimal, Field(ge=0, le=1)]
Factor = Annotated[Decimal, Field(gt=0, le=100)]


class _Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NeglectOverVisit(_Thresholds):
    neglect_days: Count = 30
    over_visits_per_month: Count = 8


class LowDailyVisits(_Thresholds):
    floor: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal("3")


class LowDevelopmentRate(_Thresholds):
    floor: Share = Decimal("0.05")
    min_candidates: Count = 10


class IncompleteKeyCustomer(_Thresholds):
    floor: Annotated[int, Field(ge=0, le=100)] = 60


class ChurnRisk(_Thresholds):
    factor: Factor = Decimal("2")
    min_orders: Annotated[int, Field(ge=3, le=1000)] = 3


class StalledOpportunity(_Thresholds):
    factor: Factor = Decimal("1.5")
    min_won: Count = 5
    default_cycle_days: Count = 90


THRESHOLDS: dict[Rule, type[_Thresholds]] = {
    Rule.neglect_over_visit: NeglectOverVisit,
    Rule.low_daily_visits: LowDailyVisits,
    Rule.low_development_rate: LowDevelopmentRate,
    Rule.incomplete_key_customer: IncompleteKeyCustomer,
    Rule.churn_risk: ChurnRisk,
    Rule.stalled_opportunity: StalledOpportunity,
}


def defaults(rule: Rule) -> dict[str, Any]:
    """The rule's default thresholds as stored (JSON: decimals as text)."""
    return THRESHOLDS[rule]().model_dump(mode="json")


def parse(rule: Rule, stored: dict[str, Any]) -> Any:
    """Stored thresholds (the defaults filling what a row leaves out)."""
    return THRESHOLDS[rule].model_validate({**defaults(rule), **stored})
