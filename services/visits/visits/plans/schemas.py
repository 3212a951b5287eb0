"""The daily visit plan's HTTP contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from visits.schemas import Comment, Day, Input, LongText, Moment, ShortText


class Purpose(StrEnum):
    new_development = "new_development"
    market_research = "market_research"
    collection = "collection"
    service = "service"
    complaint = "complaint"
    order_taking = "order_taking"
    other = "other"


class PlanStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    returned = "returned"


MAX_ITEMS = 50


class PlanItemInput(Input):
    # Given when editing: the item keeps its id; without it the item is new.
    id: uuid.UUID | None = None
    customer_id: uuid.UUID
    slot_start: Moment
    slot_end: Moment
    purpose: Purpose
    note: LongText | None = None


class PlanCreate(Input):
    plan_date: Day
    area: ShortText | None = None
    items: list[PlanItemInput] = Field(default_factory=list, max_length=MAX_ITEMS)


class PlanUpdate(Input):
    """Only what is sent changes; `items` replaces the whole list."""

    area: ShortText | None = None
    items: list[PlanItemInput] | None = Field(default=None, max_length=MAX_ITEMS)


class ReturnBody(Input):
    comment: Comment = Field(min_length=1)


class PlanItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    customer_code: str | None
    customer_name: str | None
    slot_start: datetime
    slot_end: datetime
    purpose: Purpose
    note: str | None
    # The visit that fulfils the item (not cancelled), and whether it is completed.
    visit_id: uuid.UUID | None = None
    fulfilled: bool = False


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    rep_id: uuid.UUID
    team_id: uuid.UUID | None
    plan_date: date
    area: str | None
    status: PlanStatus
    comment: str | None
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    items: list[PlanItemRead]


class PlanListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rep_id: uuid.UUID | None = None
    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    status: PlanStatus | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
