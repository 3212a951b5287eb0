"""Forwarding over real HTTP: a real gateway (real identity, real Postgres) in front of the real
customers service and a kit service that echoes what reached it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from gateway.models import SCHEMA
from servicekit.auth import generate_keypair
from servicekit.db import to_asyncpg_dsn
from servicekit.testing.servers import serve
from servicekit.testing.tokens import TokenMinter, make_principal

from .conftest import (
    EVENTS_KEY,
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    create_user,
    identity_settings,
    login,
    serve_customers,
    serve_echo,
    serve_gateway,
    stuck_app,
    window_clock,
)

PROBLEM = "application/problem+json"


@dataclass
class Setup:
    gateway: str
    app: FastAPI
    echo: FastAPI
    client: httpx.AsyncClient
    admin: dict[str, str]


@contextlib.asynccontextmanager
async def proxied(
    db: str, minter: TokenMinter, *, clock: Callable[[], float] = time.time, **overrides: Any
) -> AsyncIterator[Setup]:
    async with (
        serve_customers(db, minter) as customers,
        serve_echo(db, minter) as (echo_url, echo_app),
    ):
        values: dict[str, Any] = {
            "upstream_customers": customers,
            "upstream_visits": echo_url,
            "events_api_key": EVENTS_KEY,
            "rate_limit_enabled": True,
        }
        values.update(overrides)
        async with (
            serve_gateway(identity_settings(db, minter, **values), clock=clock) as (url, app),
            httpx.AsyncClient(base_url=url, timeout=20) as client,
        ):
            admin = await login(client, IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
            yield Setup(url, app, echo_app, client, admin)


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("/problems/")
    return body


async def test_principal_reaches_the_service_and_feeds_need_admin_or_scope(fresh_db, minter):
    async with proxied(fresh_db, minter) as s:
        c = s.client
        seen = await c.get("/api/v1/visits/echo?a=1&b=x%20y", headers=s.admin)
        assert seen.status_code == 200, seen.text
        body = seen.json()
        me = (await c.get("/api/v1/me", headers=s.admin)).json()
        assert body["principal"]["sub"] == me["id"]
        assert body["principal"]["role"] == "admin"
        assert body["path"] == "/api/v1/visits/echo" and body["query"] == "a=1&b=x%20y"

        feed = await c.get("/api/v1/events/customers?limit=5", headers=s.admin)
        assert feed.status_code == 200, feed.text
        assert set(feed.json()) >= {"items", "next_cursor"}
        # The gateway's own feed, served in-process: the bootstrap admin's creation is in it.
        own = await c.get("/api/v1/events/identity", headers=s.admin)
        assert own.status_code == 200
        assert "user.created" in {e["type"] for e in own.json()["items"]}
        keyed = await c.get("/api/v1/events/customers", headers={"X-API-Key": EVENTS_KEY})
        assert keyed.status_code == 200, keyed.text

        rep = await create_user(c, s.admin, "rep")
        _problem(await c.get("/api/v1/events/customers", headers=rep), 403)
        _problem(await c.get("/api/v1/events/identity", headers=rep), 403)
        as_rep = (await c.get("/api/v1/visits/echo", headers=rep)).json()["principal"]
        assert as_rep["role"] == "rep" and as_rep["sub"] != me["id"]
        # The feeds are a closed set, declared as such: another name is not a valid request.
        nowhere = _problem(await c.get("/api/v1/events/nowhere", headers=s.admin), 422)
        assert nowhere["errors"][0]["loc"] == ["path", "app"]

        _problem(await c.get("/api/v1/visits/echo"), 401)
        _problem(await c.get("/api/v1/events/customers"), 401)
        _problem(await c.get("/api/v1/visits/echo", headers={"X-API-Key": "ffk_nope"}), 401)


async def test_each_feed_opens_to_its_own_scope_and_events_read_opens_them_all(fresh_db, minter):
    async with proxied(fresh_db, minter) as s:
        c = s.client

        async def key(*scopes: str) -> dict[str, str]:
            made = await c.post(
                "/api/v1/api-keys", json={"name": "feeds", "scopes": list(scopes)}, headers=s.admin
            )
            assert made.status_code == 201, made.text
            return {"X-API-Key": made.json()["key"]}

        feeds = ("identity", "customers", "visits")
        one = {app: await key(f"events:{app}") for app in feeds}
        for app, headers in one.items():
            for other in feeds:
                r = await c.get(f"/api/v1/events/{other}?limit=1", headers=headers)
                if other == app:
                    assert r.status_code == 200, (app, r.text)
                    assert "items" in r.json()
                else:
                    problem = _problem(r, 403)
                    assert f"events:{other}" in problem["detail"], problem
        # The identity feed's emails reach only who may read that feed.
        customers_only = await c.get("/api/v1/events/identity", headers=one["customers"])
        assert "@" not in customers_only.text
        # events:read: every feed (the services' own key, EVENTS_API_KEY), as for admins.
        for headers in ({"X-API-Key": EVENTS_KEY}, await key("events:read"), s.admin):
            for app in feeds:
                r = await c.get(f"/api/v1/events/{app}?limit=1", headers=headers)
                assert r.status_code == 200, (app, r.text)
        # A business scope opens no feed.
        _problem(await c.get("/api/v1/events/customers", headers=await key("customers:read")), 403)
        unknown = await c.post(
            "/api/v1/api-keys",
            json={"name": "x", "scopes": ["events:nowhere"]},
            headers=s.admin,
        )
        assert unknown.status_code == 422


async def test_client_identity_headers_are_stripped_and_forwarding_headers_set(fresh_db, minter):
    async with proxied(fresh_db, minter) as s:
        c = s.client
        rep = await create_user(c, s.admin, "rep")
        # A token signed with the very key the services trust, claiming admin: still ignored.
        forged = minter.token(make_principal("admin", scopes=["events:read"]), "visits")
        _problem(await c.get("/api/v1/visits/echo", headers={"X-Internal-Token": forged}), 401)
        r = await c.get(
            "/api/v1/visits/echo",
            headers={
                **rep,
                "X-Internal-Token": forged,
                "X-User-Id": "someone-else",
                "X-Forwarded-Host": "evil.example.com",
                "X-Request-ID": "proxy-test-0001",
                "Connection": "keep-alive, X-Private-Hop",
                "X-Private-Hop": "secret",
                "Proxy-Authorization": "Basic Zm9vOmJhcg==",
                "Keep-Alive": "timeout=5",
                "X-Custom": "kept",
            },
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "proxy-test-0001"
        got = r.json()
        assert got["principal"]["role"] == "rep"
        headers: dict[str, list[str]] = {}
        for name, value in got["headers"]:
            headers.setdefault(name, []).append(value)
        assert len(headers["x-internal-token"]) == 1
        assert headers["x-internal-token"][0] != forged
        for gone in ("authorization", "x-user-id", "x-private-hop", "proxy-authorization"):
            assert gone not in headers, gone
        assert "keep-alive" not in headers
        assert headers["x-forwarded-for"] == ["127.0.0.1"]
        assert headers["x-forwarded-proto"] == ["http"]
        assert headers["x-forwarded-host"] == [s.gateway.removeprefix("http://")]
        assert headers["x-request-id"] == ["proxy-test-0001"]
        assert headers["x-custom"] == ["kept"]


async def test_internal_tokens_are_cached_per_principal_and_service(fresh_db, minter):
    async with proxied(fresh_db, minter) as s:
        c = s.client

        async def token_seen(headers: dict[str, str]) -> str:
            got = (await c.get("/api/v1/visits/echo", headers=headers)).json()
            return str(next(v for k, v in got["headers"] if k == "x-internal-token"))

        first = await token_seen(s.admin)
        assert await token_seen(s.admin) == first
        rep = await create_user(c, s.admin, "rep")
        assert await token_seen(rep) != first


async def test_a_cached_token_never_serves_a_deactivated_user_or_a_revoked_key(fresh_db, minter):
    async with proxied(fresh_db, minter) as s:
        c = s.client

        async def token_seen(headers: dict[str, str]) -> str:
            r = await c.get("/api/v1/visits/echo", headers=headers)
            assert r.status_code == 200, r.text
            return str(next(v for k, v in r.json()["headers"] if k == "x-internal-token"))

        rep = await create_user(c, s.admin, "rep")
        rep_id = (await c.get("/api/v1/me", headers=rep)).json()["id"]
        made = await c.post(
            "/api/v1/api-keys", json={"name": "echo", "scopes": ["visits:read"]}, headers=s.admin
        )
        assert made.status_code == 201, made.text
        key = {"X-API-Key": made.json()["key"]}
        rep_token, key_token = await token_seen(rep), await token_seen(key)
        assert await token_seen(rep) == rep_token and await token_seen(key) == key_token
        assert len({rep_token, key_token, await token_seen(s.admin)}) == 3

        # Revocation reaches the gateway's authentication, which runs before any token is
        # taken from the cache: the entry still there is never handed out again.
        deactivated = await c.post(f"/api/v1/users/{rep_id}/deactivate", headers=s.admin)
        assert deactivated.status_code == 200, deactivated.text
        assert (
            "deactivated"
            in _problem(await c.get("/api/v1/visits/echo", headers=rep), 401)["detail"]
        )
        revoked = await c.post(f"/api/v1/api-keys/{made.json()['id']}/revoke", headers=s.admin)
        assert revoked.status_code == 200, revoked.text
        assert "revoked" in _problem(await c.get("/api/v1/visits/echo", headers=key), 401)["detail"]


async def test_the_service_refuses_calls_without_the_internal_token(fresh_db, minter):
    async with (
        serve_echo(fresh_db, minter) as (echo_url, _app),
        httpx.AsyncClient(base_url=echo_url) as c,
    ):
        _problem(await c.get("/api/v1/visits/echo"), 401)
        stranger = TokenMinter(*generate_keypair())
        foreign = stranger.token(make_principal("admin"), "visits")
        _problem(await c.get("/api/v1/visits/echo", headers={"X-Internal-Token": foreign}), 401)
        # A token for another service is refused too (audience).
        other = minter.token(make_principal("admin"), "customers")
        _problem(await c.get("/api/v1/visits/echo", headers={"X-Internal-Token": other}), 401)


async def test_unknown_paths_are_404_problems(fresh_db, minter):
    async with proxied(fresh_db, minter) as s:
        for path in ("/api/v1/nothing", "/api/v1/customersx/1", "/api/v2/customers", "/nope"):
            body = _problem(await s.client.get(path, headers=s.admin), 404)
            assert body["instance"] == path


@pytest.mark.parametrize("store", ["postgres", "redis"])
async def test_rate_limit_429_with_headers_shared_by_replicas(fresh_db, minter, store, request):
    # REDIS_URL moves the shared counters from Postgres to Redis; the behaviour is the same.
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else ""
    # Every call below counts in one window, 59 s before its end; counts are shared only when
    # the test says so (`sync`).
    clock = window_clock(60)
    async with proxied(
        fresh_db,
        minter,
        clock=clock,
        rate_limit_rep="4/60",
        rate_limit_anonymous="4/60",
        rate_limit_sync_interval_seconds=3600,
        redis_url=redis_url,
    ) as s:
        c = s.client
        rep = await create_user(c, s.admin, "rep")
        first = await c.get("/api/v1/visits/echo", headers=rep)
        assert first.status_code == 200
        assert first.headers["ratelimit-policy"] == '"rep";q=4;w=60'
        assert first.headers["ratelimit"] == '"rep";r=3;t=59'
        await c.get("/api/v1/visits/echo", headers=rep)
        await s.app.state.rate_limiter.sync()

        # A second replica on the same database starts from the shared count.
        settings = s.app.state.settings.model_copy()
        async with (
            serve_gateway(settings, clock=clock) as (other_url, _),
            httpx.AsyncClient(base_url=other_url) as other,
        ):
            third = await other.get("/api/v1/visits/echo", headers=rep)
            assert third.status_code == 200
            assert third.headers["ratelimit"] == '"rep";r=1;t=59'
            await other.get("/api/v1/visits/echo", headers=rep)
            refused = await other.get("/api/v1/visits/echo", headers=rep)
            body = _problem(refused, 429)
            assert "4 requests in 60 s" in body["detail"]
            assert refused.headers["retry-after"] == "59"
            assert refused.headers["ratelimit"] == '"rep";r=0;t=59'
            assert refused.headers["ratelimit-policy"] == '"rep";q=4;w=60'

        # The admin has a policy of their own; anonymous callers count per address (the two
        # logins above were anonymous calls too).
        assert (await c.get("/api/v1/visits/echo", headers=s.admin)).status_code == 200
        _problem(await c.get("/api/v1/visits/echo"), 401)
        # Bad credentials count against the address too (no free guessing).
        guess = await c.get("/api/v1/visits/echo", headers={"X-API-Key": "ffk_guess"})
        _problem(guess, 401)
        assert guess.headers["ratelimit"].startswith('"anonymous";r=0;')
        anonymous = await c.get("/api/v1/visits/echo")
        _problem(anonymous, 429)
        assert anonymous.headers["ratelimit-policy"] == '"anonymous";q=4;w=60'

        counters = await _postgres_counters(fresh_db)
        if store == "redis":
            client = aioredis.Redis.from_url(redis_url)
            try:
                keys = [k async for k in client.scan_iter(match="fieldforce:ratelimit:*")]
            finally:
                await client.aclose()
            assert keys and counters == 0
        else:
            assert counters > 0


async def _postgres_counters(db: str) -> int:
    conn = await asyncpg.connect(to_asyncpg_dsn(db))
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.rate_limit_counters"))  # noqa: S608 - the gateway's schema name; no input
    finally:
        await conn.close()


async def test_per_key_override(fresh_db, minter):
    async with proxied(fresh_db, minter) as s:
        created = await s.client.post(
            "/api/v1/api-keys", json={"name": "tiny", "scopes": ["events:read"]}, headers=s.admin
        )
        assert created.status_code == 201, created.text
        key = created.json()
    settings = identity_settings(
        fresh_db,
        minter,
        events_api_key=EVENTS_KEY,
        rate_limit_enabled=True,
        rate_limit_keys={key["id"]: "1/30"},
    )
    async with (
        serve_gateway(settings, clock=window_clock(30)) as (url, _),
        httpx.AsyncClient(base_url=url) as c,
    ):
        headers = {"X-API-Key": key["key"]}
        ok = await c.get("/api/v1/events/identity", headers=headers)
        assert ok.status_code == 200, ok.text
        assert ok.headers["ratelimit-policy"].endswith(";q=1;w=30")
        _problem(await c.get("/api/v1/events/identity", headers=headers), 429)
        # Other keys keep the integration role's policy.
        other = await c.get("/api/v1/events/identity", headers={"X-API-Key": EVENTS_KEY})
        assert other.headers["ratelimit-policy"].startswith('"integration";')


async def test_bodies_over_the_limit_are_413_before_the_service(fresh_db, minter):
    async with proxied(fresh_db, minter, max_body_bytes=100_000) as s:
        c = s.client
        payload = bytes(range(256)) * 300  # 76 800 bytes: streamed, under the limit
        ok = await c.post("/api/v1/visits/echo", content=payload, headers=s.admin)
        assert ok.status_code == 200, ok.text
        assert ok.json()["body_sha256"] == hashlib.sha256(payload).hexdigest()
        small = b"s" * 1000  # known length, read whole
        ok = await c.post("/api/v1/visits/echo", content=small, headers=s.admin)
        assert ok.status_code == 200, ok.text
        assert ok.json()["body_sha256"] == hashlib.sha256(small).hexdigest()
        hits = s.echo.state.hits

        big = b"x" * 100_001
        body = _problem(await c.post("/api/v1/visits/echo", content=big, headers=s.admin), 413)
        assert "100000 bytes" in body["detail"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(30):
                yield b"y" * 5000

        # No Content-Length (chunked): counted as it arrives.
        _problem(await c.post("/api/v1/visits/echo", content=chunks(), headers=s.admin), 413)
        # Identity's own routes are covered too.
        _problem(await c.post("/api/v1/auth/token", content=big), 413)
        assert s.echo.state.hits == hits

        async def small_chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"z" * 1000

        fine = await c.post("/api/v1/visits/echo", content=small_chunks(), headers=s.admin)
        assert fine.status_code == 200 and fine.json()["body_length"] == 3000


async def test_large_answers_stream_through_and_the_next_calls_answer_at_once(fresh_db, minter):
    """Answers far larger than the gateway's buffers, read by a plain client, then more calls
    to the same service: each answers at once (an answer over ~256 KiB once left its pooled
    connection paused, and the next call on it waited the whole upstream timeout for a 504;
    tests/test_e2e_large_answers.py shows it with each app in its own process)."""
    async with proxied(fresh_db, minter, upstream_timeout_seconds=5.0) as s:
        c = s.client
        for size in (256 * 1024 + 1, 1536 * 1024, 3 * 1024 * 1024, 256 * 1024 + 1):
            r = await c.get(f"/api/v1/visits/blob?size={size}", headers=s.admin)
            assert r.status_code == 200
            assert r.content == bytes(i % 251 for i in range(size))
            assert r.headers["content-type"] == "application/octet-stream"
            assert "ratelimit" in r.headers
            for _ in range(3):
                small = await c.get("/api/v1/visits/echo", headers=s.admin, timeout=2.0)
                assert small.status_code == 200


async def test_upstream_down_is_502_and_stuck_upstream_504_within_timeout(fresh_db, minter):
    released = asyncio.Event()
    async with (
        serve(stuck_app(released)) as stuck,
        proxied(fresh_db, minter, upstream_analytics=stuck, upstream_timeout_seconds=0.5) as s,
    ):
        try:
            # Opportunities points at a closed port (conftest): nothing reached it.
            down = await s.client.get("/api/v1/leads/1", headers=s.admin)
            body = _problem(down, 502)
            assert "opportunities" in body["detail"] and "Idempotency-Key" not in body["detail"]
            assert down.headers["vary"] == "Origin"

            started = time.monotonic()
            late = await s.client.post("/api/v1/targets", json={}, headers=s.admin)
            elapsed = time.monotonic() - started
            body = _problem(late, 504)
            # The call reached the service, which may have acted on it: the client is told
            # so, and how to retry without doing it twice.
            assert "analytics" in body["detail"] and "may still have completed" in body["detail"]
            assert "same Idempotency-Key is safe" in body["detail"]
            assert "ratelimit" in late.headers
            assert 0.5 <= elapsed < 5.0
        finally:
            released.set()


async def test_cors_allows_listed_origins_only(fresh_db, minter):
    allowed = "https://app.example.com"
    async with proxied(fresh_db, minter, cors_origins=[allowed]) as s:
        preflight = {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }
        ok = await s.client.options("/api/v1/visits/echo", headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "POST" in ok.headers["access-control-allow-methods"]
        no = await s.client.options(
            "/api/v1/visits/echo", headers={"Origin": "https://evil.example.com", **preflight}
        )
        assert no.status_code == 400
        assert "access-control-allow-origin" not in no.headers

        r = await s.client.get("/api/v1/visits/echo", headers={"Origin": allowed, **s.admin})
        assert r.headers["access-control-allow-origin"] == allowed
        assert "RateLimit" in r.headers["access-control-expose-headers"]


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in head[1:] if line)
    return status, headers, await reader.readexactly(int(headers["content-length"]))


async def test_pipelining_connection_close_and_proxy_headers(fresh_db, minter):
    async with proxied(fresh_db, minter, trusted_proxies=["127.0.0.1"]) as s:
        port = int(s.gateway.rsplit(":", 1)[1])
        auth = s.admin["Authorization"]

        def request(
            request_id: str,
            extra: str = "",
            version: str = "1.1",
            path: str = "/api/v1/visits/echo",
        ) -> bytes:
            return (
                f"GET {path} HTTP/{version}\r\nhost: gw\r\n"
                f"authorization: {auth}\r\nx-request-id: {request_id}\r\n{extra}\r\n"
            ).encode()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Pipelined on one connection: answered in order, each with its own request id.
        # The middle one is the gateway's own route (the ASGI path, behind a forwarded call).
        writer.write(request("pipe-1") + request("pipe-2", path="/api/v1/me") + request("pipe-3"))
        await writer.drain()
        for request_id in ("pipe-1", "pipe-2", "pipe-3"):
            status, headers, body = await _answer(reader)
            assert status == 200 and headers["x-request-id"] == request_id
            if request_id == "pipe-2":
                assert json.loads(body)["email"] == IDENTITY_ADMIN_EMAIL
                continue
            seen = dict(json.loads(body)["headers"])
            assert seen["x-request-id"] == request_id

        # A trusted proxy in front (GATEWAY_TRUSTED_PROXIES): the client it names is the one
        # the service hears of.
        writer.write(
            request("via-lb", "x-forwarded-for: 203.0.113.9\r\nx-forwarded-proto: https\r\n")
        )
        status, headers, body = await _answer(reader)
        seen = dict(json.loads(body)["headers"])
        assert status == 200
        assert seen["x-forwarded-for"] == "203.0.113.9" and seen["x-forwarded-proto"] == "https"

        # Expect: 100-continue: the body is asked for, then forwarded.
        writer.write(
            b"POST /api/v1/visits/echo HTTP/1.1\r\nhost: gw\r\n"
            + f"authorization: {auth}\r\n".encode()
            + b"content-length: 5\r\nexpect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 100")
        writer.write(b"hello")
        status, headers, body = await _answer(reader)
        assert (
            status == 200
            and json.loads(body)["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
        )

        writer.write(request("last", "connection: close\r\n"))
        status, headers, _ = await _answer(reader)
        assert status == 200 and headers["connection"] == "close"
        assert await reader.read() == b""
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("old-client", version="1.0"))
        status, headers, _ = await _answer(reader)
        assert status == 200 and headers["x-request-id"] == "old-client"
        assert await reader.read() == b""
        writer.close()
