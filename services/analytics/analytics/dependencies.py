"""Shared objects of the app's features, read from `app.state` (wired in main.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from analytics.config import Settings
from analytics.kpis.measures import Context


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _context(request: Request) -> Context:
    return Context.of(request.app.state.settings, request.app.state.directory)


AppSettings = Annotated[Settings, Depends(_settings)]
KpiContext = Annotated[Context, Depends(_context)]
