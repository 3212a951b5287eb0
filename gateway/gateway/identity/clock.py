"""The clock identity's time-bound rules read (failed sign-ins, session lifetimes).

Kept on the `Authenticator` (`authn.clock`) so that a test can put another one in its place
and move time on instead of waiting for it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from servicekit.db import utcnow


class Clock:
    """The real time (UTC, timezone-aware) and a real wait."""

    def now(self) -> datetime:
        return utcnow()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
