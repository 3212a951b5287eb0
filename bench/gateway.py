"""GET one record through the gateway vs straight to the service (same record, same run).

The project side is the real gateway as in production: the caller signs in (a real login's
bearer token), the gateway authenticates it (cached), rate-limits it (shared Postgres
counters, a quota high enough never to refuse), signs an internal token for the service
(cached) and forwards over its keep-alive pool (gateway/upstream.py). The baseline is the same
service called directly with the internal token the gateway would send. Two records: one
customer, `GET /api/v1/customers/{id}` (created through the gateway before the load), and one
event of the service's feed (`/events?limit=1`, public `/api/v1/events/customers?limit=1`),
a read light on PostgreSQL, where the service's own process is the bound.

Both sides log their access lines at INFO, as in production, at 32 connections.

What must hold (issue 11): the latency a user feels, **< 1 ms added p50 at a quarter of the
direct side's saturation rate** (BENCH_PACED_FRACTION, default 0.25; several allowed,
"0.25,0.5"): both sides at that fixed rate (each wrk thread paces its connections with
lua/paths.lua's `delay()`), the difference of the medians is the latency the gateway adds, as
proxies' overhead is measured (Envoy's and Kong's benchmarks: below saturation, at a fixed
rate). That is the goal this benchmark checks. Direct's own p50 drifts between rounds by more
than that, so the paced part is short rounds interleaved (direct, gateway, floor, direct, floor,
gateway, direct, ...: BENCH_PACED_PAIRS cycles of BENCH_PACED_ROUND_SECONDS, as long in all as
three 10 s rounds a side), each hop round paired with the direct rounds either side of it; the
figure is the median of those paired differences, printed with their spread.

What is reported, not chased: the throughput ratio at saturation (closed loop: every
connection sends as soon as it has its answer), and the gateway's CPU per forwarded call
printed beside the floor's. On two shared cores the ratio is bounded by what shares them
(wrk, PostgreSQL, the service), not by the gateway alone; its latencies there are queueing.

The floor (on unless BENCH_GATEWAY_FLOOR=0): each record also through `FloorProtocol`, the
cheapest hop Python makes (httptools in, the gateway's upstream pool out, nothing else), on the
baseline's requests: the bound for the gateway's ratio and CPU per call on this machine, and,
measured at the fixed rate(s) too, for its added latency.

BENCH_GATEWAY_BEFORE=<another checkout of the project, bootstrapped> measures that version's
gateway too, in the same run, on the same service and database, beside this one: before and
after a change, under the same load from whatever else runs on the machine.

BENCH_GATEWAY_CLIENTS=1 adds the measurement behind the choice of upstream client: a minimal
forwarder (no auth, no limits) over the gateway's own pool (gateway/upstream.py), over aiohttp
and over httpx.AsyncClient, same service.

BENCH_GATEWAY_SERVER (uvicorn, the default, or granian) is the server the gateway runs under;
the service always runs under uvicorn (the harness's standard terms: one worker, uvloop,
access log off).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import statistics
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import asyncpg
import httptools
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.harness import (
    Comparison,
    Context,
    PacedHop,
    RequestSet,
    Server,
    call,
    login,
    spread,
)
from fieldforce.apps import BY_NAME, GATEWAY
from fieldforce.stack import migrate_all
from gateway.identity.scopes import ROLE_SCOPES
from gateway.upstream import UpstreamPool
from servicekit.auth import Principal
from servicekit.testing.tokens import INTERNAL_TOKEN_HEADER, make_principal

ADDED_P50_GOAL_MS = 1.0
# Cycles of interleaved paced rounds (direct, then each hop), BENCH_PACED_PAIRS.
PACED_PAIRS = 10
CONNECTIONS = 32
ADMIN_EMAIL = "bench-admin@example.com"
FEED_GATEWAY_PATH = "/api/v1/events/customers?limit=1"
FEED_SERVICE_PATH = "/events?limit=1"


async def _seed_event(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO customers.outbox (id, type, source, subject, data) "
            "VALUES ($1, 'customer.created', 'customers', $2, $3::json)",
            uuid.uuid4(),
            str(uuid.uuid4()),
            json.dumps({"name": "Benchmark customer", "owner_id": str(uuid.uuid4())}),
        )
    finally:
        await conn.close()


def _call(
    server: Server, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, Any]:
    return call(server, method, path, headers, body, timeout=10)


def _same_body(a: bytes, b: bytes) -> bool:
    return bool(json.loads(a) == json.loads(b))


def _gateway_env(
    ctx: Context, url: str, service: Server, password: str, app: str = "customers"
) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "INTERNAL_TOKEN_PUBLIC_KEY": ctx.minter.public_pem,
        "GATEWAY_INTERNAL_TOKEN_PRIVATE_KEY": ctx.minter.private_pem,
        "GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
        f"GATEWAY_UPSTREAM_{app.upper()}": service.url,
        "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "BOOTSTRAP_ADMIN_PASSWORD": password,
        # Counted and shared as in production, never refusing during the run.
        "GATEWAY_RATE_LIMIT_ADMIN": "1000000000/60",
        # The bench's one sign-in lasts the run (a run with BENCH_GATEWAY_BEFORE outlives the
        # default 15 minutes, and the calls then count as anonymous ones).
        "GATEWAY_ACCESS_TOKEN_TTL_SECONDS": "86400",
    }


def start_behind_gateway(
    ctx: Context,
    url: str,
    *,
    app: str = "customers",
    service_name: str = "service",
    service_env: dict[str, str] | None = None,
    gateway_env: dict[str, str] | None = None,
) -> tuple[Server, Server, dict[str, str]]:
    """A service (`app`) and the gateway in front of it, as in production (identity, rate
    limits, internal tokens); returns both and the bench admin's bearer header."""
    password = secrets.token_urlsafe(16)
    service = ctx.start_service(app, url, service_env, name=service_name)
    gateway = ctx.start_server(
        "gateway",
        "gateway.main:create_app",
        factory=True,
        kind=gateway_server(),
        http=GATEWAY.http_protocol,
        env={**_gateway_env(ctx, url, service, password, app), **(gateway_env or {})},
        ready_path="/readyz",
    )
    return service, gateway, login(gateway, ADMIN_EMAIL, password)


