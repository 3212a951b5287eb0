"""The archive's HTTP contract: XCreate / XUpdate (all optional, exclude_unset) / XRead."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from servicekit.fields import DecimalOut, Money, Omittable
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT, SortOrder


class Level(StrEnum):
    """A customer's level: A the most valuable, visited most often."""

    A = "A"
    B = "B"
    C = "C"


class Status(StrEnum):
    """active; dormant (no order for the configured days; its next order makes it active);
    lost (given up on); invalid (kept, no longer worked); merged (folded into another record)."""

    active = "active"
    dormant = "dormant"
    lost = "lost"
    invalid = "invalid"
    merged = "merged"


class StatusChange(StrEnum):
    """The statuses a change may set (a merge sets `merged`)."""

    active = "active"
    invalid = "invalid"


class ChangeRequestStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    withdrawn = "withdrawn"
    cancelled = "cancelled"


class CustomerSort(StrEnum):
    created_at = "created_at"
    updated_at = "updated_at"
    name = "name"
    code = "code"


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=40, pattern=r"^[0-9+()\-. ]*$")
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(_Input):
    """A point in WGS 84 degrees."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class ContactInput(_Input):
    """A contact given with a new customer (stored by the contacts feature)."""

    name: Name
    title: ShortText | None = None
    phone: Phone | None = None
    email: Email | None = None
    is_decision_maker: bool = False
    is_primary: bool = False


class CustomerCreate(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Hangzhou Lanting Trading",
                    "region": "EAST",
                    "level": "B",
                    "industry": "Wholesale",
                    "phone": "+86 571 8888 0042",
                    "tags": ["distributor"],
                    "estimated_potential": "250000.00",
                }
            ]
        }
    )

    name: Name
    region: Region
    level: Level = Level.C
    industry: ShortText | None = None
    address: LongText | None = None
    phone: Phone | None = None
    email: Email | None = None
    source: ShortText | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    estimated_potential: Money | None = None
    location: Location | None = None
    owner_id: uuid.UUID | None = None
    external_ref: ShortText | None = None
    contacts: list[ContactInput] = Field(default_factory=list, max_length=50)
    # History brought in from another system (admins and keys with customers:write only):
    # when the customer was created, since when its owner holds it and since when it has its
    # level; each defaults to the creation and lies between it and now.
    created_at: AwareDatetime | None = None
    owner_since: AwareDatetime | None = None
    level_since: AwareDatetime | None = None

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))


# The fields that bring in history: `CustomerCreate` carries them only from admins and keys.
HISTORICAL_FIELDS = ("created_at", "owner_since", "level_since")


class CustomerUpdate(_Input):
    """Only the fields sent change; null clears a field that may be empty (name, region,
    level, tags and status never are)."""

    name: Omittable[Name] = None
    region: Omittable[Region] = None
    level: Omittable[Level] = None
    industry: ShortText | None = None
    address: LongText | None = None
    phone: Phone | None = None
    email: Email | None = None
    source: ShortText | None = None
    tags: Omittable[Annotated[list[Tag], Field(max_length=50)]] = None
    estimated_potential: Money | None = None
    location: Location | None = None
    # null: into the pool.
    owner_id: uuid.UUID | None = None
    status: Omittable[StatusChange] = None
    invalid_reason: Reason | None = None
    external_ref: ShortText | None = None
    # Why the change is made; kept in the history and on a change request.
    reason: Reason | None = None

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else list(dict.fromkeys(tags))


# The customer's public fields, in the order the API documents them (and export writes them).
PUBLIC_FIELDS = (
    "id",
    "code",
    "name",
    "region",
    "level",
    "industry",
    "address",
    "phone",
    "email",
    "source",
    "tags",
    "estimated_potential",
    "owner_id",
    "team_id",
    "status",
    "external_ref",
    "version",
    "created_at",
    "updated_at",
)
# Fields that are not the record's content: changing them is no "update" for data quality.
NOT_CONTENT_FIELDS = frozenset({"owner_id", "status", "invalid_reason"})


class CustomerField(StrEnum):
    """The fields a change may set, in the order the history shows them."""

    name = "name"
    region = "region"
    level = "level"
    industry = "industry"
    address = "address"
    phone = "phone"
    email = "email"
    source = "source"
    tags = "tags"
    estimated_potential = "estimated_potential"
    location = "location"
    owner_id = "owner_id"
    status = "status"
    invalid_reason = "invalid_reason"
    external_ref = "external_ref"


# name / region / level must never be cleared.
UPDATABLE_FIELDS = tuple(f.value for f in CustomerField)
NOT_NULL_FIELDS = frozenset({"name", "region", "level", "tags", "status"})


class CustomerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    region: str
    level: Level
    industry: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    source: str | None = None
    tags: list[str] = Field(default_factory=list)
    estimated_potential: DecimalOut | None = None
    location: Location | None = None
    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    status: Status
    status_since: datetime
    invalid_reason: str | None = None
    lost_reason: str | None = None
    lost_competitor: str | None = None
    merged_into_id: uuid.UUID | None = None
    external_ref: str | None = None
    level_since: datetime
    last_order_date: date | None = None
    # Data quality (0-100) and whether the record counts as incomplete, by the settings.
    quality_score: int
    incomplete: bool
    version: int
    created_at: datetime
    updated_at: datetime


class CustomerListQuery(BaseModel):
    """The query of `GET /customers` (validated in one call on the hot list path)."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size")
    cursor: str | None = Field(None, description="`next_cursor` of the previous page")
    region: str | None = None
    level: Level | None = None
    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    status: Status | None = None
    industry: str | None = Field(None, min_length=1, max_length=200)
    incomplete: bool | None = Field(None, description="true: only incomplete records")
    tag: str | None = Field(None, max_length=50)
    pool: bool | None = Field(None, description="true: only the pool")
    q: str | None = Field(None, min_length=1, max_length=100, description="name, code or phone")
    sort: CustomerSort = CustomerSort.created_at
    order: SortOrder = SortOrder.asc


