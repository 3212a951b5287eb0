"""The contract of market reports and complaints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from visits.schemas import Category, Comment, Day, Input, Required


class Severity(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


class CaseStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"


class CaseCreate(Input):
    # Whose case: the caller's own unless an admin or an API key names the rep (a key's
    # complaint without one belongs to the customer's owner).
    rep_id: uuid.UUID | None = None
    # Raised from a visit (its customer is the case's unless another is named) or on its own.
    visit_id: uuid.UUID | None = None
    # Required for a complaint (or given through its visit).
    customer_id: uuid.UUID | None = None
    category: Category
    severity: Severity
    description: Required


class ResolveBody(Input):
    resolution: Required


class ReopenBody(Input):
    reason: Required


class NoteBody(Input):
    note: Comment | None = None


class CaseRead(BaseModel):
    id: uuid.UUID
    rep_id: uuid.UUID
    team_id: uuid.UUID | None
    visit_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    customer_code: str | None
    customer_name: str | None
    category: str
    severity: Severity
    description: str
    status: CaseStatus
    raised_by: str
    raised_on: date
    resolution: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    reopen_count: int
    # Seconds since it was raised (until closed), and from raised to its current resolution.
    age_seconds: int
    time_to_resolution_seconds: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class CaseChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor_id: str
    from_status: CaseStatus | None
    to_status: CaseStatus
    note: str | None


class CaseListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rep_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    status: CaseStatus | None = None
    severity: Severity | None = None
    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
