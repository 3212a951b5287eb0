"""The leads' HTTP contract."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from opportunities.pipeline.schemas import Money, OpportunityRead
from opportunities.scoring.schemas import ScoreExplanation
from servicekit.db import utcnow
from servicekit.fields import NO_NUL, Omittable, json_checker
from servicekit.inputs import Date, Timestamp
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT


class LeadStatus(StrEnum):
    """Where a lead is: new -> qualified -> assigned -> contacted -> converted, or nurturing
    (below the threshold) or invalid."""

    new = "new"
    qualified = "qualified"
    nurturing = "nurturing"
    assigned = "assigned"
    contacted = "contacted"
    converted = "converted"
    invalid = "invalid"


class InvalidReason(StrEnum):
    spam = "spam"
    duplicate = "duplicate"
    unreachable = "unreachable"
    no_need = "no_need"
    other = "other"


class Level(StrEnum):
    """The customer's level (the customers service's A/B/C)."""

    A = "A"
    B = "B"
    C = "C"


class IntakeOutcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    error = "error"


Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# Each text field's constraints, shared by its checked type (`NO_NUL`) and the type of the bulk
# rows of a body that cannot hold a refused value (`CleanLeadIn`).
_ID = StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
_REGION = StringConstraints(strip_whitespace=True, min_length=1, max_length=32)
_SHORT = StringConstraints(strip_whitespace=True, max_length=200)
_LONG = StringConstraints(strip_whitespace=True, max_length=2000)
_EMAIL = StringConstraints(
    strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
)
ExternalId = Annotated[str, _ID, NO_NUL]
Name = Annotated[str, _ID, NO_NUL]
Region = Annotated[str, _REGION, NO_NUL]
ShortText = Annotated[str, _SHORT, NO_NUL]
LongText = Annotated[str, _LONG, NO_NUL]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000), NO_NUL]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=40, pattern=r"^[0-9+()\-. ]*$")
]
Email = Annotated[str, _EMAIL, NO_NUL]
# Criterion -> the chosen option (null: not known yet).
Evaluation = Annotated[dict[Key, Key | None], Field(max_length=30)]
ATTRIBUTES_MAX_BYTES = 8192
ATTRIBUTES_MAX_DEPTH = 5
Attributes = Annotated[
    dict[str, Any],
    AfterValidator(json_checker(max_bytes=ATTRIBUTES_MAX_BYTES, max_depth=ATTRIBUTES_MAX_DEPTH)),
]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LeadIn(_Input):
    """One lead as an integration (or a user) pushes it. `source` + `external_id` name it:
    the same pair pushed again is the same lead, updated with the fields given. A new lead
    needs its company or its contact_name."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "website",
                    "external_id": "form-20260114-0042",
                    "company": "Hangzhou Lanting Trading",
                    "contact_name": "Wang Fang",
                    "phone": "+86 571 8888 0042",
                    "region": "EAST",
                    "need": "Quote for 200 units before March",
                    "evaluation": {"budget": "confirmed"},
                }
            ]
        }
    )

    source: Key
    external_id: ExternalId | None = None
    company: Name | None = None
    contact_name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None
    region: Region | None = None
    industry: ShortText | None = None
    need: LongText | None = None
    evaluation: Evaluation = Field(default_factory=dict)
    attributes: Attributes = Field(default_factory=dict)
    received_at: Timestamp | None = None

    @field_validator("received_at")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        if value < EARLIEST or value > utcnow() + timedelta(days=1):
            raise ValueError("must lie between 2000-01-01 and tomorrow")
        return value


