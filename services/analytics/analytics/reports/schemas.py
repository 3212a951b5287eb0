"""The reports' API contract: the weekly team report and the periodic summary."""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from analytics.alerts.schemas import AlertRead
from analytics.kpis.schemas import FigureRead, PeriodRead
from analytics.scopes import ScopeKind
from servicekit.fields import DecimalOut
from servicekit.inputs import Date


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class WeeklyQuery(_Input):
    team_id: uuid.UUID
    week: Annotated[
        str, Field(max_length=16, description="the ISO week, Monday to Sunday: 2026-W47")
    ]


class SummaryQuery(_Input):
    scope: ScopeKind
    scope_id: Annotated[
        str | None,
        Field(description="the rep's or team's id, the region's name; none for the company"),
    ] = None
    from_: Annotated[Date, Field(alias="from", description="the first day (company time)")]
    to: Annotated[Date, Field(description="the day after the last")]


# --- the weekly report ----------------------------------------------------------------------


class TargetProgress(BaseModel):
    """A target and its actual: in the weekly report, a target of the month holding the week
    (the month of its Thursday) with the month's actual up to the week's end; in the summary,
    a target of exactly the period."""

    target_id: uuid.UUID
    target_metric: str
    period: str
    actual: DecimalOut | int
    target: DecimalOut
    completion: DecimalOut | None


class WeeklyFigures(BaseModel):
    figures: dict[str, FigureRead]
    target_completion: list[TargetProgress]
    complaints_opened: int
    complaints_resolved: int
    next_week_plan_items: int
    abnormal_customers: int = Field(
        description="alerts about the scope's customers raised in the week"
    )


class RepWeek(WeeklyFigures):
    rep_id: uuid.UUID
    rep_name: str | None
    team_id: uuid.UUID | None


class RemarkSource(StrEnum):
    visit = "visit"
    daily_report = "daily_report"


class Remark(BaseModel):
    source: RemarkSource
    id: uuid.UUID
    day: date
    rep_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    customer_name: str | None
    text: str


class CaseStep(BaseModel):
    id: uuid.UUID
    day: date
    rep_id: uuid.UUID | None
    customer_id: uuid.UUID | None
    customer_name: str | None
    category: str | None
    severity: str | None
    status: str | None
    description: str | None


class Complaints(BaseModel):
    opened: list[CaseStep]
    resolved: list[CaseStep]


class PlannedItem(BaseModel):
    id: uuid.UUID
    plan_id: uuid.UUID
    day: date
    rep_id: uuid.UUID
    customer_id: uuid.UUID | None
    customer_code: str | None
    customer_name: str | None
    purpose: str | None


class WeeklyReport(BaseModel):
    team_id: uuid.UUID
    team_name: str | None
    week: PeriodRead
    next_week: PeriodRead
    team: WeeklyFigures
    reps: list[RepWeek]
    competitor_news: list[Remark]
    customer_feedback: list[Remark]
    complaints: Complaints
    next_week_plan: list[PlannedItem]
    abnormal_customers: list[AlertRead] = Field(
        description="the insight alerts about the team's customers raised in the week, oldest first"
    )


# --- the periodic summary -------------------------------------------------------------------


class ChangeUnit(StrEnum):
    points = "points"
    per_cent = "per_cent"


class Compared(BaseModel):
    """A figure beside the period before (and its target, where one is set): the change in
    percentage points for a rate, in per cent for an amount or a count."""

    metric: str
    value: DecimalOut | int | None
    previous: DecimalOut | int | None
    change: DecimalOut | None
    change_unit: ChangeUnit
    target: DecimalOut | None = None
    target_completion: DecimalOut | None = None


class FunnelStep(BaseModel):
    step: str
    count: Compared
    conversion_rate: Compared | None


class FunnelSummary(BaseModel):
    steps: list[FunnelStep]
    conversion_rate: Compared
    invalid_rate: Compared


class StageSummary(BaseModel):
    stage: str
    left_forward: int
    left: int
    conversion_rate: Compared


class StagesSummary(BaseModel):
    stages: list[StageSummary]
    bottleneck: Annotated[
        str | None,
        Field(description="the stage with the lowest forward conversion in the period"),
    ]


class Summary(BaseModel):
    scope: str
    scope_id: str | None
    period: PeriodRead
    previous_period: PeriodRead
    funnel: FunnelSummary
    stage_conversion: StagesSummary
    figures: dict[str, Compared]
    targets: list[TargetProgress]
