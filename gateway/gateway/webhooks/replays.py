"""Replays: `POST /api/v1/webhooks/{id}/replay?from=` asks the delivery worker to send past
events again. The worker scans each feed (from the hourly mark well before `from`, else from
the feed's beginning) page by page, each page a short unit of work that queues the matching
events of `[from, until]` for that endpoint and saves how far the scan got; a replay that stops
halfway (a crash, a feed that cannot be read) is taken up again where it stopped, by any
replica, once its lease runs out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gateway.config import Settings
from gateway.webhooks import repository
from gateway.webhooks.events import cloud_event
from gateway.webhooks.models import REPLAY
from gateway.webhooks.patterns import matches
from gateway.webhooks.sources import FEEDS, FeedPages, feed_of
from servicekit.clock import Clock
from servicekit.db import Database
from servicekit.outbox import Event

log = logging.getLogger("gateway.webhooks")
PAGE = 500
# Feed order is commit order and an event's time is taken before its commit: a scan starts at
# a mark this far before `from`, so that no event of `[from, until]` sorts before it.
MARK_SLACK = timedelta(hours=2)


@dataclass
class _Start:
    """Where a replay from an event begins: that event's feed, and whether its scan has
    reached the event yet."""

    event_id: uuid.UUID | None
    feed: str | None
    reached: bool


class ReplayRunner:
    def __init__(self, db: Database, pages: FeedPages, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.pages = pages
        self.clock = clock
        self.lease = timedelta(seconds=settings.webhook_lease_seconds)
        self.poll = settings.webhook_poll_seconds
        self.wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhooks:replays")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self.wake.clear()
            try:
                now = self.clock.now()
                async with self.db.session() as session:
                    replay = await repository.claim_replay(session, now, now + self.lease)
                if replay is not None:
                    await self.run(replay)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook replay: %s: %s", type(exc).__name__, exc)
            await self.clock.wait(self.wake, self.poll)

    async def run(self, replay: Any) -> None:
        token: uuid.UUID = replay.lease_token
        async with self.db.session() as session:
            patterns = await repository.endpoint_patterns(session, replay.endpoint_id)
        if patterns is None:
            return  # the endpoint (and with it the replay) was deleted
        progress: dict[str, Any] = dict(replay.progress or {})
        cursors: dict[str, str | None] = dict(progress.get("cursors") or {})
        done: list[str] = list(progress.get("done") or [])
        start = _Start(replay.from_event_id, None, bool(progress.get("reached")))
        if replay.from_event_id is not None:
            async with self.db.session() as session:
                source = await repository.message_source(session, replay.from_event_id)
            start.feed = feed_of(self.db, source) if source is not None else None
        errors: list[str] = []
        for feed in FEEDS:
            if feed in done:
                continue
            try:
                held = await self._scan(replay, token, patterns, feed, cursors, done, start)
            except Exception as exc:
                # The other feeds go on; this one is taken up again where it stopped.
                errors.append(f"the {feed} feed could not be read: {type(exc).__name__}: {exc}")
                continue
            if not held:
                return
        if errors:
            error = "; ".join(errors)[:1000]
            log.info("webhook replay %s: %s; retried later", replay.id, error)
            async with self.db.session() as session:
                await repository.save_replay(
                    session, replay.id, token, until=self.clock.now() + self.lease, error=error
                )
            return
        async with self.db.session() as session:
            await repository.save_replay(
                session, replay.id, token, until=None, finished_at=self.clock.now()
            )

    async def _scan(
        self,
        replay: Any,
        token: uuid.UUID,
        patterns: list[str],
        feed: str,
        cursors: dict[str, str | None],
        done: list[str],
        start: _Start,
    ) -> bool:
        """Queue the matching events of one feed, page by page; False when the lease was lost."""
        if feed in cursors:
            cursor = cursors[feed]
        else:
            async with self.db.session() as session:
                cursor = await repository.mark_before(session, feed, replay.from_time - MARK_SLACK)
        while True:
            doc = await self.pages.page(feed, cursor, PAGE)
            events = [Event.from_json(item) for item in doc.get("items", [])]
            reached = start.reached
            picked: list[Event] = []
            for e in events:
                if feed == start.feed:
                    # The event's own feed: that event and every one after it in feed order
                    # (events of one instant have no order by time).
                    reached = reached or e.id == start.event_id
                    begun = reached
                else:
                    begun = replay.from_time <= e.time
                if begun and e.time <= replay.until and matches(patterns, e.type):
                    picked.append(e)
            cursor = doc.get("next_cursor")
            more = bool(doc.get("has_more"))
            # Kept only once saved: a page that fails to be saved is read again.
            progress = {
                "cursors": {**cursors, feed: cursor},
                "done": done if more else [*done, feed],
                "reached": reached,
            }
            now = self.clock.now()
            async with self.db.session() as session:
                for event in picked:
                    await repository.add_message(session, event, cloud_event(event), now)
                    await repository.enqueue(
                        session,
                        [replay.endpoint_id],
                        event.id,
                        now,
                        origin=REPLAY,
                        replay_id=replay.id,
                    )
                held = await repository.save_replay(
                    session,
                    replay.id,
                    token,
                    until=now + self.lease,
                    progress=progress,
                    enqueued=len(picked),
                )
                if not held:
                    await session.rollback()
                    return False
            cursors[feed] = cursor
            start.reached = reached
            if not more:
                done.append(feed)
                return True