class CleanLeadIn(LeadIn):
    """`LeadIn` for a bulk row of a body `servicekit.inputs.may_hold_refusals` cleared (no
    U+0000, no surrogate, no non-finite number anywhere in it): its text fields skip
    `NO_NUL`'s Python call (one per string, most of a row's validation) and its attributes
    the walk of `json_checker`, which intake replaces by `servicekit.fields.json_fits` over
    the attributes' JSON, validating the row as `LeadIn` when that cannot tell."""

    external_id: Annotated[str, _ID] | None = None
    company: Annotated[str, _ID] | None = None
    contact_name: Annotated[str, _ID] | None = None
    email: Annotated[str, _EMAIL] | None = None
    region: Annotated[str, _REGION] | None = None
    industry: Annotated[str, _SHORT] | None = None
    need: Annotated[str, _LONG] | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class LeadUpdate(_Input):
    company: Name | None = None
    contact_name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None
    region: Region | None = None
    industry: ShortText | None = None
    need: LongText | None = None
    evaluation: Omittable[Evaluation] = None
    attributes: Omittable[Attributes] = None
    next_touch_on: Omittable[Date] = None


class LeadRead(BaseModel):
    id: uuid.UUID
    source: str
    external_id: str | None
    company: str | None
    contact_name: str | None
    phone: str | None
    email: str | None
    region: str | None
    industry: str | None
    need: str | None
    evaluation: dict[str, Any]
    attributes: dict[str, Any]
    received_at: datetime
    status: LeadStatus
    # The active model's score, explained (it decided), and the challenger's beside it.
    score: ScoreExplanation | None
    challenger_score: ScoreExplanation | None
    customer_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    rule_id: uuid.UUID | None
    next_touch_on: date | None
    invalid_reason: InvalidReason | None
    invalid_note: str | None
    opportunity_id: uuid.UUID | None
    qualified_at: datetime | None
    nurtured_at: datetime | None
    assigned_at: datetime | None
    contacted_at: datetime | None
    converted_at: datetime | None
    invalidated_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class LeadPage(BaseModel):
    items: list[LeadRead]
    next_cursor: str | None = None


class LeadListQuery(_Input):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")
    status: LeadStatus | None = None
    source: Key | None = None
    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    queue: bool | None = Field(
        None, description="true: the qualified leads waiting for a rep (the unassigned queue)"
    )
    customer_id: uuid.UUID | None = None
    touch_due_by: Date | None = Field(None, description="nurtured leads to touch by this day")
    received_from: Timestamp | None = None
    received_to: Timestamp | None = None


class Outcome(BaseModel):
    row: int
    outcome: IntakeOutcome
    id: uuid.UUID | None = None
    status: LeadStatus | None = None
    error: str | None = None


class IntakeResult(BaseModel):
    results: list[Outcome]
    created: int
    updated: int
    unchanged: int
    errors: int


class ContactedBody(_Input):
    at: Timestamp | None = Field(None, description="when (default: now)")
    note: Note | None = None


class InvalidateBody(_Input):
    reason: InvalidReason
    note: Note | None = None


class RequalifyBody(_Input):
    evaluation: Evaluation | None = None


class AssignBody(_Input):
    owner_id: uuid.UUID
    reason: Note | None = None


class AssignmentRead(BaseModel):
    id: int
    lead_id: uuid.UUID
    from_owner_id: uuid.UUID | None
    to_owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    rule_id: uuid.UUID | None
    by: str | None
    reason: str
    at: datetime


class AssignmentPage(BaseModel):
    items: list[AssignmentRead]
    next_cursor: str | None = None


class CustomerFields(_Input):
    """The customer a conversion creates: what the lead lacks or should not decide."""

    name: Name | None = None
    region: Region | None = None
    level: Level | None = None
    owner_id: uuid.UUID | None = Field(None, description="default: the lead's rep")


class ConvertBody(_Input):
    name: Name | None = Field(None, description="the opportunity's name (default: the lead's)")
    amount: Money | None = None
    expected_close_on: Date | None = None
    customer_id: uuid.UUID | None = Field(
        None, description="an existing customer (one of the candidates of a 409)"
    )
    confirm_duplicates: bool = Field(
        False, description="create the customer even though it looks like existing ones"
    )
    customer: CustomerFields | None = None
    at: Timestamp | None = Field(
        None, description="when it happened, if earlier (recorded after the fact); default now"
    )


class ConversionRead(BaseModel):
    lead: LeadRead
    opportunity: OpportunityRead
    customer_id: uuid.UUID
    customer_created: bool
