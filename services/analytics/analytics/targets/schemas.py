"""The targets' API contract."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class TargetMetric(StrEnum):
    sales_amount = "sales_amount"
    gross_profit = "gross_profit"
    new_customers = "new_customers"
    collections = "collections"
    visits = "visits"


class TargetScope(StrEnum):
    company = "company"
    team = "team"
    rep = "rep"
    region = "region"
    product = "product"


class WarningCode(StrEnum):
    growth_above_factor = "growth_above_factor"
    below_last_year = "below_last_year"


class DecomposeInto(StrEnum):
    teams = "teams"
    reps = "reps"
    quarters = "quarters"
    months = "months"


class DecomposeMethod(StrEnum):
    even = "even"
    weights = "weights"
    last_year = "last_year"


Value = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Note = Annotated[str, Field(min_length=1, max_length=2000)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TargetCreate(_Input):
    metric: TargetMetric
    period: Annotated[str, Field(description="2026, 2026-Q4 or 2026-11", examples=["2026-Q4"])]
    scope: TargetScope
    scope_id: Annotated[
        str | None,
        Field(description="the rep's or team's id, a region's or product's name; none: company"),
    ] = None
    value: Value
    note: Note | None = None


class TargetUpdate(_Input):
    value: Value | None = None
    note: Note | None = None


class TargetListQuery(_Input):
    metric: TargetMetric | None = None
    scope: TargetScope | None = None
    scope_id: str | None = None
    period: str | None = None
    parent_id: uuid.UUID | None = None


class TargetRead(BaseModel):
    id: uuid.UUID
    metric: TargetMetric
    period: str
    from_: date = Field(alias="from")
    to: date
    scope: TargetScope
    scope_id: str | None
    parent_id: uuid.UUID | None
    method: str
    value: Decimal
    note: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(populate_by_name=True)


class TargetWarning(BaseModel):
    code: WarningCode
    detail: str
    last_year: Decimal
    ratio: Decimal


class TargetCheck(BaseModel):
    target_id: uuid.UUID
    last_year_period: str
    last_year_actual: Decimal
    warnings: list[TargetWarning]


class TargetAnswer(TargetRead):
    warnings: list[TargetWarning]


class Decompose(_Input):
    into: DecomposeInto
    method: DecomposeMethod = DecomposeMethod.even
    weights: Annotated[
        dict[str, Annotated[Decimal, Field(ge=0)]] | None,
        Field(description="child → weight: a team's or rep's id, or a period (2026-Q1, 2026-01)"),
    ] = None


class Decomposition(BaseModel):
    parent: TargetRead
    children: list[TargetAnswer]
