"""Rate limits shared by every gateway replica, kept in Postgres, cheap on the hot path.

Fixed windows: a subject (user, API key, or client address) may make `quota` requests in each
`window`-second window. Each replica counts locally and folds its counts into one shared row
per (subject, window) every `sync_interval` seconds with a single batched UPSERT that returns the
global counts; between syncs a replica decides on `global count at last sync + its own counts
since`. Only the first request of a subject in a window waits for the database (so a window
starts from the true shared count); every other request is a dictionary lookup. Across replicas
the overshoot is bounded by what the other replicas admit within one sync interval.

Headers follow draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "rep";q=1200;w=60`
and `RateLimit: "rep";r=1199;t=42`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
import sqlalchemy as sa

from gateway.config import Settings
from gateway.models import SCHEMA, metadata
from servicekit.auth import Principal

log = logging.getLogger("gateway.ratelimit")

# Seconds since the epoch (`time.time`); windows are aligned to it. Tests hand in their own.
Clock = Callable[[], float]

rate_limit_counters = sa.Table(
    "rate_limit_counters",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("hits", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

_UPSERT = f"""
    INSERT INTO "{SCHEMA}".rate_limit_counters AS c (key, window_start, hits, expires_at)
    SELECT k, s, h, to_timestamp(s + w)
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS b(k, s, h, w)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = c.hits + excluded.hits
    RETURNING key, window_start, hits
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters
_PURGE = f"""
    DELETE FROM "{SCHEMA}".rate_limit_counters WHERE expires_at < now() - interval '1 minute'
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    quota: int
    window: int
    # The header fields' fixed parts, encoded once: every answer under a limit carries them.
    policy_field: bytes = field(init=False, repr=False, compare=False)
    remaining_prefix: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy_field", self.header.encode())
        object.__setattr__(self, "remaining_prefix", f'"{self.name}";r='.encode())

    @classmethod
    def parse(cls, name: str, spec: str) -> Policy:
        try:
            quota_s, _, window_s = spec.strip().partition("/")
            quota, window = int(quota_s), int(window_s or "60")
        except ValueError:
            raise ValueError(
                f"rate limit {name!r}: expected '<requests>/<seconds>', got {spec!r}"
            ) from None
        if quota < 1 or window < 1:
            raise ValueError(f"rate limit {name!r}: requests and seconds must be positive")
        return cls(name, quota, window)

    @property
    def header(self) -> str:
        return f'"{self.name}";q={self.quota};w={self.window}'


@dataclass(frozen=True, slots=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"ratelimit-policy", self.policy.policy_field),
            (
                b"ratelimit",
                b"%s%d;t=%d" % (self.policy.remaining_prefix, self.remaining, self.reset),
            ),
        ]


class Policies:
    """Which policy applies to whom: per API key override, else per role, else anonymous."""

    def __init__(self, settings: Settings) -> None:
        self.by_role = {
            role: Policy.parse(role, getattr(settings, f"rate_limit_{role}"))
            for role in ("admin", "manager", "rep", "integration")
        }
        self.anonymous = Policy.parse("anonymous", settings.rate_limit_anonymous)
        self.by_key = {
            key: Policy.parse(f"key-{key}"[:40], spec)
            for key, spec in settings.rate_limit_keys.items()
        }

    def for_principal(self, principal: Principal) -> Policy:
        if principal.kind == "key" and self.by_key:
            for ident in (principal.sub, principal.name):
                if ident is not None and ident in self.by_key:
                    return self.by_key[ident]
        return self.by_role.get(principal.role) or self.by_role["rep"]


class CounterStore(Protocol):
    async def add(self, batch: list[tuple[str, int, int, int]]) -> dict[tuple[str, int], int]:
        """Add (key, window_start, hits, window) and answer the global hits per (key, start)."""

    async def purge(self) -> None: ...


class PostgresCounterStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def add(self, batch: list[tuple[str, int, int, int]]) -> dict[tuple[str, int], int]:
        # Sorted, so that two replicas lock the same rows in the same order (no deadlock).
        batch = sorted(batch)
        rows = await self._pool.fetch(
            _UPSERT,
            [b[0] for b in batch],
            [b[1] for b in batch],
            [b[2] for b in batch],
            [b[3] for b in batch],
        )
        return {(r["key"], r["window_start"]): r["hits"] for r in rows}

    async def purge(self) -> None:
        await self._pool.execute(_PURGE)


@dataclass(slots=True)
class _Counter:
    window_start: int
    window: int
    known: int = 0  # global hits at the last sync (includes ours up to then)
    inflight: int = 0  # ours, being added by a sync right now
    pending: int = 0  # ours, not yet sent
    primed: asyncio.Event | None = field(default=None)

    @property
    def count(self) -> int:
        return self.known + self.inflight + self.pending


class RateLimiter:
    def __init__(
        self,
        store: CounterStore,
        *,
        sync_interval: float = 0.2,
        purge_interval: float = 60.0,
        prime_timeout: float = 1.0,
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sync_interval = sync_interval
        self.purge_interval = purge_interval
        self.prime_timeout = prime_timeout
        self._counters: dict[str, _Counter] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def hit_now(self, subject: str, policy: Policy) -> Decision | None:
        """The decision when it needs no waiting (the common case: a window already primed),
        else None and the caller awaits `hit`. Spares the hot path a coroutine per request."""
        now = self.clock()
        counter = self._counters.get(f"{subject}|{policy.window}")
        if (
            counter is None
            or counter.window_start != int(now // policy.window) * policy.window
            or (counter.primed is not None and not counter.primed.is_set())
        ):
            return None
        return self._decide(policy, counter, now, already_counted=False)

    async def hit(self, subject: str, policy: Policy) -> Decision:
        now = self.clock()
        window = policy.window
        start = int(now // window) * window
        key = f"{subject}|{window}"
        counter = self._counters.get(key)
        if counter is None or counter.window_start != start:
            counter = _Counter(start, window, primed=asyncio.Event())
            self._counters[key] = counter
            counter.pending += 1
            # The first request of the window learns the shared count before deciding.
            await self._prime(key, counter)
            return self._decide(policy, counter, now, already_counted=True)
        if counter.primed is not None and not counter.primed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(counter.primed.wait(), self.prime_timeout)
        return self._decide(policy, counter, now, already_counted=False)

    def _decide(
        self, policy: Policy, counter: _Counter, now: float, *, already_counted: bool
    ) -> Decision:
        reset = max(1, math.ceil(counter.window_start + counter.window - now))
        before = counter.count - (1 if already_counted else 0)
        if before >= policy.quota:
            # A refused request is not a hit: take back the one counted for priming if it has
            # not been sent yet (if it has, the window is over its quota anyway).
            if already_counted and counter.pending > 0:
                counter.pending -= 1
            return Decision(policy, False, 0, reset)
        if not already_counted:
            counter.pending += 1
        return Decision(policy, True, policy.quota - before - 1, reset)

    async def _prime(self, key: str, counter: _Counter) -> None:
        try:
            await asyncio.wait_for(self._flush([(key, counter)]), self.prime_timeout)
        except Exception as exc:
            # Fail open: a slow, absent or just restarted database (whose pooled connections
            # fail in the driver's own ways) must not take the product down with it.
            log.warning("rate limit store unavailable, counting locally: %s", exc)
        finally:
            if counter.primed is not None:
                counter.primed.set()

    async def _flush(self, items: list[tuple[str, _Counter]]) -> None:
        batch: list[tuple[str, int, int, int]] = []
        sent: list[tuple[str, _Counter]] = []
        for key, c in items:
            if c.pending:
                c.inflight += c.pending
                c.pending = 0
                batch.append((key, c.window_start, c.inflight, c.window))
                sent.append((key, c))
        if not batch:
            return
        try:
            result = await self.store.add(batch)
        except BaseException:
            for _key, c in sent:
                c.pending += c.inflight
                c.inflight = 0
            raise
        for key, c in sent:
            total = result.get((key, c.window_start))
            # The shared count includes what we just sent.
            c.known = total if total is not None else c.known + c.inflight
            c.inflight = 0

    async def sync(self) -> None:
        """Fold local counts into the shared counters; forget windows that have ended."""
        now = self.clock()
        items = []
        for key, c in list(self._counters.items()):
            if c.window_start + c.window <= now and not c.pending and not c.inflight:
                del self._counters[key]
            elif c.pending and not c.inflight and (c.primed is None or c.primed.is_set()):
                # A window still being primed is its first hit's to send: taken here, the
                # prime would find nothing to send and decide before knowing the shared count.
                items.append((key, c))
        await self._flush(items)

    async def _loop(self) -> None:
        last_purge = self.clock()
        while not self._stopping:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync()
                if self.clock() - last_purge > self.purge_interval:
                    last_purge = self.clock()
                    await self.store.purge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("rate limit sync failed: %s", exc)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._loop(), name="ratelimit-sync")

    async def stop(self) -> None:
        if self._task is not None:
            # The flag ends the loop even when a store's client swallows the cancellation (a
            # shutdown once waited on the loop until the test's time-out, with Redis).
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.sync()