class CustomerLookupQuery(BaseModel):
    """`GET /lookup`: exactly one of `id`, `code` or `external_ref` (with its `source`)."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID | None = None
    code: str | None = Field(None, min_length=1, max_length=64)
    external_ref: str | None = Field(None, min_length=1, max_length=200)
    source: str | None = Field(
        None, max_length=200, description="with `external_ref`: the system it comes from"
    )


class CustomerRef(BaseModel):
    """What the lookup tells: how to address the customer, nothing about it."""

    id: uuid.UUID
    code: str
    source: str | None
    external_ref: str | None
    status: Status
    # Set when the customer was merged: push to that one instead.
    merged_into_id: uuid.UUID | None


class LevelInfo(BaseModel):
    level: Level
    since: datetime
    cadence_days: int
    proposed_level: Level
    # Null for an integration key without `orders:read`: it is the orders' figure.
    purchases_12m: DecimalOut | None


class OwnershipPeriodRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    started_at: datetime
    ended_at: datetime | None
    reason: str
    kind: str
    actor_id: str | None
    end_reason: str | None = None
    ended_by: str | None = None


class CustomerFile(CustomerRead):
    """The department's full file: every field plus the registered sections."""

    level_info: LevelInfo
    ownership: list[OwnershipPeriodRead]
    sections: dict[str, Any] = Field(default_factory=dict)


class CustomerFileAsOf(CustomerFile):
    """The full file as it was at `as_of`. The level is null (and `level_info` too) before
    the time an imported customer's level is known from (`level_since`); `level_since` and
    `status_since` are the times of the history entries that set them."""

    level: Level | None  # type: ignore[assignment]
    level_since: datetime | None  # type: ignore[assignment]
    level_info: LevelInfo | None  # type: ignore[assignment]
    as_of: datetime


class CustomerCard(BaseModel):
    """The rep's short card: basic facts plus the registered card sections."""

    id: uuid.UUID
    code: str
    name: str
    region: str
    level: Level
    industry: str | None
    address: str | None
    phone: str | None
    location: Location | None = None
    owner_id: uuid.UUID | None
    status: Status
    status_since: datetime
    quality_score: int
    incomplete: bool
    cadence_days: int
    sections: dict[str, Any] = Field(default_factory=dict)


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    at: datetime
    actor_id: str | None
    actor_kind: str
    action: str
    changes: dict[str, Any]
    comment: str | None = None


class ChangeRequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    requested_by: str
    team_id: uuid.UUID | None
    changes: dict[str, Any]
    base_version: int
    reason: str | None
    status: ChangeRequestStatus
    # Who approved, rejected or withdrew it (or cancelled it: the actor of the owner change).
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    created_at: datetime


class Decision(_Input):
    comment: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)] | None = None


class ReleaseBody(_Input):
    reason: Reason


class LostBody(_Input):
    reason: Reason
    # The competitor that won the customer, when known.
    competitor: ShortText | None = None


class ClaimBody(_Input):
    reason: Reason | None = None


class TransferBody(_Input):
    from_owner_id: uuid.UUID
    # null moves them to the pool.
    to_owner_id: uuid.UUID | None = None
    # Omitted: all customers the rep holds.
    customer_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=10_000)
    reason: Reason


class TransferResult(BaseModel):
    moved: int
    customer_ids: list[uuid.UUID]
    from_owner_id: uuid.UUID
    to_owner_id: uuid.UUID | None
    to_team_id: uuid.UUID | None


class LevelProposal(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    region: str
    level: Level
    proposed_level: Level
    # Null for an integration key without `orders:read`: it is the orders' figure.
    purchases_12m: DecimalOut | None
    estimated_potential: DecimalOut | None
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None


class HandoverItem(BaseModel):
    """One custody period of the owner's in the window: the customer, when they held it, how
    it came to them, and, when it left them, when, why, by whose action and to whom (a rep,
    or the pool: `to_pool`) and how (`left_by`: transferred, handover, released, ...)."""

    customer_id: uuid.UUID
    code: str
    name: str
    region: str
    level: Level
    status: Status
    team_id: uuid.UUID | None
    held_from: datetime
    held_until: datetime | None
    came_by: str
    left: bool
    left_by: str | None
    reason: str | None
    by: str | None
    to_owner_id: uuid.UUID | None
    to_team_id: uuid.UUID | None
    to_pool: bool


class HandoverSummary(BaseModel):
    # Customers held at some time in the window; of them, those that left the owner in it
    # (to someone else or the pool) and those still held at its end.
    held: int
    left: int
    still_held: int
    to_pool: int
    to_reps: int


class HandoverReport(BaseModel):
    owner_id: uuid.UUID
    from_: datetime | None = Field(None, serialization_alias="from")
    to: datetime | None
    summary: HandoverSummary
    items: list[HandoverItem]
    next_cursor: str | None = None


class HandoverQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    owner_id: uuid.UUID
    from_: AwareDatetime | None = Field(None, alias="from")
    to: AwareDatetime | None = None
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