def _start_gateway_before(
    ctx: Context, checkout: Path, url: str, service: Server, password: str
) -> Server:
    """The gateway of another checkout (BENCH_GATEWAY_BEFORE), served as that version serves
    it (its own `--http`), in front of the same service and database."""
    python = str(checkout / ".venv/bin/python")
    protocol = subprocess.run(
        [python, "-c", "from fieldforce.apps import GATEWAY; print(GATEWAY.http_protocol)"],
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return ctx.start_server(
        "before",
        "gateway.main:create_app",
        factory=True,
        kind=gateway_server(),
        http=protocol,
        env=_gateway_env(ctx, url, service, password),
        ready_path="/readyz",
        checkout=checkout,
    )


@dataclasses.dataclass
class _Hop:
    """A side measured against the service: the gateway, the one before, the floor."""

    label: str
    server: Server
    requests: RequestSet


def run(ctx: Context) -> None:
    if "BENCH_CONNECTIONS" not in os.environ:
        # The goal is stated at 32 connections.
        ctx.load = dataclasses.replace(ctx.load, connections=CONNECTIONS)
    url = ctx.create_database("bench_gateway")
    migrate_all(url, (GATEWAY, BY_NAME["customers"]))
    asyncio.run(_seed_event(url))

    service, gateway, admin = start_behind_gateway(ctx, url)
    _, me = _call(gateway, "GET", "/api/v1/me", admin)
    # The principal the gateway mints for this admin (so the service sees the same caller).
    principal = Principal(
        sub=me["id"], kind="user", role="admin", scopes=ROLE_SCOPES["admin"], name=me["name"]
    )
    status, created = _call(
        gateway,
        "POST",
        "/api/v1/customers",
        {**admin, "Content-Type": "application/json"},
        json.dumps({"name": "Benchmark Trading Co.", "region": "north"}).encode(),
    )
    ttl = int(ctx.load.warmup + 10 * ctx.load.rounds * ctx.load.duration) + 600
    # (name, public path, service path, principal the service sees)
    records: list[tuple[str, str, str, Principal]] = []
    if status == 201:
        path = f"/api/v1/customers/{created['id']}"
        records.append(("get-customer", path, path, principal))
    else:
        print(f"  POST /api/v1/customers answered {status}: {created}; no customer", flush=True)
    feed_reader = dataclasses.replace(principal, scopes=principal.scopes | {"events:read"})
    records.append(("get-feed-event", FEED_GATEWAY_PATH, FEED_SERVICE_PATH, feed_reader))

    before = None
    before_admin: dict[str, str] = {}
    checkout = os.environ.get("BENCH_GATEWAY_BEFORE", "")
    if checkout:
        password = gateway.env["BOOTSTRAP_ADMIN_PASSWORD"]
        before = _start_gateway_before(ctx, Path(checkout).resolve(), url, service, password)
        # The same admin; its token is signed with that gateway's own secret.
        before_admin = login(before, ADMIN_EMAIL, password)
    floor = None
    if os.environ.get("BENCH_GATEWAY_FLOOR", "1") not in ("", "0"):
        floor = ctx.start_server(
            "floor",
            "bench.gateway:floor_app",
            factory=True,
            http="bench.gateway:FloorProtocol",
            env={"BENCH_UPSTREAM": service.url},
        )

    for name, gateway_path, service_path, caller in records:
        token = ctx.minter.token(caller, "customers", ttl_seconds=ttl)
        direct = RequestSet(
            paths_file=ctx.write_lines(f"{name}-service.txt", [service_path]),
            headers={INTERNAL_TOKEN_HEADER: token},
        )
        through = ctx.write_lines(f"{name}-gateway.txt", [gateway_path])
        hops = [_Hop("gateway", gateway, RequestSet(paths_file=through, headers=admin))]
        if before is not None:
            hops.append(_Hop("before", before, RequestSet(through, headers=before_admin)))
        if floor is not None:
            hops.append(_Hop("floor", floor, direct))
        _, straight = service.get(*direct.sample())
        for hop in hops:
            status, answered = hop.server.get(*hop.requests.sample())
            if status != 200 or not _same_body(answered, straight):
                raise RuntimeError(f"{hop.label} answered {status}: {answered[:300]!r}")

        saturated: dict[str, Comparison] = {}
        for hop in hops:
            saturated[hop.label] = ctx.compare(
                name if hop.label == "gateway" else f"{name}-{hop.label}",
                project=hop.server,
                baseline=service,
                requests=hop.requests,
                baseline_requests=direct,
            )
        # The direct side was measured beside each hop: the median of those is steadier than
        # one of them on a shared machine.
        direct_rps = statistics.median(c.baseline.median("rps") for c in saturated.values())
        paced: dict[tuple[str, float], Comparison] = {}
        pairs = _env_int("BENCH_PACED_PAIRS", PACED_PAIRS)
        round_seconds = _paced_round_seconds(ctx, len(hops), pairs)
        for fraction in _paced_fractions():
            # Short rounds of every hop interleaved with direct's, each paired with its
            # neighbours; the floor among them: the latency any Python hop adds here.
            measured = ctx.compare_paced_interleaved(
                service,
                direct,
                [
                    PacedHop(
                        f"{name}@{fraction:g}"
                        + ("" if hop.label == "gateway" else f"-{hop.label}"),
                        hop.server,
                        hop.requests,
                        None if hop.label == "floor" else ADDED_P50_GOAL_MS,
                    )
                    for hop in hops
                ],
                rate=fraction * direct_rps,
                pairs=pairs,
                round_seconds=round_seconds,
            )
            for hop, c in zip(hops, measured, strict=True):
                paced[hop.label, fraction] = c
        _print_record(name, direct_rps, saturated, paced)
        if before is not None:
            # Head to head, rounds alternating: what the change did, under the same load.
            c = ctx.compare(
                f"{name}-vs-before",
                project=gateway,
                baseline=before,
                requests=hops[0].requests,
                baseline_requests=hops[1].requests,
            )
            print(
                f"  {c.name}: throughput {c.ratio:.3f} of before's, CPU per call "
                f"{_us(c.project.cpu_us())} us against {_us(c.baseline.cpu_us())} us",
                flush=True,
            )
            for fraction in _paced_fractions():
                # At the fixed rate both were measured in the same cycles: paired per cycle.
                now, then = paced["gateway", fraction].project, paced["before", fraction].project
                cycles = [a.p50_ms - b.p50_ms for a, b in zip(now.rounds, then.rounds, strict=True)]
                print(
                    f"  {name}@{fraction:g}-vs-before: p50 {statistics.median(cycles):+.2f} ms "
                    f"(median of {len(cycles)} cycles: {spread(cycles)}), CPU per call "
                    f"{_us(now.cpu_us())} us against {_us(then.cpu_us())} us",
                    flush=True,
                )

    if os.environ.get("BENCH_GATEWAY_CLIENTS", "") not in ("", "0"):
        reader = make_principal("integration", kind="key", scopes=["events:read"])
        feed = RequestSet(
            paths_file=ctx.write_lines("feed-paths.txt", [FEED_SERVICE_PATH]),
            headers={INTERNAL_TOKEN_HEADER: ctx.minter.token(reader, "customers", ttl_seconds=ttl)},
        )
        for client in ("pool", "aiohttp", "httpx"):
            forwarder = ctx.start_server(
                f"fwd-{client}",
                f"bench.gateway:{client}_forwarder",
                factory=True,
                env={"BENCH_UPSTREAM": service.url},
                ready_path="/healthz",
            )
            c = ctx.compare(f"minimal-{client}", project=forwarder, baseline=service, requests=feed)
            print(
                f"  {c.name}: throughput ratio {c.ratio:.3f}, CPU per call {c.project.cpu_us()} us",
                flush=True,
            )
            forwarder.stop()


def _print_record(
    name: str,
    direct_rps: float,
    saturated: dict[str, Comparison],
    paced: dict[tuple[str, float], Comparison],
) -> None:
    """The figures that matter, side by side: the added p50 at the fixed rate(s) (the goal),
    CPU per forwarded call, the throughput ratio (reported)."""
    print(f"  {name}: direct saturates at {direct_rps:.0f} req/s", flush=True)
    for (label, fraction), c in paced.items():
        verdict = {None: "the bound", True: "ok", False: "MISSED"}[c.met]
        # How far direct's own median moves between its rounds: the noise the pairing removes.
        direct_p50s = [r.p50_ms for r in c.baseline.rounds]
        cpu = [r.cpu_us_per_request for r in c.project.rounds if r.cpu_us_per_request is not None]
        cpu_range = f" ({min(cpu):.0f}-{max(cpu):.0f})" if cpu else ""
        print(
            f"    {label:<8} at {fraction:g} of it ({c.rate:.0f} req/s): added p50 "
            f"{c.added_p50_ms:+.2f} ms (goal < {ADDED_P50_GOAL_MS:g} ms: {verdict}; median of "
            f"{len(c.paired_p50_ms or ())} paired rounds, {spread(c.paired_p50_ms or [])}), "
            f"added p99 {c.added_p99_ms:+.2f} ms; direct's p50 over its rounds "
            f"{min(direct_p50s):.2f}-{max(direct_p50s):.2f} ms; CPU per forwarded call "
            f"{_us(c.project.cpu_us())} us{cpu_range}",
            flush=True,
        )
    for label, c in saturated.items():
        print(
            f"    {label:<8} at saturation: CPU per forwarded call {_us(c.project.cpu_us())} us "
            f"(service {_us(c.baseline.cpu_us())} us, whole machine "
            f"{_us(c.project.cpu_us('machine_us_per_request'))} us), "
            f"throughput ratio {c.ratio:.3f}",
            flush=True,
        )


def gateway_server() -> str:
    """BENCH_GATEWAY_SERVER: what serves the gateway (the service stays on uvicorn)."""
    return os.environ.get("BENCH_GATEWAY_SERVER", "") or "uvicorn"


def _us(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f}"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value else default


def _paced_round_seconds(ctx: Context, hops: int, pairs: int) -> float:
    """BENCH_PACED_ROUND_SECONDS, else the length that keeps the paced part as long as
    `rounds` rounds of `duration` a side per hop would be (4 s at the defaults, 2 hops)."""
    value = os.environ.get("BENCH_PACED_ROUND_SECONDS", "")
    if value:
        return float(value)
    total = 2 * ctx.load.rounds * ctx.load.duration * hops
    return float(max(1, round(total / (pairs * (hops + 1)))))


def _paced_fractions() -> list[float]:
    """BENCH_PACED_FRACTION: one fraction or several, comma-separated (0 or empty: none)."""
    raw = os.environ.get("BENCH_PACED_FRACTION", "0.25")
    return [f for f in (float(x) for x in raw.split(",") if x.strip()) if f > 0]


# --- minimal forwarders: the measurement behind the choice of upstream client ---------------
# GET only, headers passed as they come (bar Host); nothing else, so only the client differs.


def _forwarder(
    forward: Callable[[Request], Awaitable[Response]],
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]],
) -> Starlette:
    async def healthz(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/{path:path}", forward)], lifespan=lifespan
    )


