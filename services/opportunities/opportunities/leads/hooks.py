"""The lifespan hook that follows the visits feed: a completed visit to an assigned lead's
customer by its rep is the lead's first contact."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.config import Settings
from opportunities.leads.service import contacted_by_visit
from servicekit.consumer import following
from servicekit.outbox import Event

VISITS = "visits"
VISIT_COMPLETED = "visit.completed"


@contextlib.asynccontextmanager
async def follow_visits(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings

    async def handle(session: AsyncSession, event: Event) -> None:
        if event.type == VISIT_COMPLETED:
            await contacted_by_visit(session, event, settings)

    async with following(app, VISITS, "opportunities.visits", handle):
        yield
