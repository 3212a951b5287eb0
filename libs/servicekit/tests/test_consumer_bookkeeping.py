"""The consumer's own bookkeeping: applied ids are pruned after their retention, per consumer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from servicekit.consumer import EventConsumer
from servicekit.db import Database
from servicekit.tables import kit_tables
from servicekit.testing.sample.app import SCHEMA

processed = kit_tables(SCHEMA).consumer_processed


async def _noop(session, event) -> None:
    raise AssertionError("no event is applied in these tests")


def _consumer(db: Database, name: str, retention: float) -> EventConsumer:
    return EventConsumer(
        db,
        name=name,
        source="kitsample",
        feed_url="http://127.0.0.1:9/events",  # never fetched here
        handler=_noop,
        processed_retention=retention,
    )


async def test_applied_ids_older_than_the_retention_are_pruned_for_that_consumer_only(sample_db):
    db = Database(sample_db, app_name="sink", schema=SCHEMA)
    await db.connect()
    try:
        old, recent, other_old = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        async with db.session() as s:
            await s.execute(
                sa.insert(processed),
                [
                    {"consumer": "mine", "event_id": old, "applied_at": now - timedelta(days=8)},
                    {"consumer": "mine", "event_id": recent, "applied_at": now - timedelta(1)},
                    {
                        "consumer": "theirs",
                        "event_id": other_old,
                        "applied_at": now - timedelta(days=30),
                    },
                ],
            )
        mine = _consumer(db, "mine", retention=7 * 86400)
        assert await mine.prune_processed() == 1
        async with db.session() as s:
            left = (await s.execute(sa.select(processed.c.consumer, processed.c.event_id))).all()
        assert sorted((c, str(e)) for c, e in left) == sorted(
            [("mine", str(recent)), ("theirs", str(other_old))]
        )
    finally:
        await db.close()
