"""The scoring models' HTTP contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from opportunities.scoring.rules import max_points
from servicekit.fields import NO_NUL, Omittable
from servicekit.inputs import Date

Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100), NO_NUL]
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NO_NUL
]


class ModelStatus(StrEnum):
    """A model's life: a draft becomes the active model (the one that decides) or a
    challenger (scored beside it); a replaced or stopped model is retired."""

    draft = "draft"
    active = "active"
    challenger = "challenger"
    retired = "retired"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptionIn(_Input):
    value: Key
    label: Label | None = None
    points: int = Field(ge=0, le=1000)


class CriterionIn(_Input):
    key: Key
    label: Label | None = None
    options: list[OptionIn] = Field(min_length=1, max_length=20)

    @field_validator("options")
    @classmethod
    def _unique_values(cls, options: list[OptionIn]) -> list[OptionIn]:
        values = [o.value for o in options]
        if len(set(values)) != len(values):
            raise ValueError("option values must be unique within a criterion")
        return options


def _check_criteria(criteria: list[CriterionIn]) -> list[CriterionIn]:
    keys = [c.key for c in criteria]
    if len(set(keys)) != len(keys):
        raise ValueError("criterion keys must be unique")
    return criteria


class ScoringModelCreate(_Input):
    name: Name
    criteria: list[CriterionIn] = Field(min_length=1, max_length=30)
    threshold: int = Field(ge=0)

    @field_validator("criteria")
    @classmethod
    def _unique_keys(cls, criteria: list[CriterionIn]) -> list[CriterionIn]:
        return _check_criteria(criteria)

    @model_validator(mode="after")
    def _reachable(self) -> ScoringModelCreate:
        top = max_points([c.model_dump() for c in self.criteria])
        if self.threshold > top:
            raise ValueError(f"threshold: above the most points the criteria give ({top})")
        return self


class ScoringModelUpdate(_Input):
    """Only a draft that never scored a lead changes; a used model is immutable."""

    name: Omittable[Name] = None
    criteria: Omittable[Annotated[list[CriterionIn], Field(min_length=1, max_length=30)]] = None
    threshold: Omittable[Annotated[int, Field(ge=0)]] = None

    @field_validator("criteria")
    @classmethod
    def _unique_keys(cls, criteria: list[CriterionIn] | None) -> list[CriterionIn] | None:
        return None if criteria is None else _check_criteria(criteria)


class OptionRead(BaseModel):
    value: str
    label: str | None = None
    points: int


class CriterionRead(BaseModel):
    key: str
    label: str | None = None
    options: list[OptionRead]


class ScoringModelRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    version: int
    name: str
    criteria: list[CriterionRead]
    threshold: int
    max_points: int
    status: ModelStatus
    used_at: datetime | None
    activated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None


class CriterionScore(BaseModel):
    key: str
    label: str
    value: str | None
    points: int
    max_points: int


class ScoreExplanation(BaseModel):
    """A score, explained: each criterion's points, the model's version and threshold."""

    model_id: uuid.UUID
    version: int
    points: int
    max_points: int
    threshold: int
    qualified: bool
    criteria: list[CriterionScore]


class CalibrationQuery(_Input):
    from_: Date | None = Field(default=None, alias="from", description="closed on or after")
    to: Date | None = Field(default=None, description="closed before")


class Band(BaseModel):
    """Closed opportunities whose lead scored in [low, high) of the model's points."""

    low: int
    high: int
    opportunities: int
    won: int
    win_rate: float | None
    mean_predicted: float | None


class Split(BaseModel):
    opportunities: int
    won: int
    win_rate: float | None


class ModelCalibration(BaseModel):
    model_id: uuid.UUID
    version: int
    status: ModelStatus
    threshold: int
    max_points: int
    opportunities: int
    won: int
    # Mean of (points / max_points - won)^2 over the closed opportunities: 0 is perfect,
    # 0.25 what always saying 50 % scores.
    brier_score: float | None
    bands: list[Band]
    qualified: Split
    not_qualified: Split


class Calibration(BaseModel):
    """The model's calibration on the closed opportunities that came from scored leads,
    beside the active model's on the same history (when it is another one)."""

    period_from: date | None
    period_to: date | None
    models: list[ModelCalibration]
