"""The KPIs' API contract."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from analytics.kpis.definitions import METRICS
from analytics.scopes import ScopeKind

# One member per definition, so that the list is written once (definitions.METRICS).
Metric = StrEnum("Metric", [(m, m) for m in METRICS])  # type: ignore[misc]


class GroupBy(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    rep = "rep"
    team = "team"
    region = "region"


Number = Decimal | int


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)


class KpiQuery(_Input):
    metric: Metric
    scope: ScopeKind
    scope_id: Annotated[
        str | None,
        Field(description="the rep's or team's id, the region's name; none for the company"),
    ] = None
    from_: Annotated[date, Field(alias="from", description="the first day (company time)")]
    to: Annotated[date, Field(description="the day after the last")]
    group_by: GroupBy | None = None
    explain: Annotated[
        bool, Field(description="list the records in the numerator and the denominator")
    ] = False
    limit: Annotated[int, Field(ge=1, le=200, description="explanation page size")] = 50
    numerator_cursor: str | None = None
    denominator_cursor: str | None = None


class DashboardQuery(_Input):
    scope: ScopeKind
    scope_id: str | None = None
    period: Annotated[str, Field(description="2026, 2026-Q4, 2026-11 or 2026-W47")]
    plain: Annotated[
        bool,
        Field(
            description="answer from the fact tables alone, without the rollups (the same "
            "figures, slower: for checking)"
        ),
    ] = False


_NUMBER = (
    'a decimal (money, a rate, an average) as a string with its scale, e.g. "1250.00" or '
    '"0.4286", never a JSON number; a count as an integer'
)


class FigureRead(BaseModel):
    metric: str
    value: Annotated[
        Number | None, Field(description=f"{_NUMBER}; null: a rate with a zero denominator")
    ]
    numerator: Annotated[Number | None, Field(description=_NUMBER)]
    denominator: Annotated[Number | None, Field(description=_NUMBER)]
    details: dict[str, Any] | None = None


class PeriodRead(BaseModel):
    label: str
    from_: date = Field(alias="from")
    to: date


class RecordsPage(BaseModel):
    records: str
    items: list[dict[str, Any]]
    next_cursor: str | None


class Explanation(BaseModel):
    numerator: RecordsPage | None
    denominator: RecordsPage | None


class Group(BaseModel):
    key: str
    label: str | None = None
    from_: date = Field(alias="from")
    to: date
    figure: FigureRead


class KpiAnswer(BaseModel):
    metric: str
    scope: str
    scope_id: str | None
    period: PeriodRead
    figure: FigureRead
    groups: list[Group] | None = None
    explain: Explanation | None = None


class Dashboard(BaseModel):
    scope: str
    scope_id: str | None
    period: PeriodRead
    previous_period: PeriodRead
    figures: dict[str, FigureRead]
    previous: dict[str, FigureRead]