def aiohttp_forwarder() -> Starlette:
    upstream = os.environ["BENCH_UPSTREAM"]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), auto_decompress=False
        )
        yield
        await app.state.client.close()

    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k != "host"]
        target = upstream + request.url.path + "?" + request.url.query
        async with request.app.state.client.get(target, headers=headers) as resp:
            body = await resp.read()
            return Response(body, resp.status, media_type=resp.headers.get("content-type"))

    return _forwarder(forward, lifespan)


def pool_forwarder() -> Starlette:
    upstream = os.environ["BENCH_UPSTREAM"]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = UpstreamPool(upstream, limit=256)
        yield
        await app.state.pool.close()

    async def forward(request: Request) -> Response:
        target = (request.url.path + "?" + request.url.query).encode()
        lines = [b"%s: %s\r\n" % (k, v) for k, v in request.headers.raw if k != b"host"]
        deadline = asyncio.get_running_loop().time() + 30
        status, headers, body = await _get_whole(request.app.state.pool, target, lines, deadline)
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), None)
        return Response(body, status, media_type=content_type.decode() if content_type else None)

    return _forwarder(forward, lifespan)


async def _get_whole(
    pool: UpstreamPool, target: bytes, header_lines: list[bytes], deadline: float
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """GET `target` over `pool` with the caller's header lines (pieces ending in CRLF, Host
    left out), the answer read whole: (status, headers, body)."""
    head = b"".join(
        [b"GET ", target, b" HTTP/1.1\r\nhost: ", pool.host_header, b"\r\n", *header_lines]
    )
    answer = await pool.request(b"GET", head + b"\r\n", None, deadline, 1 << 16)
    try:
        body = await answer.read()
    finally:
        answer.release()
    return answer.status, answer.headers, body


def httpx_forwarder() -> Starlette:
    upstream = os.environ["BENCH_UPSTREAM"]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        app.state.client = httpx.AsyncClient(limits=limits)
        yield
        await app.state.client.aclose()

    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.items() if k != "host"]
        target = upstream + request.url.path + "?" + request.url.query
        resp = await request.app.state.client.get(target, headers=headers)
        return Response(resp.content, resp.status_code, media_type=resp.headers.get("content-type"))

    return _forwarder(forward, lifespan)


