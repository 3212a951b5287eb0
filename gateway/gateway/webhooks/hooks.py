"""Webhooks' lifespan hook (after identity's and the edge's): the address policy and sender the
API uses, and, when this process delivers (`GATEWAY_WEBHOOK_DELIVERY_ENABLED`, on by default),
the delivery worker inside the gateway process:

- a kit `EventConsumer` per feed (`webhooks.<feed>`), whose page handler is the fan-out;
- the `Dispatcher` (delivery.py) and the `ReplayRunner` (replays.py);
- one LISTEN connection that wakes them: each feed's outbox channel wakes its consumer, the
  webhooks channel (a trigger on the queue and the replays) wakes the workers of every replica;
- the stats loop behind `webhook_oldest_undelivered_age_seconds`, and the purge of old log
  entries.

Every replica runs all of it; PostgreSQL decides who does what (delivery.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import aiohttp
import asyncpg
from fastapi import FastAPI

from gateway.config import Settings
from gateway.edge import EdgeState
from gateway.routes import upstreams
from gateway.webhooks import metrics, repository
from gateway.webhooks.addresses import AddressPolicy
from gateway.webhooks.delivery import Dispatcher
from gateway.webhooks.fanout import FanOut
from gateway.webhooks.models import NOTIFY_CHANNEL
from gateway.webhooks.replays import ReplayRunner
from gateway.webhooks.runtime import Webhooks
from gateway.webhooks.sender import Sender
from gateway.webhooks.sources import FEEDS, FeedPages
from servicekit.app import Readiness
from servicekit.clock import Clock
from servicekit.consumer import EventConsumer
from servicekit.db import Database, to_asyncpg_dsn
from servicekit.outbox import FEED_MAX_LIMIT
from servicekit.tables import notify_channel

log = logging.getLogger("gateway.webhooks")
PURGE_EVERY_SECONDS = 3600.0
_RECONNECT_SECONDS = 5.0


@asynccontextmanager
async def webhooks_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    clock: Clock = app.state.clock
    policy = AddressPolicy(
        settings.webhook_allowed_networks, allow_http=settings.webhook_allow_http
    )
    sender = Sender(policy, timeout=settings.webhook_timeout_seconds)
    webhooks = Webhooks(settings=settings, clock=clock, policy=policy, sender=sender)
    app.state.webhooks = webhooks
    try:
        if not settings.webhook_delivery_enabled:
            yield
            return
        async with _delivering(app, webhooks):
            yield
    finally:
        await sender.close()


@asynccontextmanager
async def _delivering(app: FastAPI, webhooks: Webhooks) -> AsyncIterator[None]:
    settings, db, clock = webhooks.settings, app.state.db, webhooks.clock
    edge: EdgeState = app.state.edge
    assert edge.forwarder is not None, "the edge's lifespan runs first"
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    pages = FeedPages(db, edge.forwarder.signer, upstreams(settings), http)
    for feed in FEEDS:
        webhooks.consumers[feed] = EventConsumer(
            db,
            name=f"webhooks.{feed}",
            source=feed,
            feed_url=pages.url(feed),
            page_handler=FanOut(feed),
            pages=pages.source(feed),
            # The feed's largest pages: a bulk write of thousands of events is followed in a
            # few pages, each a request to the service and a transaction here, not dozens.
            batch_size=FEED_MAX_LIMIT,
            clock=clock,
        )
    webhooks.dispatcher = Dispatcher(db, webhooks, settings, clock)
    webhooks.replays = ReplayRunner(db, pages, settings, clock)
    wakes: dict[str, Callable[[], None]] = {NOTIFY_CHANNEL: webhooks.wake}
    wakes |= {notify_channel(feed): c.wake for feed, c in webhooks.consumers.items()}
    for consumer in webhooks.consumers.values():
        consumer.start()
    webhooks.dispatcher.start()
    webhooks.replays.start()
    loops = [
        asyncio.create_task(_listen(db, webhooks, wakes), name="webhooks:listen"),
        asyncio.create_task(
            _stats(db, clock, settings.outbox_metrics_interval_seconds), name="webhooks:stats"
        ),
        asyncio.create_task(
            _purge(db, clock, timedelta(days=settings.webhook_log_retention_days)),
            name="webhooks:purge",
        ),
    ]
    try:
        yield
    finally:
        for task in loops:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await webhooks.dispatcher.stop()
        await webhooks.replays.stop()
        for consumer in webhooks.consumers.values():
            await consumer.stop()
        await http.close()
        metrics.OLDEST_WAITING.ages = {}


async def _listen(db: Database, webhooks: Webhooks, wakes: dict[str, Callable[[], None]]) -> None:
    """Wake the consumers and workers on NOTIFY; reconnect quietly (their polls cover gaps)."""
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(to_asyncpg_dsn(db.url))
            for channel, wake in wakes.items():
                await conn.add_listener(channel, lambda *_, wake=wake: wake())
            webhooks.listening = True
            # Whatever was announced while no one listened.
            for wake in wakes.values():
                wake()
            while not conn.is_closed():  # noqa: ASYNC110 - asyncpg signals a lost connection so
                await asyncio.sleep(_RECONNECT_SECONDS)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info("webhooks: LISTEN unavailable (%s); polling", exc)
            await asyncio.sleep(_RECONNECT_SECONDS)
        finally:
            webhooks.listening = False
            if conn is not None and not conn.is_closed():
                await conn.close()


async def _stats(db: Database, clock: Clock, interval: float) -> None:
    statement = repository.oldest_waiting_statement()
    while True:
        try:
            rows = await db.reads().fetch(statement.sql, *statement.args())
            now = clock.now()
            metrics.OLDEST_WAITING.ages = {
                str(r["endpoint_id"]): max(0.0, (now - r["oldest"]).total_seconds()) for r in rows
            }
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("webhook stats unavailable: %s", exc)
        await clock.sleep(interval)


async def _purge(db: Database, clock: Clock, retention: timedelta) -> None:
    while True:
        try:
            async with db.session() as session:
                await repository.purge(session, clock.now() - retention)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("webhook log purge skipped: %s", exc)
        await clock.sleep(PURGE_EVERY_SECONDS)


async def webhooks_readiness(app: FastAPI) -> Readiness:
    """How delivery follows the feeds; informative only (the services' own health is in
    `services`), so it never makes the gateway degraded."""
    webhooks: Webhooks | None = getattr(app.state, "webhooks", None)
    if webhooks is None or webhooks.dispatcher is None:
        return Readiness({"webhooks": {"delivery": "off"}})
    feeds = {feed: consumer.health()[0] for feed, consumer in webhooks.consumers.items()}
    return Readiness(
        {"webhooks": {"delivery": "on", "listening": webhooks.listening, "feeds": feeds}}
    )
