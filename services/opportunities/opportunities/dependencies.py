"""Dependencies every feature of the app uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from opportunities.config import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# The app's settings (sources, stages, nurture days, ...).
SettingsDep = Annotated[Settings, Depends(_settings)]
