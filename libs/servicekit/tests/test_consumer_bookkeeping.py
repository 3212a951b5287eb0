"""The consumer's own bookkeeping: applied ids are pruned after their retention, per consumer."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from servicekit.consumer import EventConsumer
from servicekit.db import Database
from servicekit.testing.sample.app import SCHEMA


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
        async with db.session() as s:
            await s.execute(
                sa.text(
                    f"INSERT INTO {SCHEMA}.consumer_processed (consumer, event_id, applied_at) "
                    "VALUES ('mine', :old, now() - interval '8 days'), "
                    "('mine', :recent, now() - interval '1 day'), "
                    "('theirs', :other, now() - interval '30 days')"
                ),
                {"old": old, "recent": recent, "other": other_old},
            )
        mine = _consumer(db, "mine", retention=7 * 86400)
        assert await mine.prune_processed() == 1
        async with db.session() as s:
            left = (
                await s.execute(
                    sa.text(f"SELECT consumer, event_id FROM {SCHEMA}.consumer_processed")
                )
            ).all()
        assert sorted((c, str(e)) for c, e in left) == sorted(
            [("mine", str(recent)), ("theirs", str(other_old))]
        )
    finally:
        await db.close()
