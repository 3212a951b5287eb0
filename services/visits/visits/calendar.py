"""Company days: the company's time zone decides which day a moment belongs to. Pure helpers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def local_date(at: datetime, zone: ZoneInfo) -> date:
    """The company day of a moment."""
    return at.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC moment the company day begins."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the company day, in UTC (23 or 25 hours on a DST change)."""
    return day_start(day, zone), day_start(day + timedelta(days=1), zone)


def range_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of `first`, end of `last`) in UTC."""
    return day_start(first, zone), day_start(last + timedelta(days=1), zone)


def deadline(day: date, hour: int, zone: ZoneInfo) -> datetime:
    """The UTC moment of `hour` o'clock (company wall time) on `day`; 24 is the day's end."""
    if hour >= 24:
        return day_start(day + timedelta(days=1), zone)
    return datetime.combine(day, time(hour), zone).astimezone(UTC)
