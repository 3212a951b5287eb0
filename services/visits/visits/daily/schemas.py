"""The daily sales report's HTTP contract: figures derived from the visit log (never typed),
and what only the rep can tell (typed)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from servicekit.fields import DecimalOut
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from visits.schemas import Comment, Day, Input, LongText


class Attendance(StrEnum):
    present = "present"
    leave = "leave"
    sick = "sick"
    travel = "travel"


class ReportStatus(StrEnum):
    submitted = "submitted"
    signed_off = "signed_off"
    returned = "returned"


class DayReportStatus(StrEnum):
    not_submitted = "not_submitted"
    submitted = "submitted"
    signed_off = "signed_off"
    returned = "returned"


class MissingReason(StrEnum):
    missing = "missing"
    returned = "returned"


Mood = int


class DailyFigures(BaseModel):
    """Derived from the visit log (completed visits checked in that company day), the day's
    approved plan and the complaints the rep raised that day."""

    visits_completed: int
    effective_visits: int
    visits_with_order: int
    order_amount: DecimalOut
    collected_amount: DecimalOut
    complaints_raised: int
    far_check_ins: int
    planned_items: int
    fulfilled_items: int
    # fulfilled_items / planned_items of the day's approved plan (null without one).
    plan_adherence: float | None


class ReportTyped(Input):
    attendance: Attendance = Attendance.present
    competitor_info: LongText | None = None
    customer_feedback: LongText | None = None
    lessons: LongText | None = None
    tomorrow_focus: LongText | None = None
    mood: int | None = Field(default=None, ge=1, le=5)


class ReportCreate(ReportTyped):
    """Submitting the day's report (the figures are frozen into it now)."""

    report_date: Day


class ReportUpdate(Input):
    """A returned report's typed fields, only what is sent."""

    attendance: Attendance | None = None
    competitor_info: LongText | None = None
    customer_feedback: LongText | None = None
    lessons: LongText | None = None
    tomorrow_focus: LongText | None = None
    mood: int | None = Field(default=None, ge=1, le=5)


class SignOffBody(Input):
    comment: Comment | None = None


class ReturnBody(Input):
    comment: Comment = Field(min_length=1)


class DailyReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    # null (and status "not_submitted") for a day the rep has not reported yet.
    id: uuid.UUID | None
    rep_id: uuid.UUID
    team_id: uuid.UUID | None
    report_date: date
    status: DayReportStatus
    attendance: Attendance | None
    competitor_info: str | None
    customer_feedback: str | None
    lessons: str | None
    tomorrow_focus: str | None
    mood: int | None
    figures: DailyFigures
    # Whether the figures are the ones frozen at submission, or computed now.
    figures_frozen: bool
    submitted_at: datetime | None
    decided_at: datetime | None
    decided_by: str | None
    comment: str | None
    version: int
    created_at: datetime | None
    updated_at: datetime | None


class ReportListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rep_id: uuid.UUID | None = None
    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    status: ReportStatus | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class DayQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rep_id: uuid.UUID | None = None


class MissingQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: Day | None = None
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None


class MissingReport(BaseModel):
    rep_id: uuid.UUID
    rep_name: str | None
    team_id: uuid.UUID | None
    # "missing": nothing submitted; "returned": sent back and not submitted again.
    status: MissingReason


class MissingPage(BaseModel):
    items: list[MissingReport]
    next_cursor: str | None
    date: date
    working_day: bool
    deadline: datetime
    # Before the deadline nobody is missing yet: the list is empty until then.
    deadline_passed: bool
