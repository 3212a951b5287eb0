"""The assignment rules' HTTP contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.fields import NO_NUL

Strategy = Literal["round_robin", "least_load"]
Match = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NO_NUL
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignmentRuleCreate(_Input):
    """Region and/or industry (null: any) -> team; rules are tried by position, first match
    wins; within the team (and its sub-teams) the rep is chosen by `strategy`."""

    position: int | None = Field(default=None, ge=0, le=1_000_000)
    region: Match | None = None
    industry: Match | None = None
    team_id: uuid.UUID
    strategy: Strategy = "round_robin"
    active: bool = True


class AssignmentRuleUpdate(_Input):
    position: int | None = Field(default=None, ge=0, le=1_000_000)
    region: Match | None = None
    industry: Match | None = None
    team_id: uuid.UUID | None = None
    strategy: Strategy | None = None
    active: bool | None = None


class AssignmentRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    position: int
    region: str | None
    industry: str | None
    team_id: uuid.UUID
    strategy: Strategy
    active: bool
    last_owner_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime


class AssignmentRules(BaseModel):
    items: list[AssignmentRuleRead]
    next_cursor: str | None = None
