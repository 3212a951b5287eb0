"""App factory: `uvicorn --factory analytics.main:create_app`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.alerts.hooks import after_events, daily_pass
from analytics.alerts.router import router as alerts_router
from analytics.alerts.service import Evaluator
from analytics.config import Settings
from analytics.facts import events as feeds
from analytics.facts.service import (
    CustomersFeed,
    OpportunitiesFeed,
    VisitsFeed,
    on_identity_change,
)
from analytics.kpis.router import router as kpis_router
from analytics.models import SCHEMA, directory
from analytics.nextplan.router import router as nextplan_router
from analytics.reports.router import router as reports_router
from analytics.targets.router import router as targets_router
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app
from servicekit.consumer import PageHandler, following
from servicekit.outbox import Event

MIGRATIONS = Path(__file__).parent / "migrations"


@contextlib.asynccontextmanager
async def follow_feeds(app: FastAPI) -> AsyncIterator[None]:
    """The customers, visits and opportunities feeds, each into its read models."""
    settings: Settings = app.state.settings
    calendar = settings.calendar
    handlers: dict[str, PageHandler] = {
        feeds.CUSTOMERS: CustomersFeed(calendar, settings.active_window_days),
        feeds.VISITS: VisitsFeed(calendar, settings.active_window_days),
        feeds.OPPORTUNITIES: OpportunitiesFeed(calendar),
    }
    async with contextlib.AsyncExitStack() as stack:
        for source, page_handler in handlers.items():
            await stack.enter_async_context(
                following(
                    app,
                    source,
                    f"analytics.{source}",
                    page_handler=_then_alerts(page_handler, after_events(app, source)),
                )
            )
        yield


def _then_alerts(apply: PageHandler, then: PageHandler) -> PageHandler:
    async def handle(session: AsyncSession, events: list[Event]) -> None:
        await apply(session, events)
        await then(session, events)  # the alert rules of what the page touched

    return handle


TAGS = (
    {"name": "kpis", "description": "KPIs by the exact definitions, with their records"},
    {"name": "targets", "description": "Targets, their decomposition and checks"},
    {"name": "reports", "description": "The weekly team report and the periodic summary"},
    {"name": "alerts", "description": "Insight alerts raised by rules kept as data"},
    {"name": "next plan", "description": "Suggestions for a rep's next visit plan"},
)


def spec() -> AppSpec:
    return AppSpec(
        name="analytics",
        schema=SCHEMA,
        title="Fieldforce analytics",
        description="Targets, KPIs, reports and alerts built from the other apps' events.",
        migrations_dir=MIGRATIONS,
        routers=[kpis_router, targets_router, reports_router, alerts_router, nextplan_router],
        hooks=[follow_feeds, daily_pass],
        state={"alerts": Evaluator()},
        directory=directory,
        identity_reactions=[on_identity_change],
        tags=TAGS,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(spec(), settings or Settings())


__all__: Sequence[str] = ["create_app", "spec"]
