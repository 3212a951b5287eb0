"""An app that follows a feed it cannot read says so, at start in its log and on /readyz
(`degraded`, still 200), and recovers by itself; and the harness that serves such an app."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from servicekit.settings import KitSettings
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import serve_service, wait_until
from servicekit.testing.org import standard_org
from servicekit.testing.sample.app import received, sample_spec


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def kit_log() -> Iterator[Capture]:
    """What the kit's consumer logs (on its logger: the app's logging set-up replaces the root's
    handlers, never a module logger's)."""
    capture = Capture()
    logger = logging.getLogger("servicekit.consumer")
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)


async def test_a_feed_that_is_not_configured_is_a_warning_and_degraded(sample_db, minter, kit_log):
    spec = sample_spec(follow_identity=True)
    async with serve_service(
        spec, KitSettings, sample_db, minter, follow_feeds=False, app_name="kitsample"
    ) as app:
        ready = await app.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["feeds"] == {
            "identity": {
                "state": "not_configured",
                "detail": "GATEWAY_URL and EVENTS_API_KEY not set",
            }
        }
    assert kit_log.messages() == [
        "kitsample does not follow the identity feed: GATEWAY_URL and EVENTS_API_KEY not set; "
        "/readyz reports degraded"
    ]


@pytest.mark.parametrize("transport", ["http", "asgi"])
async def test_an_unreachable_feed_is_degraded_until_the_consumer_gets_through(
    sample_db, minter, kit_log, transport
):
    """The key is refused at first: the consumer backs off (on the app's clock, so the test
    moves time instead of waiting for it) and gets through once the key is accepted."""
    clock = FakeClock()
    org = standard_org()
    async with serve_service(
        sample_spec(follow_identity=True),
        KitSettings,
        sample_db,
        minter,
        clock=clock,
        transport=transport,
        app_name="kitsample",
    ) as app:
        assert app.feeds is not None
        consumer = app.app.state.identity_consumer
        right_key, app.feeds.api_key = app.feeds.api_key, "not-the-key"
        for type_, subject, data in org.identity_events():
            app.feeds.publish(type_, subject, data)

        def refused() -> bool:
            clock.advance(consumer.poll_interval)  # its next poll is due
            return bool(consumer.failures >= 1)

        await wait_until(refused, what="a refused poll")
        ready = (await app.get("/readyz")).json()
        assert ready["status"] == "degraded"
        assert ready["feeds"]["identity"]["state"] == "unreachable"
        assert "401" in ready["feeds"]["identity"]["detail"]
        async with app.session() as s:
            assert await app.directory.get_user(s, org.user_id("rep_a")) is None

        app.feeds.api_key = right_key

        def moved_on() -> bool:
            clock.advance(30)  # past any backoff
            return bool(consumer.state == "following")

        await wait_until(moved_on, what="the consumer reading the feed again")
        await wait_until(lambda: consumer.applied == len(org.identity_events()))
        assert (await app.get("/readyz")).json()["status"] == "ready"
        async with app.session() as s:
            boss = await app.directory.manager_of(s, org.user_id("rep_sub"))
            assert boss is not None and boss.id == org.user_id("manager_north")
    warnings = kit_log.messages()
    assert len(warnings) >= 1 and "cannot read the identity feed" in warnings[0]
    assert "/readyz reports degraded" in warnings[0]
    assert any("reachable again" in m for m in kit_log.messages(logging.INFO))


async def test_the_harness_mints_tokens_at_the_apps_time(sample_db, minter):
    """A test that moves the app's clock by days still calls it with valid tokens, and a token
    minted before the move has expired at the app's time."""
    clock = FakeClock()
    async with serve_service(
        sample_spec(), KitSettings, sample_db, minter, clock=clock, app_name="kitsample"
    ) as app:
        me = standard_org().rep_a
        stale = app.headers(me)
        clock.advance(days=2)
        resp = await app.post("/widgets", json={"name": "later"}, as_=me)
        assert resp.status_code == 201, resp.text
        assert resp.json()["created_at"].startswith(clock.now().date().isoformat())
        expired = await app.client.get(f"/widgets/{resp.json()['id']}", headers=stale)
        assert expired.status_code == 401
        assert "expired" in expired.json()["detail"]


async def test_a_read_model_of_another_feed_follows_it_and_catches_up_after_a_stop(
    sample_db, minter
):
    """A hook entering `following`: the app follows another app's feed through the gateway
    into its own table, reports it on /readyz, and after it was stopped while the source went
    on, applies what it missed from its kept cursor, nothing twice."""
    spec = sample_spec(follow_partner_feed=True)

    async def received_types(app) -> list[str]:
        async with app.session() as s:
            rows = await s.execute(sa.select(received.c.type).order_by(received.c.type))
            return [r[0] for r in rows]

    async with serve_service(spec, KitSettings, sample_db, minter, app_name="kitsample") as app:
        assert (await app.get("/readyz")).json()["feeds"]["partner"]["state"] == "following"
        event = await app.feed_event("partner", "thing.made", id="t-1", n=1)
        assert event.subject == "t-1"
        assert await received_types(app) == ["thing.made"]
        feeds = app.feeds
        assert feeds is not None

    # Down: the partner goes on.
    feeds.publish("thing.changed", "t-1", {"n": 2}, source="partner")
    feeds.publish("thing.gone", "t-1", {"n": 3}, source="partner")

    async with serve_service(
        spec, KitSettings, sample_db, minter, app_name="kitsample", feeds=feeds
    ) as again:
        # The harness let the consumer catch up at start: the two it missed, once each.
        assert again.app.state.feeds["partner"].applied == 2
        assert await received_types(again) == ["thing.changed", "thing.gone", "thing.made"]
        assert await again.sync_feed("partner") == 0
