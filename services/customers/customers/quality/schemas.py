"""Contracts of data quality, merge, import and export."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from customers.archive.schemas import Level


class DataQuality(BaseModel):
    score: int
    missing_required: list[str]
    missing_recommended: list[str]
    # True when the record was not updated within `scoring.FRESH_DAYS` (it then loses
    # freshness points).
    stale: bool


class DataQualityItem(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    region: str
    level: Level
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    updated_at: datetime
    data_quality: DataQuality


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
