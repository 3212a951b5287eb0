"""The follow-up due list's HTTP contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from visits.schemas import Day


class FollowUpQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rep_id: uuid.UUID | None = None
    # Customers due before this company day (default: due today or earlier, i.e. tomorrow).
    due_before: Day | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class FollowUp(BaseModel):
    customer_id: uuid.UUID
    customer_code: str
    customer_name: str
    level: str
    region: str
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    cadence_days: int
    # The last completed visit of any kind, and the last effective one (what the cadence reads).
    last_visit_at: datetime | None
    last_effective_on: date | None
    never_visited: bool
    # last_effective_on + cadence_days (null when never visited: due from the start).
    due_on: date | None
    days_overdue: int | None
