"""Failed sign-ins (identity/auth/throttle.py) over real HTTP, on real Postgres.

The (account, address) pair locks, an address that sprays many accounts locks, the account as
a whole is only slowed, and `POST /me/password` counts the same way. The test client stands in
for a trusted proxy (127.0.0.1) and names each caller's address in X-Forwarded-For. Identity's
clock is under the test's hand: waits are recorded, not slept, and lock-outs end when the test
moves time on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from .conftest import (
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    Api,
    ApiFactory,
    assert_problem,
    fake_clock,
)

ATTACKER = "203.0.113.66"
ACCOMPLICE = "203.0.113.67"
OWNER = "198.51.100.10"
# The admin's account; slowdown as shipped (0.25 s doubling, 2 s at most).
GUARD: dict[str, Any] = {
    "trusted_proxies": "127.0.0.1",
    "login_max_failures_per_pair": 5,
    "login_lockout_seconds": 300,
    "login_slowdown_after": 3,
    "login_slowdown_base_seconds": 0.25,
    "login_slowdown_max_seconds": 2.0,
}


async def sign_in(api: Api, address: str, password: str, email: str = IDENTITY_ADMIN_EMAIL):
    return await api.client.post(
        "/api/v1/auth/token",
        data={"username": email, "password": password},
        headers={"X-Forwarded-For": address},
    )


async def audit(api: Api, action: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        "/api/v1/audit", params={"action": action, "limit": 200}, headers=await api.admin()
    )
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_an_attacker_elsewhere_cannot_lock_the_admin_out(make_api: ApiFactory) -> None:
    async with make_api(**GUARD) as api:
        clock = fake_clock(api)
        statuses = [(await sign_in(api, ATTACKER, f"guess-{i}")).status_code for i in range(12)]
        # The attacker's own pair locks after five guesses; nothing more is even checked.
        assert statuses == [401] * 5 + [429] * 7
        # The account is slowed: past three failures, each attempt waits twice as long.
        assert clock.waits == [0.25, 0.5]
        # A second address keeps guessing: the account's delay grows to its cap, no further.
        for i in range(5):
            assert (await sign_in(api, ACCOMPLICE, f"more-{i}")).status_code == 401
        assert clock.waits[2:] == [1.0, 2.0, 2.0, 2.0, 2.0]

        # The admin, from a clean address, signs in: slowed by at most the cap, never locked.
        owner = await sign_in(api, OWNER, IDENTITY_ADMIN_PASSWORD)
        assert owner.status_code == 200, owner.text
        assert clock.waits[-1] == 2.0 and max(clock.waits) == 2.0
        me = await api.me(api.bearer(owner.json()))
        assert me.status_code == 200 and me.json()["email"] == IDENTITY_ADMIN_EMAIL

        # The right password from the locked pair is refused, with the time left of its lock.
        locked = await sign_in(api, ATTACKER, IDENTITY_ADMIN_PASSWORD)
        body = assert_problem(locked, 429)
        retry_after = int(locked.headers["retry-after"])
        assert 280 <= retry_after <= 300 and body["retry_after"] == retry_after
        # Once the lock has run out the pair gets a fresh count (and the next five guesses).
        clock.advance(retry_after + 1)
        assert (await sign_in(api, ATTACKER, "guess-again")).status_code == 401

        throttled = await audit(api, "login.throttled")
        assert {a["client_address"] for a in throttled} == {ATTACKER}
        assert len(throttled) == 8


async def test_a_burst_of_guesses_gets_no_extra_tries(make_api: ApiFactory) -> None:
    """Attempts are charged before the password is checked: a burst gets no extra guesses."""
    async with make_api(**{**GUARD, "login_max_failures_per_pair": 3}) as api:
        clock = fake_clock(api)
        answers = await asyncio.gather(*[sign_in(api, ATTACKER, f"guess-{i}") for i in range(12)])
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [401] * 3 + [429] * 9, statuses
        assert_problem(await sign_in(api, ATTACKER, IDENTITY_ADMIN_PASSWORD), 429)
        assert len(clock.waits) <= 9


async def test_a_right_password_gives_the_pair_a_fresh_count(make_api: ApiFactory) -> None:
    async with make_api(**{**GUARD, "login_max_failures_per_pair": 3}) as api:
        clock = fake_clock(api)
        for _ in range(2):
            for _ in range(2):
                assert (await sign_in(api, OWNER, "typo")).status_code == 401
            assert (await sign_in(api, OWNER, IDENTITY_ADMIN_PASSWORD)).status_code == 200
        # The owner's typos were taken off the account's count with them: never slowed.
        assert clock.waits == []


async def test_an_address_that_sprays_accounts_is_locked(make_api: ApiFactory) -> None:
    async with make_api(**{**GUARD, "login_max_failures_per_address": 4}) as api:
        fake_clock(api)
        for i in range(4):
            r = await sign_in(api, ATTACKER, "guess-password", f"sprayed-{i}@example.com")
            assert r.status_code == 401, r.text
        # Whatever account comes next from that address.
        locked = await sign_in(api, ATTACKER, IDENTITY_ADMIN_PASSWORD)
        assert_problem(locked, 429)
        assert 1 <= int(locked.headers["retry-after"]) <= 300
        assert (await sign_in(api, OWNER, IDENTITY_ADMIN_PASSWORD)).status_code == 200


async def change_password(
    api: Api, headers: dict[str, str], current: str, new: str = "a-new-password-1"
) -> httpx.Response:
    return await api.client.post(
        "/api/v1/me/password",
        json={"current_password": current, "new_password": new},
        headers={**headers, "X-Forwarded-For": OWNER},
    )


async def test_wrong_current_passwords_count_like_failed_sign_ins(make_api: ApiFactory) -> None:
    """A stolen access token is no free oracle for the password behind it."""
    async with make_api(**{**GUARD, "login_max_failures_per_pair": 3}) as api:
        clock = fake_clock(api)
        signed_in = await sign_in(api, OWNER, IDENTITY_ADMIN_PASSWORD)
        assert signed_in.status_code == 200, signed_in.text
        headers = api.bearer(signed_in.json())
        for i in range(3):
            wrong = await change_password(api, headers, f"not-it-{i}")
            assert assert_problem(wrong, 422)["errors"][0]["loc"] == ["current_password"]
        assert clock.waits == []
        # The pair is locked now: even the right current password is not checked.
        locked = await change_password(api, headers, IDENTITY_ADMIN_PASSWORD)
        assert_problem(locked, 429)
        assert 1 <= int(locked.headers["retry-after"]) <= 300
        # Signing in from that address is the same pair, and is locked too.
        assert_problem(await sign_in(api, OWNER, IDENTITY_ADMIN_PASSWORD), 429)
        # From elsewhere the account is only slowed, by the three failures like by failed
        # sign-ins.
        assert (await sign_in(api, ATTACKER, IDENTITY_ADMIN_PASSWORD)).status_code == 200
        assert clock.waits == [0.25]

        failed = await audit(api, "user.password_change.failed")
        assert len(failed) == 3 and {a["client_address"] for a in failed} == {OWNER}
        assert len(await audit(api, "user.password_change.throttled")) == 1

        # The lock over, the right current password changes it.
        clock.advance(301)
        done = await change_password(api, headers, IDENTITY_ADMIN_PASSWORD)
        assert done.status_code == 204, done.text
        assert (await sign_in(api, OWNER, "a-new-password-1")).status_code == 200
