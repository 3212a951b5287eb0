"""Source effectiveness and costs: the HTTP contract."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from servicekit.fields import NO_NUL, DecimalOut, DecimalString
from servicekit.inputs import Date

Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
Money = Annotated[Decimal, DecimalString(digits=16)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), NO_NUL]


class CostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money
    note: Note | None = None


class CostRead(BaseModel):
    source: str
    month: str
    amount: DecimalOut
    note: str | None
    updated_at: datetime
    updated_by: str | None


class CostPage(BaseModel):
    items: list[CostRead]
    next_cursor: str | None = None


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Date = Field(alias="from", description="leads received on or after this day")
    to: Date = Field(description="... and before this day")

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.from_ >= self.to:
            raise ValueError("'from' must be before 'to'")
        if (self.to - self.from_).days > 3660:
            raise ValueError("the period may span ten years at most")
        return self


class SourceFigures(BaseModel):
    source: str
    leads: int
    invalid: int
    invalid_rate: float | None
    qualified: int
    contacted: int
    converted: int
    won: int
    won_amount: DecimalOut
    median_days_to_won: float | None
    # What the source cost in the months of the period (recorded months only), and per won
    # opportunity; null when nothing was recorded, or for a caller who sees part of the leads.
    cost: DecimalOut | None
    cost_per_won: DecimalOut | None


class Effectiveness(BaseModel):
    period_from: date
    period_to: date
    sources: list[SourceFigures]


class Sources(BaseModel):
    items: list[str]
    next_cursor: str | None = None
