"""Periods, company days, and the split of a target's value: the pure parts the figures and
targets stand on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analytics.periods import Calendar, Period, children, parse_named, split, top_count
from analytics.targets.decompose import split as split_value


def test_named_periods_and_the_period_before() -> None:
    month = parse_named("2026-11")
    assert (month.start, month.end, month.label) == (
        date(2026, 11, 1),
        date(2026, 12, 1),
        "2026-11",
    )
    assert month.previous() == parse_named("2026-10")
    week = parse_named("2026-W47")
    assert (week.start, week.end) == (date(2026, 11, 16), date(2026, 11, 23))
    assert week.previous().label == "2026-W46"
    assert parse_named("2026-W01").previous().label == "2025-W52"
    quarter = parse_named("2026-Q4")
    assert (quarter.start, quarter.end) == (date(2026, 10, 1), date(2027, 1, 1))
    assert quarter.previous().label == "2026-Q3"
    assert parse_named("2026").previous().label == "2025"
    assert parse_named("2026-Q1").year_before().label == "2025-Q1"
    assert [p.label for p in children(parse_named("2026"))] == [
        "2026-Q1",
        "2026-Q2",
        "2026-Q3",
        "2026-Q4",
    ]
    assert [p.label for p in children(quarter)] == ["2026-10", "2026-11", "2026-12"]
    for bad in ("2026-13", "2026-W54", "2026-Q5", "november", "26"):
        with pytest.raises(ValueError):
            parse_named(bad)


def test_a_range_cut_into_weeks_keeps_partial_ends() -> None:
    pieces = split(Period(date(2026, 11, 1), date(2026, 12, 1)), "week")
    assert [(p.start.day, p.end.day if p.end.month == 11 else 31) for p in pieces] == [
        (1, 2),
        (2, 9),
        (9, 16),
        (16, 23),
        (23, 30),
        (30, 31),
    ]
    assert [p.kind for p in pieces] == [None, "week", "week", "week", "week", None]


def test_company_days_follow_the_time_zone_and_the_working_week() -> None:
    shanghai = Calendar(ZoneInfo("Asia/Shanghai"), holidays=frozenset({date(2026, 11, 11)}))
    late = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)
    assert shanghai.day(late) == date(2026, 12, 1)
    assert Calendar(ZoneInfo("UTC")).day(late) == date(2026, 11, 30)
    november = parse_named("2026-11")
    assert Calendar(ZoneInfo("UTC")).working_days(november) == 21
    assert shanghai.working_days(november) == 20  # a Wednesday holiday
    six_days = Calendar(ZoneInfo("UTC"), frozenset({1, 2, 3, 4, 5, 6}))
    assert six_days.working_days(november) == 25


def test_the_top_share_counts_at_least_one_customer() -> None:
    assert [top_count(n, Decimal("0.2")) for n in (0, 1, 4, 5, 6, 10, 11)] == [0, 1, 1, 1, 2, 2, 3]


def test_a_split_sums_to_the_parent_to_the_cent() -> None:
    shares = split_value(Decimal("100.00"), [Decimal(1)] * 3, Decimal("0.01"))
    assert shares == [Decimal("33.34"), Decimal("33.33"), Decimal("33.33")]
    weighted = split_value(
        Decimal("1000.00"), [Decimal(1), Decimal(2), Decimal(4)], Decimal("0.01")
    )
    assert sum(weighted) == Decimal("1000.00")
    # The remainder goes to the largest share.
    assert weighted == [Decimal("142.85"), Decimal("285.71"), Decimal("571.44")]
    assert split_value(Decimal(10), [Decimal(1)] * 3, Decimal(1)) == [4, 3, 3]
    with pytest.raises(ValueError):
        split_value(Decimal(10), [Decimal(0), Decimal(0)], Decimal(1))
