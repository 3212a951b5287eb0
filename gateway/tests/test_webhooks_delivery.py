"""Webhook delivery through a real receiver: signed events that verify with the documented
steps, retries on the schedule with the same Webhook-Id, per-endpoint order, disabling after
three days of failures, secret rotation, the test event, replays, metrics, a service's feed.

The gateway runs on a fake clock: retries come when the test moves time, never by waiting."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.webhooks.fanout import FanOut
from servicekit.outbox import Event
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import wait_until
from servicekit.testing.tokens import TokenMinter

from .conftest import assert_problem, serve_customers
from .webhooks_kit import (
    API,
    Hooks,
    Receiver,
    as_admin,
    receiving,
    serving_services,
    step_until,
    verify_webhook,
    webhook_gateway,
    webhook_settings,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


@pytest.fixture
async def hooks(fresh_db: str, minter: TokenMinter, clock: FakeClock) -> AsyncIterator[Hooks]:
    async with webhook_gateway(webhook_settings(fresh_db, minter), clock) as api:
        yield await as_admin(api)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_subscribed_event_arrives_signed_and_verifies(
    hooks: Hooks, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await hooks.create(f"{receiver.url}/in", ["user.created"], description="CRM")
    secret = hook["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    user = await hooks.user()
    await hooks.user("manager")

    (got, _) = await receiver.until(2, "user.created")
    event = got.json()
    [fed] = [e for e in await hooks.identity_events("user.created") if e["id"] == event["id"]]
    assert event["subject"] == fed["subject"] == user["id"]
    assert event["data"] == fed["data"] and "cursor" not in event
    assert event["specversion"] == "1.0" and event["source"] == fed["source"]
    assert got.headers["webhook-id"] == event["id"]
    assert got.headers["content-type"].startswith("application/cloudevents+json")
    assert got.path == "/in"

    # The documented receiver steps accept it, and so does the scheme's own library.
    sent_at = int(got.headers["webhook-timestamp"])
    assert sent_at == int(clock.timestamp())
    assert verify_webhook(secret, got.headers, got.body)
    assert Webhook(secret).verify(got.body, got.headers) == event
    signed = f"{got.id}.{sent_at}.".encode() + got.body
    digest = hmac.new(base64.b64decode(secret[6:]), signed, hashlib.sha256).digest()
    assert got.headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()

    # A tampered body, another secret, an old or a future timestamp: refused.
    tampered = got.body.replace(b'"user.created"', b'"user.deleted"')
    assert not verify_webhook(secret, got.headers, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, got.headers)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    assert not verify_webhook(other, got.headers, got.body)
    assert not verify_webhook(secret, got.headers, got.body, now=sent_at + 301)
    assert verify_webhook(secret, got.headers, got.body, now=sent_at + 299)
    assert not verify_webhook(secret, got.headers, got.body, now=sent_at - 301)
    # A timestamp moved forward to pass the age check breaks the signature instead.
    moved = {**got.headers, "webhook-timestamp": str(sent_at + 600)}
    assert not verify_webhook(secret, moved, got.body, now=sent_at + 600)

    # The log: delivered at the first attempt, with the answer's status, time and text.
    [delivery] = await hooks.deliveries(hook["id"], event_id=event["id"])
    assert delivery["state"] == "delivered" and delivery["origin"] == "feed"
    assert delivery["event_type"] == "user.created" and delivery["next_attempt_at"] is None
    [attempt] = delivery["attempts"]
    assert attempt["outcome"] == "success" and attempt["status_code"] == 200
    assert attempt["response"] == "thanks" and attempt["duration_ms"] >= 0
    # Types the subscription did not ask for were not sent.
    assert {r.json()["type"] for r in receiver.received} == {"user.created"}


async def test_an_old_timestamp_is_refused_by_the_receiver(
    fresh_db: str, minter: TokenMinter, receiver: Receiver
) -> None:
    """A gateway whose clock is six minutes behind signs messages a receiver must refuse."""
    slow = FakeClock(datetime.now().astimezone() - timedelta(minutes=6))
    async with webhook_gateway(webhook_settings(fresh_db, minter), slow) as api:
        hooks = await as_admin(api)
        hook = await hooks.create(receiver.url, ["user.created"])
        await hooks.user()
        [got] = await receiver.until(1)
    assert not verify_webhook(hook["secret"], got.headers, got.body)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(hook["secret"]).verify(got.body, got.headers)


async def test_500_then_200_is_two_deliveries_with_one_id_and_both_attempts_logged(
    hooks: Hooks, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script = [(500, b"E" * 3000)]
    hook = await hooks.create(receiver.url, ["user.created"])
    await hooks.user()
    [first] = await receiver.until(1)

    async def failed_once() -> dict[str, Any] | None:
        items = await hooks.deliveries(hook["id"])
        return items[0] if items and items[0]["attempts"] else None

    pending = await wait_until(failed_once)
    assert pending["state"] == "pending" and pending["attempt_count"] == 1
    [attempt] = pending["attempts"]
    assert attempt["outcome"] == "http_error" and attempt["status_code"] == 500
    assert attempt["response"] == "E" * 1024  # the first KiB of the answer, no more
    wait = (_at(pending["next_attempt_at"]) - _at(attempt["at"])).total_seconds()
    assert 4.5 <= wait <= 5.5  # about 5 s, with jitter
    assert (await hooks.get(hook["id"]))["failing_since"] == attempt["at"]

    clock.advance(wait - 1)
    await wait_until(lambda: clock.sleeping > 0)
    assert len(receiver.received) == 1  # not due yet
    clock.set(_at(pending["next_attempt_at"]))
    [_, second] = await receiver.until(2)
    assert second.id == first.id and second.body == first.body
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert verify_webhook(hook["secret"], second.headers, second.body, now=clock.timestamp())

    async def delivered() -> dict[str, Any] | None:
        [d] = await hooks.deliveries(hook["id"])
        return d if d["state"] == "delivered" else None

    done = await wait_until(delivered)
    assert [a["status_code"] for a in done["attempts"]] == [500, 200]
    assert [a["outcome"] for a in done["attempts"]] == ["http_error", "success"]
    assert done["attempt_count"] == 2 and done["event_id"] == first.id
    healthy = await hooks.get(hook["id"])
    assert healthy["failing_since"] is None and healthy["last_success_at"] is not None


async def test_an_endpoint_receives_the_feeds_order_even_across_retries(
    hooks: Hooks, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script = [(503, b"busy")]
    hook = await hooks.create(receiver.url, ["user.*"])
    users = [await hooks.user() for _ in range(4)]
    await receiver.until(1)

    # The head failed: the others wait behind it, however long.
    async def head_failed() -> bool:
        items = await hooks.deliveries(hook["id"], state="pending")
        return len(items) == 4 and any(i["attempts"] for i in items)

    await wait_until(head_failed)
    assert len(receiver.received) == 1
    await step_until(clock, lambda: _count(receiver, 5), step=2.0)
    subjects = [r.json()["subject"] for r in receiver.received]
    assert subjects == [users[0]["id"], *[u["id"] for u in users]]
    fed = [e["id"] for e in await hooks.identity_events("user.created")]
    sent = [r.id for r in receiver.received[1:]]
    assert sent == [i for i in fed if i in sent]


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def test_every_retry_on_the_schedule_then_failed_then_disabled_after_three_days(
    fresh_db: str, minter: TokenMinter, receiver: Receiver, clock: FakeClock
) -> None:
    # Time moves by hours here, also while an attempt is on its way: a lease longer than the
    # test keeps the (fake) clock from taking the endpoint off its worker mid-attempt.
    settings = webhook_settings(fresh_db, minter, webhook_lease_seconds=30 * 86400)
    async with webhook_gateway(settings, clock) as api:
        await _fails_for_three_days(await as_admin(api), receiver, clock)


async def _fails_for_three_days(hooks: Hooks, receiver: Receiver, clock: FakeClock) -> None:
    receiver.default = (500, b"down")
    hook = await hooks.create(receiver.url, ["user.created"])
    await hooks.user()
    schedule = [5, 300, 1800, 7200, 18000, 36000, 36000]
    ratios: list[float] = []
    for n in range(1, 9):
        await receiver.until(n)

        async def logged(n: int = n) -> dict[str, Any] | None:
            [d] = await hooks.deliveries(hook["id"])
            return d if len(d["attempts"]) == n else None

        delivery = await wait_until(logged)
        if n == 8:
            break
        wait = _at(delivery["next_attempt_at"]) - _at(delivery["attempts"][-1]["at"])
        ratios.append(wait.total_seconds() / schedule[n - 1])
        assert 0.9 <= ratios[-1] <= 1.1
        clock.set(_at(delivery["next_attempt_at"]))
    assert delivery["state"] == "failed" and delivery["next_attempt_at"] is None
    # Jitter: the waits are the schedule's, each moved by its own random share.
    assert len({round(r, 6) for r in ratios}) > 1
    assert len({r.id for r in receiver.received}) == 1
    # About 27.6 hours of failures: not yet three days, the endpoint stays on.
    still = await hooks.get(hook["id"])
    assert still["active"] and still["failing_since"] == delivery["attempts"][0]["at"]

    # The next events fail too (each retried for about 27.6 hours, in order) until three days
    # have passed since the first failure: the third event's attempts cross that line.
    await hooks.user()
    await hooks.user()

    async def disabled() -> dict[str, Any] | None:
        found = await hooks.get(hook["id"])
        return None if found["active"] else found

    off = await step_until(clock, disabled, step=1800.0, within=90.0)
    assert off["disabled_at"] and "failed" in off["disabled_reason"]
    since = _at(still["failing_since"])
    assert _at(off["disabled_at"]) - since >= timedelta(days=3)
    [announced] = await hooks.identity_events("webhook.disabled")
    assert announced["subject"] == hook["id"]
    assert announced["data"]["webhook_id"] == hook["id"] and "url" not in announced["data"]
    # Disabled: nothing more is sent, however much time passes.
    sent = len(receiver.received)
    clock.advance(days=1)
    # A new event is not queued for a disabled endpoint (a replay can fetch it): once another
    # subscription has received it, the fan-out has passed it.
    async with receiving() as witness:
        await hooks.create(witness.url, ["user.created"])
        late = await hooks.user()
        [seen] = await witness.until(1)
        assert seen.json()["subject"] == late["id"]
    assert len(receiver.received) == sent
    [pending] = await hooks.deliveries(hook["id"], state="pending")

    # Turned on again: the waiting queue resumes at once and succeeds.
    receiver.default = (200, b"back")
    on = await hooks.patch(hook["id"], active=True)
    assert on["active"] and on["disabled_at"] is None and on["failing_since"] is None
    await receiver.until(sent + 1)
    assert receiver.received[sent].id == pending["event_id"]

    # Every attempt was logged, each event sent by one worker at a time: 8 + 8, then the
    # third's failures before the endpoint was disabled and its success.
    async def recorded() -> list[dict[str, Any]] | None:
        log = await hooks.deliveries(hook["id"])
        return log if log[0]["state"] != "pending" else None

    log = await wait_until(recorded)
    assert [(d["state"], d["attempt_count"]) for d in log] == [
        ("delivered", pending["attempt_count"] + 1),
        ("failed", 8),
        ("failed", 8),
    ]
    assert 1 <= pending["attempt_count"] < 8
    assert len(receiver.received) == 8 + 8 + pending["attempt_count"] + 1
    assert len({r.id for r in receiver.received}) == 3


async def test_a_rotated_secret_and_the_previous_one_both_sign_during_the_overlap(
    hooks: Hooks, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await hooks.create(receiver.url, ["user.created"])
    old = hook["secret"]
    r = await hooks.client.post(
        f"{API}/{hook['id']}/rotate-secret", json={"overlap_seconds": 3600}, headers=hooks.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert r.json()["previous_secret_expires_at"]
    await hooks.user()
    [during] = await receiver.until(1)
    assert len(during.headers["webhook-signature"].split()) == 2
    for secret in (old, new):
        assert verify_webhook(secret, during.headers, during.body, now=clock.timestamp())
        Webhook(secret).verify(during.body, during.headers)

    clock.advance(3601)
    await hooks.user()
    [_, after] = await receiver.until(2)
    assert len(after.headers["webhook-signature"].split()) == 1
    assert verify_webhook(new, after.headers, after.body, now=clock.timestamp())
    assert not verify_webhook(old, after.headers, after.body, now=clock.timestamp())

    # The default overlap (a day), and none at all.
    r = await hooks.client.post(f"{API}/{hook['id']}/rotate-secret", headers=hooks.headers)
    expires = _at(r.json()["previous_secret_expires_at"])
    assert expires - clock.now() == timedelta(days=1)
    r = await hooks.client.post(
        f"{API}/{hook['id']}/rotate-secret", json={"overlap_seconds": 0}, headers=hooks.headers
    )
    assert r.json()["previous_secret_expires_at"] is None
    assert_problem(
        await hooks.client.post(
            f"{API}/{hook['id']}/rotate-secret",
            json={"overlap_seconds": -1},
            headers=hooks.headers,
        ),
        422,
    )


async def test_the_test_event_is_sent_at_once_and_answers_what_the_endpoint_said(
    hooks: Hooks, receiver: Receiver, clock: FakeClock
) -> None:
    hook = await hooks.create(receiver.url, ["visit.completed"])
    r = await hooks.client.post(f"{API}/{hook['id']}/test", headers=hooks.headers)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["success"] and answer["status_code"] == 200 and answer["response"] == "thanks"
    [got] = receiver.received
    assert got.json()["type"] == "webhook.test" and got.id == answer["event_id"]
    assert got.json()["data"] == {"webhook_id": hook["id"]}
    assert verify_webhook(hook["secret"], got.headers, got.body, now=clock.timestamp())

    receiver.script = [(418, b"no tea")]
    failed = (await hooks.client.post(f"{API}/{hook['id']}/test", headers=hooks.headers)).json()
    assert not failed["success"] and failed["status_code"] == 418
    assert failed["outcome"] == "http_error" and failed["response"] == "no tea"
    log = await hooks.deliveries(hook["id"])
    assert [(d["origin"], d["state"]) for d in log] == [("test", "failed"), ("test", "delivered")]
    # A test is never retried.
    clock.advance(3600)
    await hooks.user()
    assert len(receiver.received) == 2


async def test_replay_sends_past_events_again_from_a_time_or_an_event(
    fresh_db: str, minter: TokenMinter, receiver: Receiver, clock: FakeClock
) -> None:
    # The real services: a replay reads every feed to its end.
    async with (
        serving_services(fresh_db, minter) as upstreams,
        webhook_gateway(webhook_settings(fresh_db, minter, **upstreams), clock) as api,
    ):
        await _replays(await as_admin(api), receiver, clock)


async def _replays(hooks: Hooks, receiver: Receiver, clock: FakeClock) -> None:
    hook = await hooks.create(receiver.url, ["user.created"])
    clock.advance(1)  # after the first admin's user.created
    start = clock.now()
    users = [await hooks.user() for _ in range(3)]
    first = await receiver.until(3)
    ids = [r.id for r in first]
    assert [r.json()["subject"] for r in first] == [u["id"] for u in users]

    r = await hooks.client.post(
        f"{API}/{hook['id']}/replay",
        params={"from": start.isoformat()},
        headers=hooks.headers,
    )
    assert r.status_code == 202, r.text
    replay = r.json()
    assert r.headers["location"] == f"{API}/{hook['id']}/replays/{replay['id']}"
    again = await receiver.until(6)
    assert [x.id for x in again[3:]] == ids
    assert [x.body for x in again[3:]] == [x.body for x in first]

    async def finished() -> dict[str, Any] | None:
        found = (await hooks.client.get(r.headers["location"], headers=hooks.headers)).json()
        return found if found["state"] == "done" else None

    done = await wait_until(finished)
    assert done["enqueued"] == 3 and done["finished_at"]
    log = await hooks.deliveries(hook["id"])
    assert [d["origin"] for d in log] == ["replay"] * 3 + ["feed"] * 3
    assert {d["replay_id"] for d in log[:3]} == {replay["id"]}

    # From an event of the log: that event and the ones after it.
    r = await hooks.client.post(
        f"{API}/{hook['id']}/replay", params={"from": ids[1]}, headers=hooks.headers
    )
    assert r.status_code == 202, r.text
    assert r.json()["from_event_id"] == ids[1]
    more = await receiver.until(8)
    assert [x.id for x in more[6:]] == ids[1:]

    for bad, field in (("yesterday", "from"), ("2025-01-01T00:00:00", "from")):
        problem = assert_problem(
            await hooks.client.post(
                f"{API}/{hook['id']}/replay", params={"from": bad}, headers=hooks.headers
            ),
            422,
        )
        assert problem["errors"][0]["loc"] == [field]
    unknown = assert_problem(
        await hooks.client.post(
            f"{API}/{hook['id']}/replay",
            params={"from": "0193b0c4-5f0e-7c3a-9d11-2b6e8a1f4c55"},
            headers=hooks.headers,
        ),
        422,
    )
    assert "not in the delivery log" in unknown["detail"]
    future = (clock.now() + timedelta(days=1)).isoformat()
    assert_problem(
        await hooks.client.post(
            f"{API}/{hook['id']}/replay", params={"from": future}, headers=hooks.headers
        ),
        422,
    )
    assert_problem(
        await hooks.client.post(f"{API}/{hook['id']}/replay", headers=hooks.headers), 422
    )


async def test_metrics_count_attempts_and_show_the_oldest_waiting_delivery(
    hooks: Hooks, receiver: Receiver, clock: FakeClock
) -> None:
    receiver.script = [(500, b"no")]
    hook = await hooks.create(receiver.url, ["user.created"])
    await hooks.user()
    await receiver.until(1)

    async def gauge() -> str | None:
        clock.advance(1)  # the stats loop runs every (fake) second
        text = (await hooks.client.get("/metrics")).text
        line = f'webhook_oldest_undelivered_age_seconds{{endpoint="{hook["id"]}"}}'
        return text if line in text else None

    text = await wait_until(gauge)
    assert 'webhook_delivery_attempts_total{outcome="http_error"}' in text
    assert "webhook_delivery_attempt_duration_seconds_bucket" in text
    await step_until(clock, lambda: _count(receiver, 2), step=1.0)

    async def gone() -> str | None:
        clock.advance(1)
        text = (await hooks.client.get("/metrics")).text
        return text if f'endpoint="{hook["id"]}"' not in text else None

    text = await wait_until(gone)
    assert 'webhook_deliveries_total{outcome="delivered"}' in text
    assert 'webhook_delivery_attempts_total{outcome="success"}' in text


async def test_a_services_feed_is_followed_with_an_internal_token(
    fresh_db: str, minter: TokenMinter, receiver: Receiver, clock: FakeClock
) -> None:
    async with serve_customers(fresh_db, minter) as customers:
        settings = webhook_settings(fresh_db, minter, upstream_customers=customers)
        async with webhook_gateway(settings, clock) as api:
            hooks = await as_admin(api)
            hook = await hooks.create(receiver.url, ["customer.*"])
            created = await hooks.client.post(
                "/api/v1/customers",
                json={"name": "Webhook Co.", "region": "east"},
                headers=hooks.headers,
            )
            assert created.status_code == 201, created.text
            [got] = await receiver.until(1, "customer.created")
            assert got.json()["subject"] == created.json()["id"]
            assert got.json()["source"] == "customers"
            assert verify_webhook(hook["secret"], got.headers, got.body, now=clock.timestamp())
            ready = (await api.client.get("/readyz")).json()
            assert ready["webhooks"]["feeds"]["customers"] == "following"
            assert ready["webhooks"]["delivery"] == "on"


async def test_no_answer_within_the_timeout_is_a_failed_attempt(
    fresh_db: str, minter: TokenMinter, clock: FakeClock
) -> None:
    async with receiving(gate=asyncio.Event()) as slow:
        settings = webhook_settings(fresh_db, minter, webhook_timeout_seconds=0.3)
        async with webhook_gateway(settings, clock) as api:
            hooks = await as_admin(api)
            hook = await hooks.create(slow.url, ["user.created"])
            await hooks.user()

            async def timed_out() -> dict[str, Any] | None:
                items = await hooks.deliveries(hook["id"])
                return items[0] if items and items[0]["attempts"] else None

            delivery = await wait_until(timed_out)
            [attempt] = delivery["attempts"]
            assert attempt["outcome"] == "timeout" and attempt["status_code"] is None
            assert delivery["state"] == "pending"
            assert slow.gate is not None
            slow.gate.set()


async def test_redirects_are_not_followed(hooks: Hooks, receiver: Receiver) -> None:
    hook = await hooks.create(receiver.url + "/redirect", ["user.created"])
    r = await hooks.client.post(f"{API}/{hook['id']}/test", headers=hooks.headers)
    assert r.json()["status_code"] == 307 and not r.json()["success"]
    assert [x.path for x in receiver.received] == ["/redirect"]


async def test_one_page_of_mixed_events_is_queued_for_each_endpoint_by_its_own_types(
    hooks: Hooks, receiver: Receiver
) -> None:
    # The fan-out looks a page's subscriptions up once and matches each event to them.
    customers = await hooks.create(receiver.url, ["customer.*"])
    sales = await hooks.create(receiver.url, ["lead.received", "opportunity.won"])
    now = datetime.now(UTC)
    types = ["customer.created", "lead.received", "visit.logged", "customer.contact.added"]
    types += ["opportunity.won", "opportunity.lost", "customer.updated"]
    page = [
        Event(uuid.uuid4(), t, "test", str(uuid.uuid4()), now, {"n": i}, "1", f"c{i}")
        for i, t in enumerate(types)
    ]
    async with hooks.api.app.state.db.session() as session:
        await FanOut("test")(session, page)

    def queued(items: list[dict[str, Any]]) -> list[str]:
        return sorted(i["event_id"] for i in items)

    def sent_of(*wanted: str) -> list[str]:
        return sorted(str(e.id) for e in page if e.type in wanted)

    assert queued(await hooks.deliveries(customers["id"])) == sent_of(
        "customer.created", "customer.contact.added", "customer.updated"
    )
    assert queued(await hooks.deliveries(sales["id"])) == sent_of(
        "lead.received", "opportunity.won"
    )
