"""The next visit plan's contract: suggestions with their reasons, and the body of
`POST /api/v1/visit-plans` (the visits service's `PlanCreate`) made of them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from servicekit.inputs import Date

# The visits service's plan holds at most this many items (`visits.plans.schemas.MAX_ITEMS`).
MAX_ITEMS = 50
# The days a visit plan may have (`visits.schemas.FIRST_DAY` .. `LAST_DAY`): a day outside them
# is the caller's mistake, answered here rather than as the visits service's refusal.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def _plannable(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return day


class NextPlanQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rep_id: Annotated[uuid.UUID | None, Field(description="default: the caller")] = None
    date: Annotated[
        Date, AfterValidator(_plannable), Field(description="the plan's day (company time)")
    ]
    limit: Annotated[int, Field(ge=1, le=MAX_ITEMS, description="at most this many items")] = 8


class ReasonKind(StrEnum):
    alert = "alert"
    next_action = "next_action"
    follow_up = "follow_up"


class Reason(BaseModel):
    kind: ReasonKind
    detail: str
    # The ids that link back: the alert, the opportunity, the follow-up's customer.
    alert_id: uuid.UUID | None = None
    rule: str | None = None
    opportunity_id: uuid.UUID | None = None
    due_on: date | None = None
    figures: dict[str, Any] | None = None


class Suggestion(BaseModel):
    customer_id: uuid.UUID
    customer_code: str | None
    customer_name: str | None
    purpose: str
    reasons: list[Reason]


class PlanItemBody(BaseModel):
    customer_id: uuid.UUID
    slot_start: datetime
    slot_end: datetime
    purpose: str
    note: str | None


class PlanBody(BaseModel):
    plan_date: date
    items: list[PlanItemBody]


class NextPlan(BaseModel):
    rep_id: uuid.UUID
    date: date
    suggestions: list[Suggestion]
    plan: PlanBody = Field(description="POST it as is to /api/v1/visit-plans (as the rep)")
