"""The alerts' lifespan hook: the daily pass over every subject (and once at start), and the
call-out the facts consumers make after applying a page of events (`after_events`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alerts.dependencies import STATE_KEY
from analytics.alerts.service import Evaluator
from analytics.config import Settings
from analytics.kpis.measures import Context
from servicekit.consumer import PageHandler
from servicekit.jobs import periodic
from servicekit.outbox import Event


def _context(app: FastAPI) -> Context:
    return Context.of(app.state.settings, app.state.directory)


@contextlib.asynccontextmanager
async def daily_pass(app: FastAPI) -> AsyncIterator[None]:
    """Every rule over every subject, once a day (every replica runs it: recording alerts is
    safe to run twice at once, the partial unique index keeps one live alert per rule and
    subject)."""
    settings: Settings = app.state.settings
    evaluator: Evaluator = getattr(app.state, STATE_KEY)

    async def work(session: AsyncSession) -> None:
        await evaluator.evaluate(session, _context(app), now=app.state.clock.now())

    async with periodic(app, "analytics.alerts", settings.alerts_pass_seconds, work):
        yield


def after_events(app: FastAPI, source: str) -> PageHandler:
    """What the `source` consumer calls after applying a page of events, in its
    transaction."""
    evaluator: Evaluator = getattr(app.state, STATE_KEY)

    async def evaluate(session: AsyncSession, applied: list[Event]) -> None:
        # The app's clock: a consumer's work may run outside the app's context.
        await evaluator.on_events(session, _context(app), source, applied, app.state.clock.now())

    return evaluate
