"""Rate limits kept in a real Redis (`redis_url` in conftest.py starts one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from gateway.ratelimit import Policy, RateLimiter
from gateway.redis_store import GRACE_SECONDS, RedisCounterStore
from servicekit.devdb import free_port


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


async def _in_a_fresh_window(seconds: float = 5.0) -> None:
    """Windows are aligned to the minute: wait for the next one when fewer than `seconds`
    are left of this one, so that every hit of a test counts in the same window."""
    left = 60 - time.time() % 60
    if left < seconds:
        await asyncio.sleep(left + 0.05)


async def test_two_replicas_share_one_quota_through_redis(redis_url):
    await _in_a_fresh_window()
    prefix = f"test:{time.time_ns()}:"
    stores = [RedisCounterStore(redis_url, prefix=prefix) for _ in range(2)]
    replicas = [RateLimiter(s, sync_interval=0.05) for s in stores]
    policy = Policy("rep", 5, 60)
    try:
        for r in replicas:
            r.start()
        decisions = [await replicas[0].hit("user:x", policy) for _ in range(3)]
        assert [d.remaining for d in decisions] == [4, 3, 2]
        await asyncio.sleep(0.2)  # replica 0's hits are folded into Redis
        second = [await replicas[1].hit("user:x", policy) for _ in range(3)]
        assert [d.allowed for d in second] == [True, True, False]
        assert second[2].remaining == 0
        # Another subject has its own counter.
        assert (await replicas[1].hit("user:y", policy)).remaining == 4
    finally:
        for r in replicas:
            await r.stop()
        for s in stores:
            await s.aclose()


async def test_a_sync_during_the_first_hit_of_a_window_does_not_hide_the_shared_count(redis_url):
    """The background sync running while a window's first hit is being primed: the hit still
    learns the other replica's count before it is decided (it once went out with the sync, and
    the prime decided on a count of zero)."""
    await _in_a_fresh_window()
    prefix = f"test:{time.time_ns()}:"
    stores = [RedisCounterStore(redis_url, prefix=prefix) for _ in range(2)]
    first, second = (RateLimiter(s) for s in stores)
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
