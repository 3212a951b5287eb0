"""Identity's lifespan hook: the Authenticator, the first admin, the events key, the listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.config import Settings
from gateway.identity.authn import Authenticator
from gateway.identity.service import bootstrap, purge
from servicekit.db import Database

log = logging.getLogger("gateway.identity")
PURGE_EVERY_SECONDS = 900.0


async def _housekeeping(db: Database, settings: Settings) -> None:
    while True:
        try:
            await purge(db, settings)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("identity housekeeping failed (%s)", type(exc).__name__)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


@asynccontextmanager
async def identity_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings
    if not isinstance(settings, Settings):
        settings = Settings.model_validate(settings.model_dump())
    authenticator = Authenticator(app.state.db, settings)
    app.state.authenticator = authenticator
    await bootstrap(app.state.db, authenticator)
    await authenticator.start()
    housekeeping = asyncio.create_task(_housekeeping(app.state.db, settings))
    try:
        yield
    finally:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await housekeeping
        await authenticator.stop()
