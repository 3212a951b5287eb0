"""The pipeline's HTTP contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from servicekit.fields import NO_NUL
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NO_NUL
]
Line = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NO_NUL
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000), NO_NUL]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NO_NUL
]
StageName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)]
Lines = Annotated[list[Line], Field(max_length=20)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpportunityCreate(_Input):
    customer_id: uuid.UUID
    name: Name
    owner_id: uuid.UUID | None = Field(None, description="default: the caller (a rep's own)")
    amount: Money | None = None
    expected_close_on: date | None = None
    stage: StageName | None = Field(None, description="an open stage (default: the first)")
    probability: int | None = Field(None, ge=0, le=100)
    next_action: Text | None = None
    next_action_on: date | None = None
    risks: Lines = Field(default_factory=list)
    competitors: Lines = Field(default_factory=list)


class OpportunityUpdate(_Input):
    """Stage, owner and closing move by their own actions; a null probability means the
    stage's default again."""

    name: Name | None = None
    amount: Money | None = None
    expected_close_on: date | None = None
    probability: int | None = Field(None, ge=0, le=100)
    next_action: Text | None = None
    next_action_on: date | None = None
    risks: Lines | None = None
    competitors: Lines | None = None


class OpportunityRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    lead_id: uuid.UUID | None
    name: str
    owner_id: uuid.UUID
    team_id: uuid.UUID | None
    source: str | None
    region: str | None
    amount: Decimal | None
    expected_close_on: date | None
    stage: str
    # The stage's default unless set by hand (`probability_set`).
    probability: int
    probability_set: bool
    next_action: str | None
    next_action_on: date | None
    risks: list[str]
    competitors: list[str]
    lost_reason: str | None
    lost_to: str | None
    stage_entered_at: datetime
    days_in_stage: float
    closed_at: datetime | None
    won_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class OpportunityPage(BaseModel):
    items: list[OpportunityRead]
    next_cursor: str | None = None


class OpportunityListQuery(_Input):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")
    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    stage: StageName | None = None
    open: bool | None = Field(None, description="true: open only; false: closed only")


class StageMove(_Input):
    stage: StageName
    amount: Money | None = Field(None, description="the won amount (won needs one)")
    lost_reason: Reason | None = Field(None, description="why it was lost (lost needs one)")
    lost_to: Line | None = Field(None, description="the competitor it was lost to")
    note: Text | None = None
    at: AwareDatetime | None = Field(
        None, description="when it happened, if earlier (recorded after the fact); default now"
    )


class Reopen(_Input):
    stage: StageName | None = Field(None, description="default: the stage it closed from")
    reason: Reason


class StageChangeRead(BaseModel):
    id: int
    from_stage: str | None
    to_stage: str
    at: datetime
    recorded_at: datetime
    by: str | None
    team_id: uuid.UUID | None
    days_in_previous: float | None
    note: str | None


class StageChangePage(BaseModel):
    items: list[StageChangeRead]
    next_cursor: str | None = None


class StageInfo(BaseModel):
    name: str
    order: int
    probability: int
    expected_days: int | None
    closed: bool


class Stages(BaseModel):
    items: list[StageInfo]
    next_cursor: str | None = None


class BoardItem(BaseModel):
    id: uuid.UUID
    name: str
    customer_id: uuid.UUID
    owner_id: uuid.UUID
    amount: Decimal | None
    probability: int
    days_in_stage: float
    expected_close_on: date | None
    next_action_on: date | None
    stalled: bool


class BoardColumn(BaseModel):
    stage: str
    probability: int
    count: int
    amount: Decimal
    weighted_amount: Decimal
    items: list[BoardItem]


class Board(BaseModel):
    """A team's (and its sub-teams') open opportunities by stage; `items` holds at most
    `limit` per stage (the counts and amounts cover all)."""

    team_id: uuid.UUID | None
    count: int
    amount: Decimal
    weighted_amount: Decimal
    stages: list[BoardColumn]


class BoardQuery(_Input):
    team_id: uuid.UUID | None = Field(None, description="default: everything you see")
    limit: int = Field(50, ge=0, le=MAX_LIMIT, description="items per stage")


class StallReason(BaseModel):
    rule: Literal["time_in_stage", "cycle"]
    # How long so far, the usual time, and by how much it is exceeded (days).
    days: float
    usual_days: float
    over_by_days: float
    basis: Literal["learned", "expected"]


class StalledItem(BaseModel):
    id: uuid.UUID
    name: str
    customer_id: uuid.UUID
    owner_id: uuid.UUID
    team_id: uuid.UUID | None
    stage: str
    amount: Decimal | None
    stage_entered_at: datetime
    created_at: datetime
    stalled_since: datetime
    reasons: list[StallReason]


class StalledPage(BaseModel):
    items: list[StalledItem]
    next_cursor: str | None = None


class StalledQuery(_Input):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")
    team_id: uuid.UUID | None = None
    owner_id: uuid.UUID | None = None
