"""The outbox feed under concurrent writers, and a consumer across producer restarts."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from servicekit.bulk import COPY_THRESHOLD
from servicekit.consumer import EventConsumer
from servicekit.db import Database, json_text
from servicekit.devdb import free_port
from servicekit.ids import new_id, ordered_uuids, random_hex
from servicekit.outbox import Event, record_event, record_events
from servicekit.tables import kit_tables, notify_channel
from servicekit.testing.harness import wait_until
from servicekit.testing.sample.app import SCHEMA, build, received, settings_for
from servicekit.testing.servers import serve
from servicekit.testing.tokens import make_principal

READER = make_principal("admin", scopes=["events:read"])


async def test_feed_needs_the_events_scope(sample):
    assert (await sample.client.get("/events", headers=sample.headers())).status_code == 403
    ok = await sample.client.get("/events", headers=sample.headers(READER))
    assert ok.status_code == 200
    assert ok.json() == {"items": [], "next_cursor": None, "has_more": False, "head": None}
    bad = await sample.client.get(
        "/events", params={"after": "nope"}, headers=sample.headers(READER)
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["after"]


async def test_a_feed_opens_to_its_own_apps_scope_and_not_to_anothers(sample):
    own = make_principal("integration", kind="key", scopes=["events:kitsample"])
    assert (await sample.client.get("/events", headers=sample.headers(own))).status_code == 200
    other = make_principal("integration", kind="key", scopes=["events:identity"])
    refused = await sample.client.get("/events", headers=sample.headers(other))
    assert refused.status_code == 403
    assert "events:kitsample" in refused.json()["detail"]


async def test_events_are_cloudevents_with_the_change_in_the_same_transaction(sample):
    me = make_principal()
    created = await sample.client.post("/widgets", json={"name": "x"}, headers=sample.headers(me))
    page = (await sample.client.get("/events", headers=sample.headers(READER))).json()
    [event] = page["items"]
    assert event["type"] == "widget.created"
    assert event["specversion"] == "1.0"
    assert event["source"] == "kitsample"
    assert event["subject"] == created.json()["id"]
    assert event["data"] == {"name": "x", "owner": me.sub}
    uuid.UUID(event["id"])
    assert page["next_cursor"] == event["cursor"]
    after = await sample.client.get(
        "/events", params={"after": page["next_cursor"]}, headers=sample.headers(READER)
    )
    assert after.json()["items"] == []


async def test_a_poller_sees_every_committed_event_exactly_once_under_concurrent_writers(sample):
    """Writers hold their transaction open for a random time after taking a position, so
    positions commit out of order; a plain serial cursor would skip some of them."""
    db: Database = sample.app.state.db
    committed: set[str] = set()
    rolled_back: set[str] = set()
    writers_done = asyncio.Event()
    rng = random.Random(7)

    async def writer(w: int) -> None:
        for j in range(25):
            session = db.new_session()
            try:
                await asyncio.sleep(rng.uniform(0, 0.01))
                event_id = await record_event(session, "widget.tested", None, {"w": w, "j": j})
                await asyncio.sleep(rng.uniform(0, 0.03))
                if rng.random() < 0.1:
                    await session.rollback()
                    rolled_back.add(str(event_id))
                else:
                    await session.commit()
                    committed.add(str(event_id))
            finally:
                await session.close()

    seen: list[str] = []
    headers = sample.headers(READER)

    async def poller() -> None:
        cursor = None
        quiet_after_done = 0
        while quiet_after_done < 3:
            params = {"limit": 7} | ({"after": cursor} if cursor else {})
            page = (await sample.client.get("/events", params=params, headers=headers)).json()
            seen.extend(item["id"] for item in page["items"])
            cursor = page["next_cursor"]
            if writers_done.is_set() and not page["items"]:
                quiet_after_done += 1
            await asyncio.sleep(0.002)

    poll = asyncio.create_task(poller())
    await asyncio.gather(*(writer(w) for w in range(12)))
    writers_done.set()
    await poll
    assert len(committed) > 200
    assert rolled_back
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert set(seen) == committed, "the feed lost events or showed rolled-back ones"


async def _feed(sample) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"limit": 200} | ({"after": after} if after else {})
        resp = await sample.client.get("/events", params=params, headers=sample.headers(READER))
        page = resp.json()
        items += page["items"]
        after = page["next_cursor"]
        if not page["has_more"]:
            return items


def test_ordered_uuids_are_v7_ascending_and_distinct():
    ids = [*ordered_uuids(5000), new_id(), *ordered_uuids(5000), new_id()]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids), "a later batch sorts after an earlier one, rows in batch order"
    assert len(set(ids)) == len(ids)
    # Standard-library UUIDs like any other: equal and hashed by value, their text canonical.
    again = [uuid.UUID(str(u)) for u in ids[:100]]
    assert again == ids[:100] and set(again) == set(ids[:100])
    assert all(isinstance(u, uuid.UUID) and u.is_safe is uuid.SafeUUID.unknown for u in ids)


def test_new_ids_ascend_within_a_millisecond():
    ids = [new_id() for _ in range(10000)]  # many per millisecond
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_random_hex_is_random_across_blocks_and_apart_after_a_fork():
    """Request ids come from urandom read in blocks: distinct across refills, and a forked
    child does not repeat what its parent hands out next."""
    ids = [random_hex() for _ in range(1000)]  # several blocks
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len(set(ids)) == len(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, "".join(random_hex() for _ in range(4)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    parent = "".join(random_hex() for _ in range(4))
    assert len(child) == 128 and child != parent


async def test_record_events_keeps_the_order_given_both_by_copy_and_by_insert(sample):
    """A large batch goes by COPY, a small one by INSERT; both in the caller's transaction, in
    the feed in the order given, with the data as given."""
    db: Database = sample.app.state.db
    many = COPY_THRESHOLD + 36
    # Subjects of every kind an app gives: text, its own UUIDs, none, and a UUID as the
    # driver reads it from the database (asyncpg's class).
    subjects: list[Any] = [(f"w{i}", uuid.UUID(int=i), None)[i % 3] for i in range(many)]
    async with db.session() as s:
        subjects[-1] = read = await s.scalar(sa.text("SELECT gen_random_uuid()"))
    assert type(read) is not uuid.UUID
    async with db.session() as s:
        # The COPY is the first statement of this transaction: it must not commit on its own.
        big = await record_events(
            s,
            [("widget.bulk", subjects[i], {"i": i, "at": uuid.UUID(int=i)}) for i in range(many)],
        )
    session = db.new_session()
    try:
        rolled = await record_events(session, [("widget.bulk", None, {"i": -1})] * many)
        await session.rollback()
    finally:
        await session.close()
    async with db.session() as s:
        small = await record_events(s, [("widget.small", None, {"i": i}) for i in range(3)])
    feed = await _feed(sample)
    assert [e["id"] for e in feed] == [str(i) for i in big + small]
    assert not {str(i) for i in rolled} & {e["id"] for e in feed}, "a rolled-back COPY showed"
    assert [e["data"] for e in feed[:many]] == [
        {"i": i, "at": str(uuid.UUID(int=i))} for i in range(many)
    ]
    assert [e["subject"] for e in feed[:many]] == [
        None if subject is None else str(subject) for subject in subjects
    ]
    assert feed[1]["subject"] == "00000000-0000-0000-0000-000000000001"
    assert feed[-1]["type"] == "widget.small" and feed[-1]["subject"] is None
    assert {e["source"] for e in feed} == {"kitsample"}


async def test_a_subject_of_another_type_is_written_as_its_text(sample):
    """What the type allows is text, a UUID or none; anything else is written as `str` writes
    it, in a large batch as in a small one."""
    db: Database = sample.app.state.db

    class Code(str):
        def __str__(self) -> str:
            return f"code:{super().__str__()}"

    odd: list[Any] = [Code("c1"), 7, uuid.UUID(int=5)]
    async with db.session() as s:
        await record_events(
            s, [("widget.odd", odd[i % 3], {"i": i}) for i in range(COPY_THRESHOLD)]
        )
    feed = await _feed(sample)
    assert [e["subject"] for e in feed[:3]] == ["code:c1", "7", str(uuid.UUID(int=5))]


async def test_the_feed_serves_each_payload_as_it_was_written(sample):
    """A consumer reads the payload the producer wrote, byte for byte: keys in the order
    given, decimals exact, times and ids as strings, by COPY and by INSERT alike."""
    db: Database = sample.app.state.db
    at = datetime(2026, 12, 3, 21, 5, 0, 123456, tzinfo=UTC)

    def payload(i: int) -> dict[str, Any]:
        return {
            "zone": "north",
            "amount": Decimal("1250.50") + i,
            "at": at,
            "id": uuid.UUID(int=i),
            "nested": {"z": [1, "x", None], "a": True},
            "name": "Zoë 東京",
        }

    many = COPY_THRESHOLD + 1
    async with db.session() as s:
        await record_events(s, [("widget.bulk", None, payload(i)) for i in range(many)])
    async with db.session() as s:
        await record_event(s, "widget.small", None, payload(many))
    resp = await sample.client.get(
        "/events", params={"limit": 1000}, headers=sample.headers(READER)
    )
    for i in range(many + 1):
        assert b'"data":' + json_text(payload(i)).encode() + b"," in resp.content, i
    first = resp.json()["items"][0]["data"]
    assert first == {
        "zone": "north",
        "amount": "1250.50",
        "at": "2026-12-03T21:05:00.123456+00:00",
        "id": str(uuid.UUID(int=0)),
        "nested": {"z": [1, "x", None], "a": True},
        "name": "Zoë 東京",
    }


async def _count(db: Database) -> tuple[int, int]:
    async with db.session() as s:
        row = (
            await s.execute(
                sa.select(sa.func.count(), sa.func.count(sa.distinct(received.c.event_id)))
            )
        ).one()
    return int(row[0]), int(row[1])


async def _wait_for(db: Database, n: int) -> None:
    async def applied() -> bool:
        return (await _count(db))[0] >= n

    await wait_until(applied, within=15, every=0.05, what=f"the consumer applying {n} events")


async def test_a_consumer_follows_a_feed_across_producer_and_consumer_restarts(
    databases, sample_template, minter
):
    producer_url = await databases.acreate(template=sample_template)
    consumer_url = await databases.acreate(template=sample_template)
    port = free_port()
    feed = f"http://127.0.0.1:{port}/events"
    headers = minter.headers(READER, "kitsample")
    owner = make_principal()
    sink = Database(consumer_url, app_name="sink", schema=SCHEMA)
    producer_db = Database(producer_url, app_name="kitsample", schema=SCHEMA)
    await sink.connect()
    await producer_db.connect()

    def consumer() -> EventConsumer:
        return EventConsumer(
            sink,
            name="sample-sink",
            source="kitsample",
            feed_url=feed,
            handler=record,
            headers=headers,
            poll_interval=0.1,
            batch_size=4,
            max_backoff=0.5,
        )

    async def record(session, event: Event) -> None:
        await session.execute(
            received.insert().values(event_id=event.id, type=event.type, subject=event.subject)
        )

    async def create(client: httpx.AsyncClient, n: int) -> None:
        for i in range(n):
            resp = await client.post(
                "/widgets", json={"name": f"w{i}"}, headers=minter.headers(owner, "kitsample")
            )
            assert resp.status_code == 201

    settings = settings_for(producer_url, minter.public_pem)
    first = consumer()
    try:
        async with (
            serve(build(settings), port=port) as base,
            httpx.AsyncClient(base_url=base) as client,
        ):
            await create(client, 5)
            first.start()
            await _wait_for(sink, 5)
        # Producer down: events keep being written to its outbox; the consumer backs off.
        for i in range(5):
            async with producer_db.session() as s:
                await record_event(s, "widget.offline", None, {"i": i})
        failed = first.failures
        await wait_until(lambda: first.failures > failed + 1, what="polls failing")
        assert first.state == "unreachable"
        assert (await _count(sink))[0] == 5
        async with (
            serve(build(settings), port=port) as base,
            httpx.AsyncClient(base_url=base) as client,
        ):
            await _wait_for(sink, 10)
            await first.stop()
            await create(client, 3)
            second = consumer()  # a new process would start from the stored cursor
            assert await second.catch_up() == 3
            assert await _count(sink) == (13, 13)
            # Losing the cursor re-delivers, but the applied ids keep the effect once.
            async with sink.session() as s:
                await s.execute(sa.update(kit_tables(SCHEMA).consumer_cursors).values(cursor=None))
            assert await second.catch_up() == 0
            assert await _count(sink) == (13, 13)
            # A deliberate reset replays from zero to rebuild the read model.
            async with sink.session() as s:
                await s.execute(received.delete())
            await second.reset()
            assert await second.catch_up() == 13
            assert await _count(sink) == (13, 13)
            await second.stop()
    finally:
        await first.stop()
        await sink.close()
        await producer_db.close()
        await databases.adrop(producer_url)
        await databases.adrop(consumer_url)


def _sample_consumer(sample, minter, name: str, **options: Any) -> EventConsumer:
    """A consumer of the sample app's feed over HTTP, into the sample's own schema."""
    return EventConsumer(
        sample.app.state.db,
        name=name,
        source="kitsample",
        feed_url=f"{sample.url}/events",
        headers=minter.headers(READER, "kitsample"),
        **options,
    )


async def test_a_consumer_reports_how_far_behind_the_feeds_head_its_cursor_is(sample, minter):
    for i in range(5):
        await sample.client.post("/widgets", json={"name": f"w{i}"}, headers=sample.headers())
    every = (await sample.client.get("/events", headers=sample.headers(READER))).json()["items"]
    first = (
        await sample.client.get("/events", params={"limit": 2}, headers=sample.headers(READER))
    ).json()
    assert [e["id"] for e in first["items"]] == [e["id"] for e in every[:2]]
    assert first["head"] == every[-1]["cursor"]  # the newest readable event, past the page

    async def record(session, event: Event) -> None:
        await session.execute(
            received.insert().values(event_id=event.id, type=event.type, subject=event.subject)
        )

    consumer = _sample_consumer(sample, minter, "behind", batch_size=2, handler=record)
    labels = dict(zip(("app", "consumer", "source"), consumer._labels, strict=True))

    def gauge() -> float | None:
        return REGISTRY.get_sample_value("consumer_behind_events", labels)

    try:
        assert await consumer.poll_once() == (2, True)
        assert consumer.behind == 3
        assert gauge() == 3
        assert await consumer.catch_up() == 3
        assert consumer.behind == 0
        assert gauge() == 0
        await sample.client.post("/widgets", json={"name": "late"}, headers=sample.headers())
        await consumer.poll_once()
        assert gauge() == 0  # read the new event: caught up again
    finally:
        await consumer.stop()


async def test_a_page_handler_gets_each_pages_new_events_at_once(sample, minter):
    for i in range(5):
        await sample.client.post("/widgets", json={"name": f"w{i}"}, headers=sample.headers())
    pages: list[list[str | None]] = []

    async def record(session, events: list[Event]) -> None:
        pages.append([e.subject for e in events])
        for event in events:
            await session.execute(
                received.insert().values(event_id=event.id, type=event.type, subject=event.subject)
            )

    first = _sample_consumer(sample, minter, "pages", batch_size=3, page_handler=record)
    try:
        assert await first.catch_up() == 5
        assert [len(p) for p in pages] == [3, 2]
        # Replayed from zero: nothing is new, the handler is not even called.
        async with sample.app.state.db.session() as s:
            await s.execute(sa.update(kit_tables(SCHEMA).consumer_cursors).values(cursor=None))
        assert await first.catch_up() == 0
        assert len(pages) == 2
    finally:
        await first.stop()
    with pytest.raises(ValueError, match="handler"):
        EventConsumer(sample.app.state.db, name="x", source="kitsample", feed_url="/")


async def test_a_consumer_wakes_on_notify_long_before_its_poll_interval(sample, minter):
    db: Database = sample.app.state.db
    woke = asyncio.Event()

    async def record(session, event: Event) -> None:
        await session.execute(
            received.insert().values(event_id=event.id, type=event.type, subject=event.subject)
        )
        woke.set()

    consumer = EventConsumer(
        db,
        name="notified",
        source="kitsample",
        feed_url=f"{sample.url}/events",
        handler=record,
        headers=minter.headers(READER, "kitsample"),
        notify_channel=notify_channel(SCHEMA),
        poll_interval=60,
    )
    consumer.start()
    try:
        # First poll done, LISTEN registered: now idle for 60 s unless woken.
        await wait_until(lambda: consumer.state == "following" and consumer.listening)
        await sample.client.post("/widgets", json={"name": "ping"}, headers=sample.headers())
        await asyncio.wait_for(woke.wait(), timeout=5)
    finally:
        await consumer.stop()
