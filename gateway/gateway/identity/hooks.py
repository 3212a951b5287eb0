"""Identity's lifespan hook: the Authenticator, the first admin, the events key, the listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.config import Settings
from gateway.identity.authn import Authenticator
from gateway.identity.service import bootstrap


@asynccontextmanager
async def identity_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings
    if not isinstance(settings, Settings):
        settings = Settings.model_validate(settings.model_dump())
    authenticator = Authenticator(app.state.db, settings)
    app.state.authenticator = authenticator
    await bootstrap(app.state.db, authenticator)
    await authenticator.start()
    try:
        yield
    finally:
        await authenticator.stop()
