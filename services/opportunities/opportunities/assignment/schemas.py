"""The assignment rules' HTTP contract."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from servicekit.fields import NO_NUL, Omittable


class Strategy(StrEnum):
    """How a rep of the rule's team is chosen: in turn, or the one with the fewest open
    leads."""

    round_robin = "round_robin"
    least_load = "least_load"


Match = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NO_NUL
]
Position = Annotated[int, Field(ge=0, le=1_000_000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AssignmentRuleCreate(_Input):
    """Region and/or industry (null: any) -> team; rules are tried by position, first match
    wins; within the team (and its sub-teams) the rep is chosen by `strategy`."""

    position: Position | None = None
    region: Match | None = None
    industry: Match | None = None
    team_id: uuid.UUID
    strategy: Strategy = Strategy.round_robin
    active: bool = True


class AssignmentRuleUpdate(_Input):
    position: Omittable[Position] = None
    region: Match | None = None
    industry: Match | None = None
    team_id: Omittable[uuid.UUID] = None
    strategy: Omittable[Strategy] = None
    active: Omittable[bool] = None


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
