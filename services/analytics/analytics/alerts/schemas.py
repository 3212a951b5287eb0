"""The alerts' API contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from analytics.alerts.rules import Rule, SubjectKind
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    dismissed = "dismissed"
    resolved = "resolved"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AlertListQuery(_Input):
    status: AlertStatus | None = None
    rule: Rule | None = None
    rep_id: uuid.UUID | None = None
    team_id: Annotated[uuid.UUID | None, Field(description="the team and every team below it")] = (
        None
    )
    subject_kind: SubjectKind | None = None
    customer_id: uuid.UUID | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class Decision(_Input):
    note: Annotated[str, Field(min_length=1, max_length=2000, description="why")]

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={"examples": [{"note": "Talked to the rep; visits planned"}]},
    )


class AlertRead(BaseModel):
    id: uuid.UUID
    rule: Rule
    subject_kind: SubjectKind
    subject_id: str
    rep_id: uuid.UUID | None
    team_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    region: str | None
    figures: dict[str, Any] = Field(description="the figures that triggered it")
    status: AlertStatus
    raised_at: datetime
    resolved_at: datetime | None
    decision: AlertStatus | None
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    version: int


class RuleCount(BaseModel):
    raised: int
    resolved: int


class Evaluation(BaseModel):
    rules: dict[str, RuleCount]


class RuleRead(BaseModel):
    rule: Rule
    subject_kind: SubjectKind
    team_id: uuid.UUID | None = Field(description="null: the company's rule")
    enabled: bool
    thresholds: dict[str, Any]
    version: int


class RulePut(_Input):
    enabled: bool | None = None
    thresholds: dict[str, Any] | None = Field(
        default=None, description="the thresholds to change (the others stay)"
    )


class RuleTeamQuery(_Input):
    team_id: Annotated[
        uuid.UUID | None, Field(description="the team whose override is set; none: the company")
    ] = None
