"""The pipeline's HTTP contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.fields import NO_NUL, DecimalOut, DecimalString, Omittable
from servicekit.inputs import Date, Timestamp
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
# Amounts as decimal strings, up to the 16 digits (2 after the point) the tables hold.
Money = Annotated[Decimal, DecimalString(digits=16)]
Lines = Annotated[list[Line], Field(max_length=20)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpportunityCreate(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "0b8f4a52-3c1e-4d7a-9a51-6f2d8c1e7b90",
                    "name": "200 units, spring",
                    "amount": "48000.00",
                    "expected_close_on": "2026-03-31",
                    "next_action": "Send the quote",
                    "next_action_on": "2026-01-20",
                }
            ]
        }
    )

    customer_id: uuid.UUID
    name: Name
    owner_id: uuid.UUID | None = Field(None, description="default: the caller (a rep's own)")
    amount: Money | None = None
    expected_close_on: Date | None = None
    stage: StageName | None = Field(None, description="an open stage (default: the first)")
    probability: int | None = Field(None, ge=0, le=100)
    next_action: Text | None = None
    next_action_on: Date | None = None
    risks: Lines = Field(default_factory=list)
    competitors: Lines = Field(default_factory=list)


class OpportunityUpdate(_Input):
    """Stage, owner and closing move by their own actions; a null probability means the
    stage's default again."""

    name: Omittable[Name] = None
    amount: Money | None = None
    expected_close_on: Date | None = None
    probability: int | None = Field(None, ge=0, le=100)
    next_action: Text | None = None
    next_action_on: Date | None = None
    risks: Omittable[Lines] = None
    competitors: Omittable[Lines] = None


class OpportunityRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    lead_id: uuid.UUID | None
    name: str
    owner_id: uuid.UUID
    team_id: uuid.UUID | None
    source: str | None
    region: str | None
    amount: DecimalOut | None
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
    orphaned: bool | None = Field(
        None,
        description="true: only the open ones whose owner is deactivated (left where they were "
        "because no active manager above the rep could take them over); false: all others",
    )


class StageMove(_Input):
    stage: StageName
    amount: Money | None = Field(None, description="the won amount (won needs one)")
    lost_reason: Reason | None = Field(None, description="why it was lost (lost needs one)")
    lost_to: Line | None = Field(None, description="the competitor it was lost to")
    note: Text | None = None
    at: Timestamp | None = Field(
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


class OwnerChangeRead(BaseModel):
    id: int
    from_owner_id: uuid.UUID | None
    to_owner_id: uuid.UUID
    team_id: uuid.UUID | None
    by: str | None = Field(description="who moved it: a user, or `system`")
    reason: str = Field(description="e.g. `owner_deactivated`")
    at: datetime


class OwnerChangePage(BaseModel):
    items: list[OwnerChangeRead]
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
    amount: DecimalOut | None
    probability: int
    days_in_stage: float
    expected_close_on: date | None
    next_action_on: date | None
    stalled: bool


class BoardColumn(BaseModel):
    stage: str
    probability: int
    count: int
    amount: DecimalOut
    weighted_amount: DecimalOut
    items: list[BoardItem]


class Board(BaseModel):
    """A team's (and its sub-teams') open opportunities by stage; `items` holds at most
    `limit` per stage (the counts and amounts cover all)."""

    team_id: uuid.UUID | None
    count: int
    amount: DecimalOut
    weighted_amount: DecimalOut
    stages: list[BoardColumn]


class BoardQuery(_Input):
    team_id: uuid.UUID | None = Field(None, description="default: everything you see")
    limit: int = Field(50, ge=0, le=MAX_LIMIT, description="items per stage")


class StallRule(StrEnum):
    time_in_stage = "time_in_stage"
    cycle = "cycle"


class UsualTimeBasis(StrEnum):
    learned = "learned"
    expected = "expected"


class StallReason(BaseModel):
    rule: StallRule
    # How long so far, the usual time, and by how much it is exceeded (days).
    days: float
    usual_days: float
    over_by_days: float
    basis: UsualTimeBasis


class StalledItem(BaseModel):
    id: uuid.UUID
    name: str
    customer_id: uuid.UUID
    owner_id: uuid.UUID
    team_id: uuid.UUID | None
    stage: str
    amount: DecimalOut | None
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
