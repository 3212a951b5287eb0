"""Failed sign-ins: counted in Postgres per account and per client address, slowed, then
refused with 429 for a while (shared by every replica)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config import Settings
from gateway.identity.auth import repository
from gateway.identity.auth.exceptions import LoginThrottled


@dataclass(frozen=True, slots=True)
class Throttle:
    pool: Any
    settings: Settings

    def keys(self, email: str, address: str | None) -> list[tuple[str, int]]:
        s = self.settings
        keys = [(f"account:{email.strip().lower()}", s.login_max_failures_per_account)]
        if address:
            keys.append((f"address:{address}", s.login_max_failures_per_address))
        return keys

    async def check(self, keys: list[tuple[str, int]]) -> float:
        """429 while a key is locked; else how long to hold this attempt back."""
        s = self.settings
        rows = await self.pool.fetch(
            repository.THROTTLE_STATE,
            [k for k, _ in keys],
            float(s.login_failure_window_seconds),
        )
        failures = 0
        for row in rows:
            if row["locked_for"] is not None and row["locked_for"] > 0:
                raise LoginThrottled(row["locked_for"])
            if not row["window_over"]:
                failures = max(failures, row["failures"])
        over = failures - s.login_slowdown_after
        if over < 0:
            return 0.0
        return float(min(s.login_slowdown_max_seconds, s.login_slowdown_base_seconds * 2**over))

    async def charge(self, keys: list[tuple[str, int]]) -> None:
        """Count this attempt as a failure until its password proves right; 429 when attempts
        that raced past `check` went over a limit."""
        s = self.settings
        over: float | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            for key, limit in keys:
                row = await conn.fetchrow(
                    repository.THROTTLE_CHARGE,
                    key,
                    limit,
                    float(s.login_failure_window_seconds),
                    float(s.login_lockout_seconds),
                )
                if row["failures"] > limit and (row["locked_for"] or 0) > 0:
                    over = max(over or 0.0, row["locked_for"])
        if over is not None:
            raise LoginThrottled(over)

    async def refund(self, keys: list[tuple[str, int]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(repository.THROTTLE_RESET, keys[0][0])
            for key, limit in keys[1:]:
                await conn.execute(repository.THROTTLE_REFUND, key, limit)
