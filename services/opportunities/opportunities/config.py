"""Fieldforce opportunities settings (env prefix `OPPORTUNITIES_`; `DATABASE_URL` is shared).

Lists and the stage table are JSON in the environment, e.g.
`OPPORTUNITIES_LEAD_SOURCES='["web_form", "trade_show", "webinar"]'`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings

Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
CLOSED_STAGES = ("won", "lost")


class StageSetting(BaseModel):
    """One stage of the pipeline: its default win probability and how long it usually takes
    (the stalled list's fallback until enough history exists; none for won and lost)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Key
    probability: int = Field(ge=0, le=100)
    expected_days: int | None = Field(default=None, ge=1, le=3650)


DEFAULT_STAGES = (
    StageSetting(name="prospecting", probability=10, expected_days=14),
    StageSetting(name="needs_analysis", probability=20, expected_days=14),
    StageSetting(name="solution", probability=40, expected_days=21),
    StageSetting(name="quote_negotiation", probability=60, expected_days=14),
    StageSetting(name="contract", probability=80, expected_days=10),
    StageSetting(name="won", probability=100),
    StageSetting(name="lost", probability=0),
)
DEFAULT_SOURCES = (
    "web_form",
    "trade_show",
    "referral",
    "telemarketing",
    "advertising",
    "partner",
    "other",
)


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="OPPORTUNITIES_", extra="ignore")

    app_name: str = "opportunities"
    # Where leads come from; a lead's `source` must be one of these.
    lead_sources: tuple[Key, ...] = DEFAULT_SOURCES
    # The pipeline, in order: open stages, then won and lost.
    stages: tuple[StageSetting, ...] = DEFAULT_STAGES
    # A nurtured lead's next touch, this many days after it went to nurture.
    nurture_days: int = Field(default=30, ge=1, le=365)
    # The stalled list: a stage's (or the whole cycle's) usual time is this percentile of the
    # team's past times once it has at least `stall_min_samples` of them; the stage's expected
    # days (the sum of the open stages' for the cycle) before that.
    stall_percentile: float = Field(default=0.8, gt=0, lt=1)
    stall_min_samples: int = Field(default=20, ge=1)
    # How often the learned usual times are recomputed.
    norms_refresh_seconds: float = Field(default=900.0, gt=0)
    # A move or a conversion recorded after the fact may say when it happened, at most this
    # many days back (history keeps when it was recorded too).
    max_backdate_days: int = Field(default=90, ge=0, le=3650)
    # Calibration: the score bands win rates are given for (equal widths of the model's range).
    calibration_bands: int = Field(default=5, ge=2, le=20)

    @field_validator("stages")
    @classmethod
    def _stages(cls, stages: tuple[StageSetting, ...]) -> tuple[StageSetting, ...]:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        if tuple(names[-2:]) != CLOSED_STAGES:
            raise ValueError("the last two stages must be won and lost")
        open_ = stages[:-2]
        if not open_:
            raise ValueError("at least one open stage is needed")
        if any(s.expected_days is None for s in open_):
            raise ValueError("every open stage needs expected_days")
        return stages

    @field_validator("lead_sources")
    @classmethod
    def _sources(cls, sources: tuple[str, ...]) -> tuple[str, ...]:
        if not sources or len(set(sources)) != len(sources):
            raise ValueError("give at least one source, each once")
        return sources

    @property
    def open_stages(self) -> tuple[StageSetting, ...]:
        return self.stages[:-2]

    def stage(self, name: str) -> StageSetting | None:
        return next((s for s in self.stages if s.name == name), None)

    def stage_order(self, name: str) -> int:
        return next(i for i, s in enumerate(self.stages) if s.name == name)
