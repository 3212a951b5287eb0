"""Delegation: a service calls another app's public API on behalf of the caller it serves, by
presenting the internal token it was given (`servicekit.calls`). The gateway takes it only
when it verifies with its own key, has not expired, was minted for a service, and comes from
the services' networks; the call is then the caller's own (current facts, rate limit, scopes)
with the acting service in `act`."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from servicekit.auth import Principal, generate_keypair
from servicekit.testing.tokens import TokenMinter

from .conftest import (
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    create_user,
    identity_settings,
    login,
    serve_customers,
    serve_echo,
    serve_gateway,
    window_clock,
)

ECHO = "/api/v1/visits/echo"
CUSTOMERS = "/api/v1/customers"


@dataclass
class Setup:
    client: httpx.AsyncClient
    admin: dict[str, str]
    minter: TokenMinter

    def on_behalf(
        self, principal: Principal, audience: str = "opportunities", **token: Any
    ) -> dict[str, str]:
        """The header a service sends: the token the gateway gave it for `principal`."""
        return {"X-Internal-Token": self.minter.token(principal, audience, **token)}

    async def me(self, headers: dict[str, str]) -> Principal:
        """The principal the gateway makes of a signed-in user (as it would vouch for them)."""
        me = (await self.client.get("/api/v1/me", headers=headers)).json()
        return Principal(sub=me["id"], kind="user", role=me["role"], team_id=me.get("team_id"))


@contextlib.asynccontextmanager
async def gateway(
    db: str, minter: TokenMinter, *, clock: Callable[[], float] = time.time, **overrides: Any
) -> AsyncIterator[Setup]:
    async with (
        serve_customers(db, minter) as customers,
        serve_echo(db, minter) as (echo_url, _),
    ):
        values: dict[str, Any] = {"upstream_customers": customers, "upstream_visits": echo_url}
        values.update(overrides)
        async with (
            serve_gateway(identity_settings(db, minter, **values), clock=clock) as (url, _),
            httpx.AsyncClient(base_url=url, timeout=20) as client,
        ):
            admin = await login(client, IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
            yield Setup(client, admin, minter)


async def test_a_service_acts_for_its_caller_as_they_are_now(fresh_db, minter):
    async with gateway(fresh_db, minter) as s:
        rep_login = await create_user(s.client, s.admin, "rep")
        rep = await s.me(rep_login)
        # The token claims more than the rep is: the gateway goes by the rep's current facts.
        inflated = Principal(sub=rep.sub, kind="user", role="admin", scopes=frozenset({"x"}))
        seen = await s.client.get(ECHO, headers=s.on_behalf(inflated))
        assert seen.status_code == 200, seen.text
        claims = seen.json()["principal"]
        assert claims["sub"] == rep.sub and claims["role"] == "rep" and "x" not in claims["scopes"]
        assert claims["act"] == {"sub": "opportunities"}

        created = await s.client.post(
            CUSTOMERS,
            json={"name": f"Via {uuid.uuid4().hex[:6]}", "region": "east"},
            headers=s.on_behalf(rep),
        )
        assert created.status_code == 201, created.text
        customer = created.json()
        # Created under the rep's authority: theirs, and theirs to read with their own login.
        assert customer["owner_id"] == rep.sub
        history = await s.client.get(f"{CUSTOMERS}/{customer['id']}/history", headers=rep_login)
        assert history.status_code == 200
        assert history.json()["items"][0]["actor_id"] == rep.sub
        # ... and no more than the rep may: someone else's customer is refused.
        other = await s.me(await create_user(s.client, s.admin, "rep"))
        refused = await s.client.post(
            CUSTOMERS,
            json={"name": "Not mine", "region": "east", "owner_id": other.sub},
            headers=s.on_behalf(rep),
        )
        assert refused.status_code == 422, refused.text

        # A chain: a service acting for a service acting for the rep.
        chained = Principal(sub=rep.sub, kind="user", role="rep", act=("opportunities",))
        seen = await s.client.get(ECHO, headers=s.on_behalf(chained, audience="analytics"))
        assert seen.json()["principal"]["act"] == {
            "sub": "analytics",
            "act": {"sub": "opportunities"},
        }


async def test_a_forged_expired_foreign_or_doubled_token_is_refused(fresh_db, minter):
    async with gateway(fresh_db, minter) as s:
        rep_login = await create_user(s.client, s.admin, "rep")
        rep = await s.me(rep_login)
        forger = TokenMinter(*generate_keypair())
        refusals = {
            "forged": {"X-Internal-Token": forger.token(rep, "opportunities")},
            "expired": s.on_behalf(rep, now=time.time() - 120),
            "for the gateway": s.on_behalf(rep, audience="gateway"),
            "for no service": s.on_behalf(rep, audience="billing"),
            "not a token": {"X-Internal-Token": "abc.def.ghi"},
            "with a bad key beside": {**s.on_behalf(rep), "X-API-Key": "ffk_anything"},
            "too deep": s.on_behalf(
                Principal(sub=rep.sub, kind="user", role="rep", act=("a", "b", "c", "d"))
            ),
            "unknown user": s.on_behalf(Principal(sub=str(uuid.uuid4()), kind="user", role="rep")),
        }
        for what, headers in refusals.items():
            resp = await s.client.get(ECHO, headers=headers)
            assert resp.status_code == 401, (what, resp.text)
            assert resp.headers["content-type"] == "application/problem+json", what

        # Beside a bearer token the internal token counts for nothing: the bearer's call.
        admin_token = s.on_behalf(
            Principal(sub=(await s.me(s.admin)).sub, kind="user", role="admin")
        )
        plain = await s.client.get(ECHO, headers={**admin_token, **rep_login})
        assert plain.json()["principal"]["sub"] == rep.sub
        assert "act" not in plain.json()["principal"]

        me = (await s.client.get("/api/v1/me", headers=rep_login)).json()
        deactivated = await s.client.patch(
            f"/api/v1/users/{me['id']}", json={"active": False}, headers=s.admin
        )
        assert deactivated.status_code == 200, deactivated.text
        assert (await s.client.get(ECHO, headers=s.on_behalf(rep))).status_code == 401


async def test_delegated_calls_come_from_the_services_networks_only(fresh_db, minter):
    async with gateway(fresh_db, minter, delegation_networks=["10.99.0.0/16"]) as s:
        rep = await s.me(await create_user(s.client, s.admin, "rep"))
        resp = await s.client.get(ECHO, headers=s.on_behalf(rep))
        assert resp.status_code == 403 and "networks" in resp.json()["detail"]
    async with gateway(fresh_db, minter, delegation_networks="") as s:
        rep = await s.me(await create_user(s.client, s.admin, "rep"))
        assert (await s.client.get(ECHO, headers=s.on_behalf(rep))).status_code == 403


async def test_a_delegated_call_is_the_callers_own_for_rate_limits_and_scopes(fresh_db, minter):
    clock = window_clock(60)
    async with gateway(
        fresh_db, minter, rate_limit_enabled=True, rate_limit_rep="4/60", clock=clock
    ) as s:
        rep_login = await create_user(s.client, s.admin, "rep")
        rep = await s.me(rep_login)
        # /me took one of the rep's four calls. Tokens are minted at the gateway's time.
        for headers in (rep_login, rep_login, s.on_behalf(rep, now=clock())):
            assert (await s.client.get(ECHO, headers=headers)).status_code == 200
        limited = await s.client.get(ECHO, headers=s.on_behalf(rep, now=clock()))
        assert limited.status_code == 429

        created = await s.client.post(
            "/api/v1/api-keys",
            json={"name": "reader", "scopes": ["customers:read"]},
            headers=s.admin,
        )
        key = created.json()
        # The token says customers:write; the key has customers:read only, and that decides.
        claimed = Principal(
            sub=key["id"],
            kind="key",
            role="integration",
            scopes=frozenset({"customers:read", "customers:write"}),
        )
        refused = await s.client.post(
            CUSTOMERS,
            json={"name": "Keyed", "region": "east"},
            headers=s.on_behalf(claimed, now=clock()),
        )
        assert refused.status_code == 403 and "customers:write" in refused.text
        readable = await s.client.get(CUSTOMERS, headers=s.on_behalf(claimed, now=clock()))
        assert readable.status_code == 200, readable.text
        revoked = await s.client.delete(f"/api/v1/api-keys/{key['id']}", headers=s.admin)
        assert revoked.status_code == 204
        assert (
            await s.client.get(CUSTOMERS, headers=s.on_behalf(claimed, now=clock()))
        ).status_code == 401
