"""The time the kit and the apps read, injectable so tests control it instead of sleeping.

`utcnow()` is the one way code asks the time of day: it reads the clock of the app that is
running the current request or background task (`create_app(..., clock=...)` installs it for
the app's requests and for everything its lifespan starts). Background loops also sleep and
measure intervals through their app's clock. Without an injected clock it is the system's.
`servicekit.testing.clock.FakeClock` is the test double: time moves only when told to.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextvars import ContextVar, Token
from datetime import UTC, datetime


class Clock:
    """The system clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        return datetime.now(UTC)

    def timestamp(self) -> float:
        """Seconds since the epoch (token lifetimes)."""
        return time.time()

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait until `event` is set or `seconds` passed; whether it was set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=seconds)
        return event.is_set()


SYSTEM_CLOCK = Clock()
_current: ContextVar[Clock] = ContextVar("servicekit_clock", default=SYSTEM_CLOCK)


def current_clock() -> Clock:
    return _current.get()


def use_clock(clock: Clock) -> Token[Clock]:
    """Make `clock` the current one in this context (and in tasks created from it)."""
    return _current.set(clock)


def reset_clock(token: Token[Clock]) -> None:
    _current.reset(token)


def utcnow() -> datetime:
    return _current.get().now()
