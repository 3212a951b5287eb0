"""What the webhook tests share: a real receiver (an HTTP server on a free port that records what
arrives and answers from a script), the gateway with webhook delivery on a fake clock, the
receiver-side verification exactly as docs/webhooks.md writes it, and small API helpers."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import AliasChoices
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fieldforce.apps import SERVICES
from gateway.config import Settings as GatewaySettings
from gateway.main import create_app as create_gateway_app
from servicekit.clock import Clock
from servicekit.devdb import free_port
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import wait_until
from servicekit.testing.servers import serve
from servicekit.testing.tokens import TokenMinter

from .conftest import Api, identity_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
API = "/api/v1/webhooks"
LOCAL = ["127.0.0.1/32"]


def documented_verifier() -> Callable[..., bool]:
    """`verify_webhook` from the code block of docs/webhooks.md, run as it is written there."""
    found = re.search(r"```python verify-webhook\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert found, "docs/webhooks.md lost its verification code block"
    namespace: dict[str, Any] = {}
    exec(compile(found.group(1), str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    verify: Callable[..., bool] = namespace["verify_webhook"]
    return verify


verify_webhook = documented_verifier()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Answers `script` in order (status, body), then `default`. While `gate` is set to an
    unset event, every request waits for it before answering."""

    script: list[tuple[int, bytes]] = field(default_factory=list)
    default: tuple[int, bytes] = (200, b"thanks")
    gate: asyncio.Event | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(Received(request.url.path, dict(request.headers), body))
        if self.gate is not None:
            await self.gate.wait()
        if request.url.path == "/redirect":
            return Response(status_code=307, headers={"Location": "/elsewhere"})
        status, text = self.script.pop(0) if self.script else self.default
        return Response(text, status_code=status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=["POST"])])

    def of_type(self, *types: str) -> list[Received]:
        return [r for r in self.received if r.json()["type"] in types]

    async def until(self, count: int, *types: str, within: float = 15.0) -> list[Received]:
        def seen() -> list[Received] | None:
            # A copy: what the caller holds does not grow with later requests.
            found = self.of_type(*types) if types else list(self.received)
            return found if len(found) >= count else None

        found: list[Received] = await wait_until(seen, within=within, what=f"{count} requests")
        return found


@contextlib.asynccontextmanager
async def receiving(**kwargs: Any) -> AsyncIterator[Receiver]:
    receiver = Receiver(**kwargs)
    async with serve(receiver.app()) as url:
        receiver.url = url
        yield receiver


@contextlib.asynccontextmanager
async def serving_services(database_url: str, minter: TokenMinter) -> AsyncIterator[dict[str, Any]]:
    """The four real services over real HTTP: `upstream_<name>` settings for the gateway."""
    async with contextlib.AsyncExitStack() as stack:
        upstreams: dict[str, Any] = {}
        for info in SERVICES:
            module = importlib.import_module(f"{info.package}.main")
            config = importlib.import_module(f"{info.package}.config")
            app = module.create_app(
                config.Settings(
                    database_url=database_url, internal_token_public_key=minter.public_pem
                )
            )
            upstreams[f"upstream_{info.name}"] = await stack.enter_async_context(serve(app))
        yield upstreams


def webhook_settings(database_url: str, minter: TokenMinter, **overrides: Any) -> GatewaySettings:
    """Identity's test settings, http allowed and the loopback receiver allowlisted."""
    values: dict[str, Any] = {
        "webhook_allow_http": True,
        "webhook_allowed_networks": LOCAL,
        "outbox_metrics_interval_seconds": 1.0,
    }
    values.update(overrides)
    return identity_settings(database_url, minter, **values)


@contextlib.asynccontextmanager
async def webhook_gateway(
    settings: GatewaySettings, clock: Clock | None = None
) -> AsyncIterator[Api]:
    """The whole gateway (webhook delivery included) on `clock`, listening for its wake-ups."""
    app = create_gateway_app(settings, app_clock=clock)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        if not settings.webhook_delivery_enabled:
            yield Api(client, app)
            return
        await wait_until(lambda: app.state.webhooks.listening, what="the LISTEN connection")
        polls = asyncio.create_task(_idle_polls(app.state.webhooks))
        try:
            yield Api(client, app)
        finally:
            polls.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polls


