"""Periods and company days. Pure helpers: no session, no settings object.

A period is `[start, end)` in company days (the company's time zone decides which day a moment
belongs to). The dashboard's periods are named: `2026` (a year), `2026-Q4` (a quarter),
`2026-11` (a month), `2026-W47` (an ISO week, Monday to Sunday); `/kpis` takes any `[from, to)`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

Kind = Literal["week", "month", "quarter", "year"]
KINDS: tuple[Kind, ...] = ("week", "month", "quarter", "year")
# Targets are set per year, quarter or month.
TARGET_KINDS: tuple[Kind, ...] = ("year", "quarter", "month")

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    """`[start, end)` in company days; `kind` when it is a named period (week ... year)."""

    start: date
    end: date
    kind: Kind | None = None

    @property
    def label(self) -> str:
        if self.kind == "year":
            return f"{self.start.year}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def weeks(self) -> Decimal:
        """Its length in weeks (a month of 30 days is 30/7 weeks)."""
        return Decimal(self.days) / Decimal(7)

    def previous(self) -> Period:
        """The same period before: the week, month, quarter or year before; for any other
        range, the range of the same length that ends where this one starts."""
        if self.kind is None:
            return Period(self.start - timedelta(days=self.days), self.start)
        return containing(self.kind, self.start - timedelta(days=1))

    def year_before(self) -> Period:
        """The same period one year earlier (a week: the same ISO week number)."""
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            return parse_named(f"{year - 1}-W{min(week, _iso_weeks(year - 1)):02d}")
        return Period(_years_back(self.start), _years_back(self.end), self.kind)


def _years_back(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _iso_weeks(year: int) -> int:
    return date(year, 12, 28).isocalendar()[1]


def start_of(kind: Kind, day: date) -> date:
    """The first day of the `kind` period holding `day`."""
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return date(day.year, 1, 1)


def _after(kind: Kind, start: date) -> date:
    if kind == "week":
        return start + timedelta(days=7)
    if kind == "year":
        return date(start.year + 1, 1, 1)
    months = 1 if kind == "month" else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def containing(kind: Kind, day: date) -> Period:
    start = start_of(kind, day)
    return Period(start, _after(kind, start), kind)


def parse_named(text: str) -> Period:
    """`2026`, `2026-Q4`, `2026-11` or `2026-W47`; ValueError naming the forms otherwise."""
    text = text.strip()
    if m := _YEAR.match(text):
        return containing("year", date(int(m[1]), 1, 1))
    if m := _QUARTER.match(text):
        return containing("quarter", date(int(m[1]), 3 * int(m[2]) - 2, 1))
    if m := _MONTH.match(text):
        if not 1 <= int(m[2]) <= 12:
            raise ValueError("the month must be 01 to 12")
        return containing("month", date(int(m[1]), int(m[2]), 1))
    if m := _WEEK.match(text):
        year, week = int(m[1]), int(m[2])
        if not 1 <= week <= _iso_weeks(year):
            raise ValueError(f"{year} has ISO weeks 01 to {_iso_weeks(year)}")
        return containing("week", date.fromisocalendar(year, week, 1))
    raise ValueError("a period is written 2026, 2026-Q4, 2026-11 or 2026-W47")


def children(period: Period) -> list[Period]:
    """One level down in time: a year's quarters, a quarter's months."""
    if period.kind == "year":
        return [containing("quarter", date(period.start.year, m, 1)) for m in (1, 4, 7, 10)]
    if period.kind == "quarter":
        return [
            containing("month", date(period.start.year, period.start.month + i, 1))
            for i in range(3)
        ]
    return []


def split(period: Period, by: Literal["day", "week", "month"]) -> list[Period]:
    """The period cut at day, week or month boundaries (the first and last piece may be
    partial)."""
    pieces: list[Period] = []
    at = period.start
    while at < period.end:
        if by == "day":
            nxt = at + timedelta(days=1)
            kind: Kind | None = None
        else:
            whole = containing(by, at)
            nxt = whole.end
            kind = by if whole.start == at and whole.end <= period.end else None
        end = min(nxt, period.end)
        pieces.append(Period(at, end, kind))
        at = end
    return pieces


def starts(day: date) -> Iterator[tuple[Kind, date]]:
    """(kind, start) of every named period holding `day`."""
    for kind in KINDS:
        yield kind, start_of(kind, day)


@dataclass(frozen=True, slots=True)
class Calendar:
    """The company's days: its time zone, its working weekdays (ISO, Monday = 1) and its
    holidays."""

    zone: ZoneInfo
    working_weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    holidays: frozenset[date] = frozenset()

    def day(self, at: datetime) -> date:
        """The company day of a moment."""
        return at.astimezone(self.zone).date()

    def start(self, day: date) -> datetime:
        """The UTC moment the company day begins."""
        return datetime.combine(day, time(0), self.zone).astimezone(UTC)

    def working_days(self, period: Period) -> int:
        days = 0
        at = period.start
        while at < period.end:
            if at.isoweekday() in self.working_weekdays and at not in self.holidays:
                days += 1
            at += timedelta(days=1)
        return days


def top_count(customers: int, share: Decimal) -> int:
    """How many customers make the top `share` of `customers` (at least one when any)."""
    return min(customers, math.ceil(Decimal(customers) * share)) if customers else 0


def distinct_sorted(values: Iterable[date]) -> list[date]:
    return sorted(set(values))
