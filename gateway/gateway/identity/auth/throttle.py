"""Failed sign-ins: what locks, what only slows, and what a right password gives back.

Counted in Postgres (shared by every replica), inside `login_failure_window_seconds`:

- per (account, client address) pair: locked for `login_lockout_seconds` after
  `login_max_failures_per_pair` failures. Guessing one account from one place stops there.
- per client address: locked after `login_max_failures_per_address` failures on any accounts
  (a spray over many accounts from one place).
- per account, from all addresses: never locked, since a lock anyone can trigger keeps the
  owner out (an attacker could keep the admin out with one try a minute). Attempts on it are
  slowed instead, by a delay that doubles with its failures past `login_slowdown_after`, up to
  `login_slowdown_max_seconds`: the right password from a clean address still signs in.

Failed checks of the current password (`POST /me/password`) count the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from gateway.config import Settings
from gateway.identity.auth import repository
from gateway.identity.auth.exceptions import LoginThrottled
from gateway.identity.clock import Clock


@dataclass(frozen=True, slots=True)
class Attempt:
    """The counters one attempt is charged to."""

    pair: str
    account: str
    address: str | None


class SignInGuard:
    def __init__(self, pool: asyncpg.Pool, settings: Settings, clock: Clock) -> None:
        self.pool = pool
        self.settings = settings
        self.clock = clock

    @staticmethod
    def attempt(account: str, address: str | None) -> Attempt:
        """`account`: the normalised email the attempt names (known to us or not)."""
        return Attempt(
            pair=f"pair:{address or ''}|{account}",
            account=f"account:{account}",
            address=None if address is None else f"address:{address}",
        )

    def delay(self, account_failures: int) -> float:
        """How long an attempt on an account with this many recent failures is held back."""
        s = self.settings
        over = account_failures - s.login_slowdown_after
        if over < 0:
            return 0.0
        # Capped before the power, so that a huge count cannot overflow the float.
        exponent = min(over, 64)
        return float(min(s.login_slowdown_max_seconds, s.login_slowdown_base_seconds * 2**exponent))

    async def admit(self, attempt: Attempt) -> None:
        """429 while the pair or the address is locked; else wait the account's delay and count
        the attempt as a failure until its password proves right (`succeeded`). 429 too when
        attempts that raced past the check went over a limit meanwhile."""
        s = self.settings
        window = float(s.login_failure_window_seconds)
        keys = [attempt.pair, attempt.account]
        if attempt.address is not None:
            keys.append(attempt.address)
        state = await repository.throttle_state(self.pool, keys, window, self.clock.now())
        locked_for = 0.0
        for key in (attempt.pair, attempt.address):
            seconds = state[key][1] if key is not None and key in state else None
            if seconds is not None and seconds > locked_for:
                locked_for = seconds
        if locked_for > 0:
            raise LoginThrottled(locked_for)
        delay = self.delay(state.get(attempt.account, (0, None))[0])
        if delay > 0:
            await self.clock.sleep(delay)
        charges: list[tuple[str, int | None]] = [
            (attempt.pair, s.login_max_failures_per_pair),
            (attempt.account, None),
        ]
        if attempt.address is not None:
            charges.append((attempt.address, s.login_max_failures_per_address))
        counted = await repository.charge_failures(
            self.pool,
            charges,
            window_seconds=window,
            lockout_seconds=float(s.login_lockout_seconds),
            now=self.clock.now(),
        )
        over = [
            locked_for or 0.0
            for (_, limit), (failures, locked_for) in zip(charges, counted, strict=True)
            if limit is not None and failures > limit and (locked_for or 0) > 0
        ]
        if over:
            raise LoginThrottled(max(over))

    async def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the pair starts afresh and its failures leave the account's
        count; the address gets this attempt back only (one good password must not unlock an
        address that sprayed others)."""
        await repository.refund_failures(
            self.pool,
            forget=attempt.pair,
            deduct_from=attempt.account,
            refund=attempt.address,
            refund_limit=self.settings.login_max_failures_per_address,
        )
