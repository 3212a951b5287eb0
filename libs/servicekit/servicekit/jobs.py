"""Periodic work of an app (a pass that finds what time changed), on the app's clock.

    hooks=[lambda app: periodic(app, "customers.lifecycle", 900, lifecycle.pass_once)]

`periodic` runs `work(session)` in a unit of work of its own (`Database.session()`: committed
when it returns) once when the app starts and then every `interval` seconds, for as long as the
app runs. Every replica runs it: the work must be safe to run twice at once (lock the rows it
changes with `FOR UPDATE SKIP LOCKED` and re-check their state). A failing run is logged and
the next one comes at its time; the loop sleeps on the app's clock, so a test moves time
(`FakeClock.advance`) instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.clock import Clock
from servicekit.db import Database

log = logging.getLogger("servicekit.jobs")

Work = Callable[[AsyncSession], Awaitable[Any]]


async def _loop(app: FastAPI, name: str, interval: float, work: Work) -> None:
    db: Database = app.state.db
    clock: Clock = app.state.clock
    while True:
        try:
            async with db.session() as session:
                await work(session)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic job %s failed; it runs again in %s s", name, interval)
        await clock.sleep(interval)


@contextlib.asynccontextmanager
async def periodic(app: FastAPI, name: str, interval: float, work: Work) -> AsyncIterator[None]:
    """Run `work` now and every `interval` seconds while the context is open (a lifespan
    hook's body)."""
    task = asyncio.create_task(_loop(app, name, interval, work), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
