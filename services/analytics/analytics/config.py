"""Fieldforce analytics settings (env prefix `ANALYTICS_`; `DATABASE_URL` is shared)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from analytics.periods import Calendar
from servicekit.settings import KitSettings

Weekday = Annotated[int, Field(ge=1, le=7)]


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore")

    app_name: str = "analytics"
    # The company's time zone (IANA name): which day a moment belongs to, and so which period.
    # Days are fixed when a fact is applied: after changing it, replay the feeds.
    time_zone: str = "UTC"
    # Working days (ISO: Monday = 1 ... Sunday = 7) and holidays, for avg_daily_visits.
    working_days: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    holidays: list[date] = Field(default_factory=list)
    # customer_share's "active": at least one order within this many days before P's end.
    active_window_days: Annotated[int, Field(ge=1, le=3660)] = 365
    # revenue_concentration: the share of customers that makes "the top".
    top_customer_share: Annotated[Decimal, Field(gt=0, le=1)] = Decimal("0.2")
    # The reasonableness check of a target: growth over last year's actual above this factor,
    # or a target below last year's actual by more than this share, comes back with a warning.
    target_growth_factor: Annotated[Decimal, Field(gt=1)] = Decimal("1.5")
    target_decline_share: Annotated[Decimal, Field(gt=0, lt=1)] = Decimal("0.3")
    # How often the alerts' daily pass evaluates every rule over every subject (seconds).
    alerts_pass_seconds: Annotated[float, Field(gt=0)] = 86400

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as Asia/Shanghai)"
            ) from None
        return value

    @cached_property
    def calendar(self) -> Calendar:
        return Calendar(
            ZoneInfo(self.time_zone), frozenset(self.working_days), frozenset(self.holidays)
        )
