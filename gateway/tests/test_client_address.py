"""Who the client is (gateway/clientaddr.py): the TCP peer, unless it is a trusted proxy.

The rule first, on ASGI scopes; then through the real gateway over real HTTP: the audit trail,
the sign-in lock-out, the anonymous rate limit and the X-Forwarded-For a service hears of.
Distinct peers are distinct loopback addresses (127.0.0.2 is as local as 127.0.0.1 on Linux).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.clientaddr import TrustedProxies, client_address, client_scheme
from servicekit.testing.tokens import TokenMinter

from .conftest import (
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    assert_problem,
    identity_settings,
    login,
    serve_echo,
    serve_gateway,
)


def scope(peer: str | None, *headers: tuple[str, str], scheme: str = "http") -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "client": None if peer is None else (peer, 50000),
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
    }


XFF = "X-Forwarded-For"
LB = TrustedProxies(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        # Nobody is trusted by default: the header is whatever the caller wrote.
        ("127.0.0.1", ["203.0.113.7"], TrustedProxies(), "127.0.0.1"),
        # A peer that is not a trusted proxy is believed about itself only.
        ("198.51.100.9", ["203.0.113.7"], LB, "198.51.100.9"),
        # A trusted proxy: the nearest hop it names that is not a proxy of ours.
        ("10.1.1.1", ["203.0.113.7"], LB, "203.0.113.7"),
        ("10.1.1.1", ["1.1.1.1, 203.0.113.7, 10.2.2.2"], LB, "203.0.113.7"),
        # The same chain over two header lines.
        ("10.1.1.1", ["1.1.1.1, 203.0.113.7", "192.0.2.1"], LB, "203.0.113.7"),
        # The client's own forgery to the left of the real hop changes nothing.
        ("10.1.1.1", ["10.9.9.9, 203.0.113.7"], LB, "203.0.113.7"),
        # A trusted proxy without the header: the proxy itself is all that is known.
        ("10.1.1.1", [], LB, "10.1.1.1"),
        # Every hop trusted: the farthest one is the best that is known.
        ("10.1.1.1", ["10.3.3.3, 192.0.2.1"], LB, "10.3.3.3"),
        # Not an address: the walk ends at the last trusted hop.
        ("10.1.1.1", ["203.0.113.7, unknown"], LB, "10.1.1.1"),
        ("10.1.1.1", ["203.0.113.7, _hidden, 10.2.2.2"], LB, "10.2.2.2"),
        # Ports and brackets as proxies write them; addresses come out normalised.
        ("10.1.1.1", ["203.0.113.7:4711"], LB, "203.0.113.7"),
        ("10.1.1.1", ["[2001:DB9::0001]:443"], LB, "2001:db9::1"),
        ("2001:db8::5", ["2001:db9::1"], LB, "2001:db9::1"),
        # An IPv4 peer seen through a dual-stack socket is still that IPv4 peer.
        ("::ffff:10.1.1.1", ["203.0.113.7"], LB, "203.0.113.7"),
    ],
)
def test_the_rule(peer: str, forwarded: list[str], trusted: TrustedProxies, expected: str) -> None:
    assert client_address(scope(peer, *[(XFF, f) for f in forwarded]), trusted) == expected


def test_no_peer_and_the_scheme() -> None:
    assert client_address(scope(None, (XFF, "203.0.113.7")), LB) is None
    https = ("X-Forwarded-Proto", "https")
    assert client_scheme(scope("10.1.1.1", https), LB) == "https"
    assert client_scheme(scope("127.0.0.1", https), TrustedProxies()) == "http"
    assert client_scheme(scope("10.1.1.1", ("X-Forwarded-Proto", "gopher")), LB) == "http"
    assert client_scheme(scope("10.1.1.1", scheme="https"), LB) == "https"


@contextlib.asynccontextmanager
async def client_from(url: str, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose connections leave from `address` (a peer of its own)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=url, transport=transport, timeout=20) as client:
        yield client


async def audit_addresses(client: httpx.AsyncClient, email: str) -> list[str]:
    admin = await login(client, IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    r = await client.get("/api/v1/audit?action=login.failed&limit=200", headers=admin)
    assert r.status_code == 200, r.text
    return [a["client_address"] for a in r.json()["items"] if a["detail"]["email"] == email]


async def test_a_local_caller_cannot_choose_its_address(fresh_db: str, minter: TokenMinter) -> None:
    """Default settings: X-Forwarded-For from the caller is not believed, so rotating it neither
    lands in the audit trail nor escapes the lock-out of the caller's real address."""
    settings = identity_settings(
        fresh_db, minter, login_max_failures_per_address=3, login_slowdown_after=100
    )
    async with serve_gateway(settings) as (url, _app), client_from(url, "127.0.0.1") as client:
        for i in range(3):
            email = f"sprayed-{i}@example.com"
            r = await client.post(
                "/api/v1/auth/token",
                data={"username": email, "password": "guess-password"},
                headers={XFF: f"203.0.113.{i + 1}"},
            )
            assert_problem(r, 401)
        # The address is locked, whatever it claims to be now.
        r = await client.post(
            "/api/v1/auth/token",
            data={"username": "sprayed-9@example.com", "password": "guess-password"},
            headers={XFF: "203.0.113.99"},
        )
        assert_problem(r, 429)
        # Another peer is not locked by it, and the trail names the real peer.
        async with client_from(url, "127.0.0.2") as other:
            assert await audit_addresses(other, "sprayed-0@example.com") == ["127.0.0.1"]