# --- the floor: what any Python hop costs on this machine ------------------------------------


class FloorProtocol(asyncio.Protocol):
    """The cheapest hop Python makes: httptools in, gateway/upstream.py's pool out, one write
    back; no ASGI, no authentication, limits, token, log line or metrics. Served by uvicorn as
    its `--http` protocol (the app it loads is never called), in front of BENCH_UPSTREAM.

    It answers GET only and takes the caller's headers (the internal token among them) on to
    the service as they come, so it runs on the baseline's requests; /healthz it answers
    itself. What it measures: the throughput a hop in front of the service can keep at all
    here, the bound for the gateway's own ratio."""

    _pools: ClassVar[dict[str, UpstreamPool]] = {}

    def __init__(self, config: Any, server_state: Any, app_state: Any = None, _loop: Any = None):
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        self.parser = httptools.HttpRequestParser(self)
        upstream = os.environ["BENCH_UPSTREAM"]
        pool = self._pools.get(upstream)
        if pool is None:
            pool = self._pools[upstream] = UpstreamPool(upstream, limit=256)
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: list[bytes] = []

    # What uvicorn's server asks of its protocols.
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server_state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        self.transport = None

    def shutdown(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.shutdown()

    # httptools' callbacks.
    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() != b"host":
            self.headers += (name, b": ", value, b"\r\n")

    def on_message_complete(self) -> None:
        if self.url == b"/healthz":
            self._write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            return
        self.loop.create_task(self._forward(self.url, self.headers))

    async def _forward(self, url: bytes, headers: list[bytes]) -> None:
        try:
            status, answered, body = await _get_whole(
                self.pool, url, headers, self.loop.time() + 30
            )
        except Exception:
            self._write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            return
        out = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
        for name, value in answered:
            if name.lower() not in _FLOOR_DROPPED:
                out += (name, b": ", value, b"\r\n")
        out += (b"content-length: %d\r\n\r\n" % len(body), body)
        self._write(b"".join(out))

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


_FLOOR_DROPPED = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"content-length"})


def floor_app() -> Starlette:
    """What uvicorn loads for the floor (FloorProtocol answers every call without it)."""
    return Starlette()
