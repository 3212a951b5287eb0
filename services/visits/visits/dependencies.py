"""Dependencies every feature shares: the app's settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from visits.config import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]
