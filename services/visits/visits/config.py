"""Fieldforce visits settings (env prefix `VISITS_`; `DATABASE_URL` is shared)."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings

Weekday = Annotated[int, Field(ge=1, le=7)]


class Settings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="VISITS_", extra="ignore")

    app_name: str = "visits"
    # The company's time zone (IANA name): what "a day" is for plans, visits and daily reports.
    time_zone: str = "UTC"
    # Daily reports are due by this hour of their day (company time); after it, the missing list
    # names the reps without one.
    daily_report_deadline_hour: Annotated[int, Field(ge=0, le=24)] = 20
    # The working days (ISO: Monday = 1 ... Sunday = 7), for the missing-reports list.
    working_days: list[Weekday] = Field(default_factory=lambda: [1, 2, 3, 4, 5])
    # A check-in farther than this from the customer's point is flagged, never refused.
    far_from_customer_m: Annotated[float, Field(gt=0, le=1_000_000)] = 500.0
    # Clock skew allowed between a rep's phone and the server before a visit is "in the future".
    future_tolerance_seconds: Annotated[int, Field(ge=0, le=86_400)] = 300

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
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)
