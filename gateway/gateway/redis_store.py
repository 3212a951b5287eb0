"""Rate-limit counters in Redis, for deployments that set `REDIS_URL`.

The same contract as the Postgres store (`ratelimit.CounterStore`): each replica folds its local
counts in with one round trip per sync, here a MULTI of INCRBY + EXPIREAT per (subject, window),
and learns the shared totals from the replies. Redis forgets a window by itself a minute after it
ends, so `purge` has nothing to do.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

# Kept a little past the window's end, like the Postgres rows, so that a replica whose clock is a
# bit behind still adds to the same counter instead of starting a fresh one.
GRACE_SECONDS = 60


class RedisCounterStore:
    def __init__(self, url: str, *, prefix: str = "fieldforce:ratelimit:") -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._prefix = prefix

    def _key(self, key: str, window_start: int) -> str:
        return f"{self._prefix}{key}:{window_start}"

    async def add(self, batch: list[tuple[str, int, int, int]]) -> dict[tuple[str, int], int]:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for key, start, hits, window in batch:
                    name = self._key(key, start)
                    pipe.incrby(name, hits)
                    pipe.expireat(name, start + window + GRACE_SECONDS)
                replies = await pipe.execute()
        except RedisError as exc:
            # The limiter fails open on OSError: an unreachable Redis must not refuse traffic.
            raise ConnectionError(f"redis: {exc}") from exc
        return {(key, start): int(replies[2 * i]) for i, (key, start, _h, _w) in enumerate(batch)}

    async def purge(self) -> None:
        """Nothing to do: every counter carries its own expiry."""

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except RedisError:
            return False

    async def aclose(self) -> None:
        await self._redis.aclose()
