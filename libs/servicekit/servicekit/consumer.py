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
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import Database, to_asyncpg_dsn
from servicekit.metrics import CONSUMER_APPLIED, CONSUMER_ERRORS, CONSUMER_LAG_SECONDS
from servicekit.outbox import Event
from servicekit.tables import kit_tables

log = logging.getLogger("servicekit.consumer")

Handler = Callable[[AsyncSession, Event], Awaitable[None]]
HeaderSource = Callable[[], Awaitable[Mapping[str, str]]]


class EventConsumer:
    def __init__(
        self,
        db: Database,
        *,
        name: str,
        source: str,
        feed_url: str,
        handler: Handler,
        headers: HeaderSource | Mapping[str, str] | None = None,
        notify_channel: str | None = None,
        poll_interval: float = 2.0,
        batch_size: int = 200,
        max_backoff: float = 30.0,
        http: aiohttp.ClientSession | None = None,
        processed_retention: float = 7 * 86400.0,
        prune_interval: float = 3600.0,
    ) -> None:
        self.db = db
        self.name = name
        self.source = source
        self.feed_url = feed_url
        self.handler = handler
        self._headers = headers
        self.notify_channel = notify_channel
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.max_backoff = max_backoff
        self._http = http
        self._own_http = http is None
        self.processed_retention = processed_retention
        self.prune_interval = prune_interval
        self._last_prune = time.monotonic()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._labels = (db.app_name, name, source)
        self.applied = 0

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
                    t.c.applied_at < sa.func.now() - timedelta(seconds=self.processed_retention),
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def _apply_page(self, events: list[Event], next_cursor: str | None) -> int:
        applied = 0
        tables = kit_tables(self.db.schema)
        processed, cursors = tables.consumer_processed, tables.consumer_cursors
        async with self.db.session() as s:
            # One statement marks the whole page; only the ids it inserted are new to us.
            ids = sa.func.unnest(sa.cast([event.id for event in events], ARRAY(sa.Uuid)))
            fresh_rows = await s.execute(
                pg_insert(processed)
                .from_select(["consumer", "event_id"], sa.select(sa.literal(self.name), ids))
                .on_conflict_do_nothing()
                .returning(processed.c.event_id)
            )
            fresh = {row[0] for row in fresh_rows}
            for event in events:
                if event.id not in fresh:
                    continue
                fresh.discard(event.id)  # a page never applies one event twice
                await self.handler(s, event)
                applied += 1
            upsert = pg_insert(cursors).values(
                consumer=self.name, cursor=next_cursor, updated_at=sa.func.now()
            )
            await s.execute(
                upsert.on_conflict_do_update(
                    index_elements=[cursors.c.consumer],
                    set_={"cursor": upsert.excluded.cursor, "updated_at": sa.func.now()},
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

    async def poll_once(self) -> tuple[int, bool]:
        """Fetch and apply one page. Returns (events applied, whether more are waiting)."""
        cursor = await self.load_cursor()
        doc = await self._fetch(cursor)
        events = [Event.from_json(item) for item in doc.get("items", [])]
        more = bool(doc.get("has_more"))
        if events:
            CONSUMER_LAG_SECONDS.labels(*self._labels).set(
                max(0.0, time.time() - events[0].time.timestamp())
            )
            applied = await self._apply_page(events, doc.get("next_cursor"))
            self.applied += applied
            CONSUMER_APPLIED.labels(*self._labels).inc(applied)
        else:
            applied = 0
        if not more:
            CONSUMER_LAG_SECONDS.labels(*self._labels).set(0)
        return applied, more

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
            try:
                _, more = await self.poll_once()
                backoff = 0.5
                if time.monotonic() - self._last_prune > self.prune_interval:
                    self._last_prune = time.monotonic()
                    await self.prune_processed()
                if more:
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                CONSUMER_ERRORS.labels(*self._labels).inc()
                log.warning("consumer %s: %s; retrying in %.1fs", self.name, exc, backoff)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def _listen(self) -> None:
        """Wake on the producer's NOTIFY; reconnect quietly, polling covers the gaps."""
        assert self.notify_channel is not None
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(to_asyncpg_dsn(self.db.url))
                await conn.add_listener(self.notify_channel, lambda *_: self._wake.set())
                while not self._stopping and not conn.is_closed():  # noqa: ASYNC110
                    await asyncio.sleep(5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("consumer %s: LISTEN unavailable (%s); polling", self.name, exc)
                await asyncio.sleep(5)
            finally:
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
