"""Rate limits kept in a real Redis (`redis_url` in conftest.py starts one), on a clock the
tests hold (`window_clock`), so no test waits for a window to begin or end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.ratelimit import Policy, RateLimiter
from gateway.redis_store import GRACE_SECONDS, RedisCounterStore
from servicekit.devdb import free_port

from .conftest import window_clock


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisCounterStore]:
    s = RedisCounterStore(redis_url, prefix=f"test:{time.time_ns()}:")
    yield s
    await s.aclose()


async def test_the_store_adds_hits_and_answers_the_shared_totals(store, redis_url):
    start = int(time.time()) // 60 * 60
    first = await store.add([("user:a|60", start, 3, 60), ("user:b|60", start, 1, 60)])
    assert first == {("user:a|60", start): 3, ("user:b|60", start): 1}
    again = await store.add([("user:a|60", start, 2, 60)])
    assert again == {("user:a|60", start): 5}
    # Each counter forgets itself a minute after its window ends.
    client = aioredis.Redis.from_url(redis_url)
    try:
        ttl = await client.ttl(f"{store._prefix}user:a|60:{start}")
    finally:
        await client.aclose()
    assert abs(time.time() + ttl - (start + 60 + GRACE_SECONDS)) <= 2


async def test_two_replicas_share_one_quota_through_redis(redis_url):
    clock = window_clock(60)
    prefix = f"test:{time.time_ns()}:"
    stores = [RedisCounterStore(redis_url, prefix=prefix) for _ in range(2)]
    replicas = [RateLimiter(s, clock=clock) for s in stores]
    policy = Policy("rep", 5, 60)
    try:
        decisions = [await replicas[0].hit("user:x", policy) for _ in range(3)]
        assert [d.remaining for d in decisions] == [4, 3, 2]
        assert {d.reset for d in decisions} == {59}
        await replicas[0].sync()  # what the background sync does every interval
        second = [await replicas[1].hit("user:x", policy) for _ in range(3)]
        assert [d.allowed for d in second] == [True, True, False]
        assert second[2].remaining == 0
        # Another subject has its own counter.
        assert (await replicas[1].hit("user:y", policy)).remaining == 4
    finally:
        for s in stores:
            await s.aclose()


async def test_a_new_window_starts_a_new_count(redis_url):
    now = window_clock(60)()
    store = RedisCounterStore(redis_url, prefix=f"test:{time.time_ns()}:")
    limiter = RateLimiter(store, clock=lambda: now)
    policy = Policy("rep", 2, 60)
    try:
        assert [(await limiter.hit("user:w", policy)).allowed for _ in range(3)] == [
            True,
            True,
            False,
        ]
        now += 58.5  # the window's last second
        refused = await limiter.hit("user:w", policy)
        assert not refused.allowed and refused.reset == 1
        now += 1  # the next window
        fresh = await limiter.hit("user:w", policy)
        assert fresh.allowed and fresh.remaining == 1 and fresh.reset == 60
    finally:
        await store.aclose()


async def test_a_sync_during_the_first_hit_of_a_window_does_not_hide_the_shared_count(redis_url):
    """The background sync running while a window's first hit is being primed: the hit still
    learns the other replica's count before it is decided (it once went out with the sync, and
    the prime decided on a count of zero)."""
    clock = window_clock(60)
    prefix = f"test:{time.time_ns()}:"
    stores = [RedisCounterStore(redis_url, prefix=prefix) for _ in range(2)]
    first, second = (RateLimiter(s, clock=clock) for s in stores)
    policy = Policy("rep", 5, 60)
    try:
        for _ in range(3):
            await first.hit("user:x", policy)
        await first.sync()
        hit = asyncio.create_task(second.hit("user:x", policy))
        await asyncio.sleep(0)  # the hit has made its window's counter and started priming
        await second.sync()  # the background sync, at that moment
        decision = await hit
        assert decision.allowed and decision.remaining == 1
    finally:
        for s in stores:
            await s.aclose()


async def test_an_unreachable_redis_fails_open():
    unreachable = RedisCounterStore(f"redis://127.0.0.1:{free_port()}/0")
    limiter = RateLimiter(unreachable, prime_timeout=2.0)
    try:
        decision = await limiter.hit("user:z", Policy("rep", 2, 60))
        assert decision.allowed and decision.remaining == 1
    finally:
        await unreachable.aclose()
