"""Following another app's event feed: at-least-once delivery, exactly-once effect.

Each page is applied in one transaction of the consumer's own schema: the handler's changes, the
ids of the events applied (a replayed event is skipped) and the new cursor commit together. The
consumer wakes on the producer's NOTIFY when both share a server, polls otherwise, backs off
while the source is down, and `reset()` replays the feed from zero to rebuild a read model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.clock import Clock, current_clock
from servicekit.db import Database, to_asyncpg_dsn
from servicekit.metrics import (
    CONSUMER_APPLIED,
    CONSUMER_BEHIND_EVENTS,
    CONSUMER_ERRORS,
    CONSUMER_LAG_SECONDS,
    CONSUMER_NEWEST_APPLIED_AGE,
)
from servicekit.outbox import Event, events_between
from servicekit.tables import kit_tables, notify_channel

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("servicekit.consumer")

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
# Applies the events of a page not applied before, all at once, in the page's transaction: for
# a read model that does per page what it would otherwise do per event.
PageHandler = Callable[[AsyncSession, list[Event]], Awaitable[None]]
HeaderSource = Callable[[], Awaitable[Mapping[str, str]]]
# Reads one page of a feed (after the cursor, at most `limit` events) as the feed's JSON
# document, for a consumer that reaches its feed some other way than `GET feed_url`.
PageSource = Callable[[str | None, int], Awaitable[dict[str, Any]]]


class EventConsumer:
    def __init__(
        self,
        db: Database,
        *,
        name: str,
        source: str,
        feed_url: str,
        handler: Handler | None = None,
        headers: HeaderSource | Mapping[str, str] | None = None,
        notify_channel: str | None = None,
        poll_interval: float = 2.0,
        batch_size: int = 200,
        max_backoff: float = 30.0,
        http: aiohttp.ClientSession | None = None,
        processed_retention: float = 7 * 86400.0,
        prune_interval: float = 3600.0,
        clock: Clock | None = None,
        pages: PageSource | None = None,
        page_handler: PageHandler | None = None,
    ) -> None:
        """`pages`: how a page is read instead of `GET feed_url` (which then only names the
        feed in logs), e.g. the app's own feed read in process. Events are applied one by one
        by `handler`, or a page's at once by `page_handler` (exactly one of them)."""
        if (handler is None) == (page_handler is None):
            raise ValueError("give a consumer either a handler or a page_handler")
        self.db = db
        self.name = name
        self.source = source
        self.feed_url = feed_url
        self.handler = handler
        self.page_handler = page_handler
        self._pages = pages
        self._headers = headers
        self.notify_channel = notify_channel
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self._http = http
        self._own_http = http is None
        self.processed_retention = processed_retention
        self.prune_interval = prune_interval
        self.clock = clock or current_clock()
        self._last_prune = self.clock.monotonic()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._labels = (db.app_name, name, source)
        self.applied = 0
        # How far the cursor is behind the feed's head, in events, as of the last page read.
        self.behind = 0
        self.failures = 0  # polls that failed (the feed unreachable, or a page not applied)
        self.listening = False  # whether the producer's NOTIFY would wake it now
        # Health, for /readyz: "starting" until the first poll, then after each poll
        # "following", "unreachable" (the feed could not be read) or "failing" (a page could
        # not be applied), with the last error.
        self.state = "starting"
        self.last_error: str | None = None
        # When the newest event applied was written; its age is read at each scrape.
        self.newest_applied: datetime | None = None
        CONSUMER_NEWEST_APPLIED_AGE.labels(*self._labels).set_function(self._newest_applied_age)

    def _newest_applied_age(self) -> float:
        if self.newest_applied is None:
            return 0.0
        return max(0.0, (self.clock.now() - self.newest_applied).total_seconds())

    # -- bookkeeping in the consumer's schema ------------------------------------------------
    async def load_cursor(self) -> str | None:
        t = kit_tables(self.db.schema).consumer_cursors
        async with self.db.session() as s:
            row = (await s.execute(sa.select(t.c.cursor).where(t.c.consumer == self.name))).first()
            return None if row is None or row[0] is None else str(row[0])

    async def reset(self) -> None:
        """Forget the cursor and the applied ids: the next poll replays from zero."""
        tables = kit_tables(self.db.schema)
        async with self.db.session() as s:
            for t in (tables.consumer_cursors, tables.consumer_processed):
                await s.execute(sa.delete(t).where(t.c.consumer == self.name))
        self._wake.set()

    async def prune_processed(self) -> int:
        """Forget applied ids older than the retention; returns how many were dropped."""
        t = kit_tables(self.db.schema).consumer_processed
        async with self.db.session() as s:
            result = await s.execute(
                sa.delete(t).where(
                    t.c.consumer == self.name,
                    t.c.applied_at < self.clock.now() - timedelta(seconds=self.processed_retention),
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def _apply_page(self, events: list[Event], next_cursor: str | None) -> int:
        applied = 0
        tables = kit_tables(self.db.schema)
        processed, cursors = tables.consumer_processed, tables.consumer_cursors
        now = self.clock.now()
        async with self.db.session() as s:
            # One statement marks the whole page; only the ids it inserted are new to us.
            ids = sa.func.unnest(sa.cast([event.id for event in events], ARRAY(sa.Uuid)))
            fresh_rows = await s.execute(
                pg_insert(processed)
                .from_select(
                    ["consumer", "event_id", "applied_at"],
                    sa.select(
                        sa.literal(self.name), ids, sa.literal(now, sa.DateTime(timezone=True))
                    ),
                )
                .on_conflict_do_nothing()
                .returning(processed.c.event_id)
            )
            fresh = {row[0] for row in fresh_rows}
            todo: list[Event] = []
            for event in events:
                if event.id not in fresh:
                    continue
                fresh.discard(event.id)  # a page never applies one event twice
                todo.append(event)
            if self.page_handler is not None:
                if todo:
                    await self.page_handler(s, todo)
            else:
                assert self.handler is not None
                for event in todo:
                    await self.handler(s, event)
            applied = len(todo)
            upsert = pg_insert(cursors).values(
                consumer=self.name, cursor=next_cursor, updated_at=now
            )
            await s.execute(
                upsert.on_conflict_do_update(
                    index_elements=[cursors.c.consumer],
                    set_={
                        "cursor": upsert.excluded.cursor,
                        "updated_at": upsert.excluded.updated_at,
                    },
                )
            )
        return applied

    # -- polling ------------------------------------------------------------------------------
    async def _headers_now(self) -> Mapping[str, str]:
        if self._headers is None:
            return {}
        if callable(self._headers):
            return await self._headers()
        return self._headers

    async def _fetch(self, cursor: str | None) -> dict[str, Any]:
        if self._pages is not None:
            return await self._pages(cursor, self.batch_size)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
            self._own_http = True
        params: dict[str, str] = {"limit": str(self.batch_size)}
        if cursor:
            params["after"] = cursor
        async with self._http.get(
            self.feed_url, params=params, headers=dict(await self._headers_now())
        ) as resp:
            if resp.status != 200:
                text = await resp.text()
                raise RuntimeError(f"feed answered {resp.status}: {text[:200]}")
            doc: dict[str, Any] = await resp.json()
            return doc

    def health(self) -> tuple[str, str | None]:
        return self.state, self.last_error

    def wake(self) -> None:
        """Poll now: for an owner that learns of new events itself (its own LISTEN)."""
        self._wake.set()

    async def poll_once(self) -> tuple[int, bool]:
        """Fetch and apply one page. Returns (events applied, whether more are waiting)."""
        cursor = await self.load_cursor()
        try:
            doc = await self._fetch(cursor)
        except Exception as exc:
            self._unreachable(exc)
            raise
        if self.state != "following":
            if self.state == "unreachable":
                log.info("consumer %s: the %s feed is reachable again", self.name, self.source)
            self.state, self.last_error = "following", None
        events = [Event.from_json(item) for item in doc.get("items", [])]
        more = bool(doc.get("has_more"))
        if events:
            CONSUMER_LAG_SECONDS.labels(*self._labels).set(
                max(0.0, (self.clock.now() - events[0].time).total_seconds())
            )
            try:
                applied = await self._apply_page(events, doc.get("next_cursor"))
            except Exception as exc:
                self.state, self.last_error = "failing", f"{type(exc).__name__}: {exc}"
                raise
            self.applied += applied
            newest = max(event.time for event in events)
            if self.newest_applied is None or newest > self.newest_applied:
                self.newest_applied = newest
            CONSUMER_APPLIED.labels(*self._labels).inc(applied)
        else:
            applied = 0
        if not more:
            CONSUMER_LAG_SECONDS.labels(*self._labels).set(0)
        if "head" in doc:  # a feed that reports its head (every kit feed does)
            at = doc.get("next_cursor") if events else cursor
            self.behind = events_between(at, doc["head"])
            CONSUMER_BEHIND_EVENTS.labels(*self._labels).set(self.behind)
        return applied, more

    def _unreachable(self, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.state != "unreachable":
            log.warning(
                "consumer %s cannot read the %s feed at %s (%s); /readyz reports degraded "
                "until it can",
                self.name,
                self.source,
                self.feed_url,
                error,
            )
        self.state, self.last_error = "unreachable", error

    async def catch_up(self) -> int:
        total = 0
        while True:
            applied, more = await self.poll_once()
            total += applied
            if not more:
                return total

    async def _run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            # Cleared before the poll, not after: a NOTIFY that arrives while a page is being
            # applied must lead to another poll, not wait for the next interval.
            self._wake.clear()
            try:
                _, more = await self.poll_once()
                backoff = 0.5
                if self.clock.monotonic() - self._last_prune > self.prune_interval:
                    self._last_prune = self.clock.monotonic()
                    await self.prune_processed()
                if more:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                CONSUMER_ERRORS.labels(*self._labels).inc()
                self.failures += 1
                # An unreachable feed was announced once, as it became so (`_unreachable`).
                level = logging.INFO if self.state == "unreachable" else logging.WARNING
                log.log(level, "consumer %s: %s; retrying in %.1fs", self.name, exc, backoff)
                await self.clock.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                continue
            await self.clock.wait(self._wake, self.poll_interval)

    async def _listen(self) -> None:
        """Wake on the producer's NOTIFY; reconnect quietly, polling covers the gaps."""
        assert self.notify_channel is not None
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(to_asyncpg_dsn(self.db.url))
                await conn.add_listener(self.notify_channel, lambda *_: self._wake.set())
                self.listening = True
                while not self._stopping and not conn.is_closed():  # noqa: ASYNC110
                    await asyncio.sleep(5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("consumer %s: LISTEN unavailable (%s); polling", self.name, exc)
                await asyncio.sleep(5)
            finally:
                self.listening = False
                if conn is not None and not conn.is_closed():
                    await conn.close()

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self.name}")
        if self.notify_channel:
            self._listen_task = asyncio.create_task(self._listen(), name=f"listen:{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._task, self._listen_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._own_http and self._http is not None:
            await self._http.close()
            self._http = None


class NotFollowed:
    """A feed the app is built to follow but was not configured to reach (for /readyz)."""

    def __init__(self, detail: str) -> None:
        self.detail = detail

    def health(self) -> tuple[str, str | None]:
        return "not_configured", self.detail


def feed_url(gateway_url: str, source: str) -> str:
    return f"{gateway_url.rstrip('/')}/api/v1/events/{source}"


@contextlib.asynccontextmanager
async def following(
    app: FastAPI,
    source: str,
    name: str,
    handler: Handler | None = None,
    *,
    page_handler: PageHandler | None = None,
) -> AsyncIterator[EventConsumer | None]:
    """Follow another app's feed through the gateway (`GATEWAY_URL`, read with the
    `EVENTS_API_KEY`) for as long as the context is open, and report it on `/readyz`. When
    either setting is missing the app runs without the feed, and says so at start (a warning)
    and on /readyz (`degraded`), instead of silently lacking what the feed would bring."""
    settings = app.state.settings
    feeds: dict[str, Any] = app.state.feeds
    missing = [
        env
        for env, value in (
            ("GATEWAY_URL", settings.gateway_url),
            ("EVENTS_API_KEY", settings.events_api_key),
        )
        if not value
    ]
    if missing:
        detail = f"{' and '.join(missing)} not set"
        log.warning(
            "%s does not follow the %s feed: %s; /readyz reports degraded",
            app.state.spec.name,
            source,
            detail,
        )
        feeds[source] = NotFollowed(detail)
        yield None
        return
    consumer = EventConsumer(
        app.state.db,
        name=name,
        source=source,
        feed_url=feed_url(settings.gateway_url, source),
        handler=handler,
        page_handler=page_handler,
        headers={"X-API-Key": settings.events_api_key},
        # Each app's outbox lives in the schema named after it (the gateway's: "identity").
        notify_channel=notify_channel(source),
        clock=app.state.clock,
    )
    feeds[source] = consumer
    consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()
