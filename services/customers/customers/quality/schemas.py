"""Contracts of data quality, merge, import and export."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from customers.archive.schemas import Level


class DataQuality(BaseModel):
    """A record's completeness by the settings (`data_quality`): its score, whether it counts
    as incomplete (a required field missing, or under the threshold), what it misses, and
    whether its content was changed within `fresh_days` (`stale` when not)."""

    score: int
    incomplete: bool
    threshold: int
    missing_required: list[str]
    missing_recommended: list[str]
    stale: bool
    content_updated_at: datetime


class DataQualityItem(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    region: str
    level: Level
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    updated_at: datetime
    # None until the service computed it (a record written outside the service).
    data_quality: DataQuality | None


class DataQualityPage(BaseModel):
    items: list[DataQualityItem]
    next_cursor: str | None = None


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_id: uuid.UUID


class MergeResult(BaseModel):
    survivor_id: uuid.UUID
    duplicate_id: uuid.UUID
    contacts_moved: int
    orders_moved: int
    payments_moved: int
    # Fields the survivor lacked and took from the duplicate.
    filled_fields: list[str]
    version: int


class ImportOutcomeKind(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    error = "error"


class ImportOutcome(BaseModel):
    row: int
    outcome: ImportOutcomeKind
    id: uuid.UUID | None = None
    error: str | None = None


class ImportResult(BaseModel):
    results: list[ImportOutcome]
    created: int
    updated: int
    unchanged: int
    errors: int


class DuplicateCandidate(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    region: str
    owner_id: uuid.UUID | None
    status: str
    matched_on: list[str]


class DuplicateMatch(StrEnum):
    email = "email"
    name = "name"
    phone = "phone"


class DuplicatePair(BaseModel):
    customers: list[DuplicateCandidate]
    matched_on: list[DuplicateMatch]


class DuplicatePairsPage(BaseModel):
    items: list[DuplicatePair]
    next_cursor: str | None = None
