"""The lifespan hook that keeps the stalled list's usual times learned."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from opportunities.config import Settings
from opportunities.pipeline.service import refresh_norms
from servicekit.clock import Clock
from servicekit.db import Database

log = logging.getLogger("opportunities.pipeline")


async def _learn(app: FastAPI) -> None:
    db: Database = app.state.db
    settings: Settings = app.state.settings
    clock: Clock = app.state.clock
    while True:
        try:
            async with db.session() as session:
                learned, moved = await refresh_norms(session, settings)
            log.info("usual times learned: %d norms, %d opportunities rescheduled", learned, moved)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("usual times not learned this time: %s", exc)
        await clock.sleep(settings.norms_refresh_seconds)


@contextlib.asynccontextmanager
async def learn_usual_times(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_learn(app), name="opportunities-norms")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
