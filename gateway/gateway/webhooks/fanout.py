"""The fan-out: the page handler of each feed's consumer (a kit `EventConsumer` per feed, in the
gateway process). It queues each event for every active subscription whose patterns match it,
in the consumer's transaction, so that the queue and the feed cursor move together: an event is
queued once however many replicas follow the feed and whatever crashes (the consumer's applied
ids). The queue's insert wakes the delivery workers of every replica at commit (NOTIFY).

A page's subscriptions are looked up once (the page's event types' patterns), not once per
event: a feed of ten thousand events with no subscriber costs the gateway one statement per
page, not ten thousand (bench/README.md, 2026-12-03)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.webhooks import repository
from gateway.webhooks.events import cloud_event
from gateway.webhooks.models import FEED
from gateway.webhooks.patterns import matches, patterns_for
from servicekit.db import utcnow
from servicekit.outbox import Event


class FanOut:
    def __init__(self, feed: str) -> None:
        self.feed = feed
        self._hour: datetime | None = None  # of the last mark this process wrote

    async def __call__(self, session: AsyncSession, events: list[Event]) -> None:
        for event in events:
            hour = event.time.replace(minute=0, second=0, microsecond=0)
            if hour != self._hour:
                # The first event of an hour: where a replay from a later time may start.
                await repository.add_mark(session, self.feed, hour, event.cursor)
                self._hour = hour
        wanted = sorted({p for t in {e.type for e in events} for p in patterns_for(t)})
        endpoints = await repository.matching_endpoints(session, wanted)
        if not endpoints:
            return
        now = utcnow()
        for event in events:
            targets = [id_ for id_, types in endpoints if matches(types, event.type)]
            if targets:
                await repository.add_message(session, event, cloud_event(event), now)
                await repository.enqueue(session, targets, event.id, now, origin=FEED)