async def test_the_anonymous_rate_limit_counts_the_peer(fresh_db: str, minter: TokenMinter) -> None:
    settings = identity_settings(
        fresh_db, minter, rate_limit_enabled=True, rate_limit_anonymous="3/86400"
    )
    async with serve_gateway(settings) as (url, _app), client_from(url, "127.0.0.3") as client:
        for i in range(3):
            r = await client.get("/api/v1/visits/echo", headers={XFF: f"198.51.100.{i + 1}"})
            assert_problem(r, 401)
        r = await client.get("/api/v1/visits/echo", headers={XFF: "198.51.100.77"})
        assert_problem(r, 429)
        async with client_from(url, "127.0.0.4") as other:
            assert_problem(await other.get("/api/v1/visits/echo"), 401)


async def test_a_trusted_proxy_names_the_client(fresh_db: str, minter: TokenMinter) -> None:
    """Behind trusted proxies, the client they name is the one audited, locked out and passed
    on to services; a peer that is not one of them still names only itself."""
    async with serve_echo(fresh_db, minter) as (echo_url, _echo):
        settings = identity_settings(
            fresh_db,
            minter,
            upstream_visits=echo_url,
            trusted_proxies="127.0.0.1, 10.0.0.0/8",
            login_max_failures_per_address=2,
            login_slowdown_after=100,
        )
        async with (
            serve_gateway(settings) as (url, _app),
            client_from(url, "127.0.0.1") as proxy,
            client_from(url, "127.0.0.2") as stranger,
        ):
            chain = {XFF: "192.0.2.200, 198.51.100.5, 10.4.4.4"}
            email = f"someone-{uuid.uuid4().hex[:6]}@example.com"
            form = {"username": email, "password": "guess-password"}
            assert_problem(await proxy.post("/api/v1/auth/token", data=form, headers=chain), 401)
            assert_problem(await stranger.post("/api/v1/auth/token", data=form, headers=chain), 401)
            assert sorted(await audit_addresses(proxy, email)) == ["127.0.0.2", "198.51.100.5"]
            # The named client's address locks, not the proxy's: another client behind the same
            # proxy still gets through.
            assert_problem(await proxy.post("/api/v1/auth/token", data=form, headers=chain), 401)
            assert_problem(await proxy.post("/api/v1/auth/token", data=form, headers=chain), 429)
            elsewhere = {XFF: "198.51.100.6"}
            assert_problem(
                await proxy.post("/api/v1/auth/token", data=form, headers=elsewhere), 401
            )

            admin = await login(proxy, IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
            r = await proxy.get(
                "/api/v1/visits/echo",
                headers={**admin, **chain, "X-Forwarded-Proto": "https"},
            )
            assert r.status_code == 200, r.text
            seen = dict(r.json()["headers"])
            assert seen["x-forwarded-for"] == "198.51.100.5"
            assert seen["x-forwarded-proto"] == "https"
            r = await stranger.get(
                "/api/v1/visits/echo",
                headers={**admin, **chain, "X-Forwarded-Proto": "https"},
            )
            seen = dict(r.json()["headers"])
            assert seen["x-forwarded-for"] == "127.0.0.2"
            assert seen["x-forwarded-proto"] == "http"
