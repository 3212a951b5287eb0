"""The visit log's HTTP contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from servicekit.fields import DecimalOut, Money
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from visits.plans.schemas import Purpose
from visits.schemas import Category, Day, Input, LongText, Moment, Required


class Channel(StrEnum):
    in_person = "in_person"
    phone = "phone"
    online = "online"


class VisitStatus(StrEnum):
    planned = "planned"
    completed = "completed"
    cancelled = "cancelled"


class NewVisitStatus(StrEnum):
    planned = "planned"
    completed = "completed"


Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class CheckInLocation(Input):
    lat: Latitude
    lon: Longitude
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class Expense(Input):
    category: Category
    amount: Money


class VisitOutcome(Input):
    """What a visit brought; on create, on a PATCH of a planned visit (only what is sent
    changes), and with its completion."""

    contact_id: uuid.UUID | None = None
    check_out_at: Moment | None = None
    check_in_location: CheckInLocation | None = None
    effective: bool | None = None
    order_taken: bool | None = None
    order_amount: Money | None = None
    collected_amount: Money | None = None
    memo: LongText | None = None
    next_step: LongText | None = None
    next_visit_on: Day | None = None
    expenses: list[Expense] | None = Field(default=None, max_length=50)
    competitor_news: LongText | None = None
    customer_feedback: LongText | None = None


class VisitCreate(VisitOutcome):
    # Whose visit: the caller's own unless an admin or an API key names the rep.
    rep_id: uuid.UUID | None = None
    customer_id: uuid.UUID
    channel: Channel
    purpose: Purpose
    # The approved plan's item this visit fulfils (one visit per item).
    plan_item_id: uuid.UUID | None = None
    # "planned": checked in, the outcome comes with its completion; "completed": logged whole.
    status: NewVisitStatus = NewVisitStatus.completed
    check_in_at: Moment


class VisitUpdate(VisitOutcome):
    channel: Channel | None = None
    purpose: Purpose | None = None
    check_in_at: Moment | None = None


class CancelBody(Input):
    reason: Required


class LocationRead(BaseModel):
    lat: float
    lon: float
    accuracy_m: float | None


class ExpenseRead(BaseModel):
    category: str
    amount: DecimalOut


class VisitRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rep_id: uuid.UUID
    team_id: uuid.UUID | None
    customer_id: uuid.UUID
    customer_code: str | None
    customer_name: str | None
    contact_id: uuid.UUID | None
    channel: Channel
    purpose: Purpose
    plan_item_id: uuid.UUID | None
    status: VisitStatus
    check_in_at: datetime
    check_out_at: datetime | None
    visit_date: date
    check_in_location: LocationRead | None
    distance_m: float | None
    far_from_customer: bool
    effective: bool
    order_taken: bool
    order_amount: DecimalOut
    collected_amount: DecimalOut
    memo: str | None
    next_step: str | None
    next_visit_on: date | None
    expenses: list[ExpenseRead]
    expenses_total: DecimalOut
    competitor_news: str | None
    customer_feedback: str | None
    cancel_reason: str | None
    customer_status: str
    completed_at: datetime | None
    cancelled_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class VisitListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rep_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    # Company days, both included.
    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    status: VisitStatus | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
