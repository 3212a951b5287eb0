"""A clock for tests: time stands still until the test moves it.

Inject it with `create_app(spec, settings, clock=FakeClock())` (the harness's `serve_service`
takes `clock=`). Code that sleeps on it (consumer backoff, poll waits, background loops) wakes
when `advance()` moves the clock past its deadline, so a test never waits for real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from servicekit.clock import Clock


class FakeClock(Clock):
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        if self._now.tzinfo is None:
            raise ValueError("the clock's time must be timezone-aware")
        self._monotonic = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._slept = asyncio.Event()  # set whenever someone starts sleeping

    def now(self) -> datetime:
        return self._now

    def timestamp(self) -> float:
        return self._now.timestamp()

    def monotonic(self) -> float:
        return self._monotonic

    def set(self, when: datetime) -> None:
        """Jump to `when` (forwards only: sleepers' deadlines are on the monotonic side)."""
        self.advance((when - self._now).total_seconds())

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move time forwards (`advance(30)`, `advance(days=1)`) and wake the sleepers due."""
        step = seconds + timedelta(**delta).total_seconds()
        if step < 0:
            raise ValueError("time only moves forwards")
        self._now += timedelta(seconds=step)
        # In whole microseconds, as the time of day moves: a sleep until a time read from
        # `now()` then ends exactly when `set()` reaches that time, never an ulp short of it.
        self._monotonic = round(self._monotonic + step, 6)
        while self._sleepers and self._sleepers[0][0] <= self._monotonic:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    @property
    def sleeping(self) -> int:
        """How many tasks are asleep on this clock now."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def until_sleeping(self, count: int = 1, within: float = 10.0) -> None:
        """Wait (in real time, up to `within` seconds) until `count` tasks are asleep on the clock:
        the moment a background loop has reached its sleep, whatever the machine's speed."""
        async with asyncio.timeout(within):
            while self.sleeping < count:
                self._slept.clear()
                await self._slept.wait()

    def _timer(self, seconds: float) -> asyncio.Future[None]:
        """A future that completes when the clock reaches `seconds` from now; the deadline is
        taken at once, so a move of the clock right after the call still counts."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            future.set_result(None)
            return future
        deadline = round(self._monotonic + seconds, 6)
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        self._slept.set()
        return future

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future = self._timer(seconds)
        try:
            await future
        finally:
            future.cancel()

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        timer = self._timer(seconds)
        waiter: asyncio.Future[Any] = asyncio.ensure_future(event.wait())
        pending: set[asyncio.Future[Any]] = {waiter, timer}
        try:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (waiter, timer):
                future.cancel()
        return event.is_set()