async def _idle_polls(webhooks: Any) -> None:
    """The consumers' and the worker's idle polls, every half second of real time. An event
    committed while another transaction was open is not on the feed when its NOTIFY arrives;
    the next idle poll finds it, but on a fake clock that no test moves, that poll would never
    come. Only the polling is moved on: what is due still follows the fake clock."""
    while True:
        await asyncio.sleep(0.5)
        for consumer in webhooks.consumers.values():
            consumer.wake()
        webhooks.wake()


@dataclass
class Hooks:
    """The webhook API as one caller."""

    api: Api
    headers: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.api.client

    async def create(self, url: str, events: list[str], **fields: Any) -> dict[str, Any]:
        r = await self.client.post(
            API, json={"url": url, "events": events, **fields}, headers=self.headers
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def get(self, webhook_id: str) -> dict[str, Any]:
        r = await self.client.get(f"{API}/{webhook_id}", headers=self.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def deliveries(self, webhook_id: str, **params: Any) -> list[dict[str, Any]]:
        r = await self.client.get(
            f"{API}/{webhook_id}/deliveries", params={"limit": 200, **params}, headers=self.headers
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def patch(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        current = await self.client.get(f"{API}/{webhook_id}", headers=self.headers)
        r = await self.client.patch(
            f"{API}/{webhook_id}",
            json=fields,
            headers={**self.headers, "If-Match": current.headers["etag"]},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def user(self, role: str = "rep") -> dict[str, Any]:
        """A new user (a `user.created` event on the gateway's own feed)."""
        r = await self.client.post(
            "/api/v1/users",
            json={
                "email": f"{role}-{secrets.token_hex(5)}@example.com",
                "name": f"Webhook {role}",
                "role": role,
                "password": "pw-" + secrets.token_urlsafe(12),
            },
            headers=await self.api.admin(),
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def identity_events(self, *types: str) -> list[dict[str, Any]]:
        """The gateway's own feed, in feed order."""
        r = await self.client.get(
            "/api/v1/events/identity", params={"limit": 1000}, headers=await self.api.admin()
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return [i for i in items if not types or i["type"] in types]


async def as_admin(api: Api) -> Hooks:
    return Hooks(api, await api.admin())


async def step_until(
    clock: FakeClock,
    condition: Callable[[], Awaitable[Any]],
    *,
    step: float,
    within: float = 30.0,
) -> Any:
    """Move the fake clock on by `step` until `condition` holds: time passes for the worker
    without the test waiting for it (only for the HTTP round trips)."""
    deadline = time.monotonic() + within
    while True:
        found = await condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within} s of real time")
        clock.advance(step)
        await asyncio.sleep(0.02)


def settings_env(settings: GatewaySettings) -> dict[str, str]:
    """The environment that gives a gateway process the settings `settings` was given."""
    env: dict[str, str] = {}
    dumped = settings.model_dump(mode="json")
    for name in settings.model_fields_set:
        info = type(settings).model_fields[name]
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            key = str(alias.choices[0])
        elif isinstance(alias, str):
            key = alias
        else:
            key = "GATEWAY_" + name.upper()
        value = dumped[name]
        env[key] = value if isinstance(value, str) else json.dumps(value)
    return env


@dataclass
class GatewayProcess:
    process: asyncio.subprocess.Process
    url: str

    async def kill(self) -> None:
        """As a crash: no shutdown, no lease handed back, no attempt recorded."""
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()


@contextlib.asynccontextmanager
async def gateway_process(settings: GatewaySettings, logs: Path) -> AsyncIterator[GatewayProcess]:
    """The gateway in a process of its own (system clock), so that a test can kill it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(settings_env(settings))
    log_path = logs / f"gateway-{port}.log"
    with log_path.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "gateway.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    running = GatewayProcess(process, f"http://127.0.0.1:{port}")
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=5) as client:

            async def up() -> bool:
                if process.returncode is not None:
                    raise AssertionError(f"the gateway exited: see {log_path}")
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(up, within=60, what="the gateway process")
        yield running
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
