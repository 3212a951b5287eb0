"""The forwarding half of the gateway: authenticate, limit, sign, stream to the service.

Upstream client: a keep-alive pool per service over asyncio protocols, parsed by httptools
(upstream.py), chosen by measurement. On this 2-core machine, 32 connections, one feed event
(`BENCH_GATEWAY_CLIENTS=1 python -m bench gateway`): a minimal forwarder over
`httpx.AsyncClient` kept 0.14 of direct throughput at ~5 ms of CPU per request
(encode/httpx#3215), over aiohttp 0.73 at ~0.55 ms; in the gateway aiohttp itself was still
~120 us per call, the pool here ~30 us.

Order of work for a call under /api/ (GatewayMiddleware, before any routing): body size
(Content-Length) -> authenticate (`Authenticator`, cached) -> rate limit (per principal, or per
client address when anonymous) -> route. Service routes refuse anonymous calls (401) and
forward with an internal token minted for the target service and cached per (principal,
service), answered straight from the ASGI messages (no Request/Response objects on the way).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Annotated, Any

import aiohttp
from fastapi import APIRouter, FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.clientaddr import NO_PROXIES, TrustedProxies, client_address, client_scheme
from gateway.config import Settings
from gateway.identity.authn import SIGN_IN_PATHS, Authenticator
from gateway.models import SCHEMA
from gateway.ratelimit import Policies, PostgresCounterStore, RateLimiter
from gateway.redis_store import RedisCounterStore
from gateway.routes import (
    EVENT_FEEDS,
    EVENTS_PREFIX,
    IDENTITY_FEED,
    SERVICE_EVENTS_PATH,
    SERVICES,
    route_for,
    upstreams,
)
from gateway.signing import TokenSigner, load_or_generate_key
from gateway.upstream import Answer, UpstreamError, UpstreamPool, UpstreamTimeout
from servicekit.app import EVENTS_SCOPE
from servicekit.auth import Principal
from servicekit.db import Database
from servicekit.errors import (
    DomainError,
    Forbidden,
    InternalError,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
)
from servicekit.outbox import feed_sql, parse_feed_cursor, render_feed

log = logging.getLogger("gateway.proxy")

PRINCIPAL_KEY = "gateway_principal"
_FEEDS = EVENTS_PREFIX + "/"
# What the kit's metrics and access log label forwarded feed calls with.
_FEED_LABEL = SimpleNamespace(path_format=EVENTS_PREFIX + "/{app}")
API_PATHS = "/api/"
# Bodies up to this size are read whole (one send upstream, one send back); larger ones stream.
BUFFER_LIMIT = 64 * 1024

# RFC 9110 §7.6.1 hop-by-hop fields, plus the historic Proxy-* and Keep-Alive.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# What a client could use to pose as someone: services trust only the internal token we sign,
# and the client's own credentials are none of the service's business.
IDENTITY_HEADERS = frozenset(
    {
        "x-internal-token",
        "authorization",
        "x-api-key",
        "cookie",
        "x-user-id",
        "x-user-role",
        "x-user-email",
        "x-team-id",
        "x-principal",
        "x-scopes",
        "x-forwarded-user",
        "x-remote-user",
        "remote-user",
    }
)
# Set by the gateway itself, never taken from the client.
OWN_REQUEST_HEADERS = frozenset(
    {
        "host",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
    }
)
# The gateway's server adds its own; a second copy from upstream would duplicate them.
OWN_RESPONSE_HEADERS = frozenset({"server", "date", "x-request-id"})


class BadGateway(DomainError):
    status, slug, title = 502, "bad-gateway", "The service could not be reached"


class GatewayTimeout(DomainError):
    status, slug, title = 504, "gateway-timeout", "The service did not answer in time"


class ClientDisconnected(Exception):
    """The client went away while its request body was still arriving."""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _stream_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def answer_headers(
    raw: list[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """A service's answer headers as the client gets them: names lower-cased, hop-by-hop ones
    (and those its Connection header lists) and the gateway's own dropped, `extra` added."""
    out: list[tuple[bytes, bytes]] = []
    listed: set[bytes] | None = None
    for name, value in raw:
        lname = name.lower()
        if lname in _DROPPED_RESPONSE_HEADERS:
            if lname == b"connection":
                listed = {v.strip().lower() for v in value.split(b",")}
            continue
        out.append((lname, value))
    if listed:
        out = [(n, v) for n, v in out if n not in listed]
    if extra:
        out.extend(extra)
    return out


class _UpstreamFailures:
    """A service that fails to answer becomes the 502 / 504 problem of the gateway. A plain
    class, made once per service: a generator-based context manager cost a few microseconds,
    twice per forwarded call."""

    __slots__ = ("service", "timeout")

    def __init__(self, service: str, timeout: float) -> None:
        self.service = service
        self.timeout = timeout

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if kind is None:
            return
        if issubclass(kind, UpstreamTimeout):
            raise GatewayTimeout(
                f"the {self.service} service did not answer within {self.timeout:g} s"
            ) from None
        if issubclass(kind, UpstreamError):
            log.warning("upstream %s failed: %s", self.service, exc)
            raise BadGateway(f"the {self.service} service could not be reached") from None


class Proxy:
    """What forwarding needs, made in lifespan and kept on `app.state.proxy`: a keep-alive
    pool per service (upstream.py), the internal-token signer, and an aiohttp session for the
    gateway's other calls to services (the merged OpenAPI document)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        signer: TokenSigner,
        upstreams: dict[str, str],
        *,
        pool_size: int,
        timeout: float,
        connect_timeout: float,
        trusted_proxies: TrustedProxies = NO_PROXIES,
    ) -> None:
        self.session = session
        self.trusted_proxies = trusted_proxies
        self.signer = signer
        self.upstreams = upstreams
        self.timeout = timeout
        self.pools = {
            name: UpstreamPool(
                url, limit=pool_size, connect_timeout=connect_timeout, timeout=timeout
            )
            for name, url in upstreams.items()
        }
        self._failures = {name: _UpstreamFailures(name, timeout) for name in upstreams}
        # Made in lifespan, on the loop that serves: kept, as a call to get_running_loop() is
        # a getpid() system call on Python 3.11.
        self.loop = asyncio.get_running_loop()

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()
        await self.session.close()

    async def exchange(
        self,
        scope: Scope,
        receive: Receive,
        *,
        service: str,
        path: str,
        principal: Principal,
        headers: list[tuple[bytes, bytes]],
        host: bytes | None,
        has_body: bool,
    ) -> tuple[UpstreamPool, Any, Answer]:
        """Send the call on to `service`; returns once the answer's head is in (the whole
        answer, when it is small). BadGateway/GatewayTimeout when the service cannot be reached
        or is too slow. The caller hands the connection back: `pool.release(conn, answer)`."""
        pool = self.pools[service]
        method: str = scope["method"]
        method_raw = method.encode("ascii")
        query: bytes = scope.get("query_string", b"")
        # The path as the client wrote it (percent-encoding intact), unless it is rewritten.
        raw_path = scope.get("raw_path") if path == scope["path"] else None
        target = pool.prefix + (raw_path or path.encode("utf-8"))
        if query:
            target += b"?" + query
        parts = [method_raw, b" ", target, b" HTTP/1.1\r\nhost: ", pool.host_header, b"\r\n"]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        client = client_address(scope, self.trusted_proxies)
        if client:
            parts += (b"x-forwarded-for: ", client.encode("latin-1"), b"\r\n")
        scheme = client_scheme(scope, self.trusted_proxies)
        parts += (b"x-forwarded-proto: ", scheme.encode("latin-1"), b"\r\n")
        if host:
            parts += (b"x-forwarded-host: ", host, b"\r\n")
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            parts += (b"x-request-id: ", request_id.encode("latin-1"), b"\r\n")
        parts.append(self.signer.header_line(principal, service))

        deadline = self.loop.time() + self.timeout
        with self._failures[service]:
            if not has_body:
                parts.append(b"\r\n")
                conn, answer = await pool.request(
                    method_raw, b"".join(parts), None, deadline, BUFFER_LIMIT
                )
            else:
                length = next((int(v) for n, v in headers if n == b"content-length"), None)
                if length is None or length <= BUFFER_LIMIT:
                    # Unknown length (chunked): read whole through the counting receive (413
                    # past the limit) before anything reaches the service.
                    body = await _read_body(receive)
                    if length is None:
                        parts.append(b"content-length: %d\r\n" % len(body))
                    parts.append(b"\r\n")
                    conn, answer = await pool.request(
                        method_raw, b"".join(parts), body, deadline, BUFFER_LIMIT
                    )
                else:
                    parts.append(b"\r\n")
                    conn, answer = await pool.request_streamed(
                        method_raw, b"".join(parts), _stream_body(receive), deadline, BUFFER_LIMIT
                    )
        return pool, conn, answer

    async def read_small(self, service: str, answer: Answer) -> bytes | None:
        """The whole body of an answer small enough to be read at once, else None (stream)."""
        size = answer.content_length
        if answer.complete or (size is not None and size <= BUFFER_LIMIT):
            with self._failures[service]:
                return await answer.read()
        return None

    async def deliver(
        self,
        send: Send,
        service: str,
        pool: UpstreamPool,
        conn: Any,
        answer: Answer,
        extra_response_headers: list[tuple[bytes, bytes]],
    ) -> None:
        """The answer of `exchange` sent back as ASGI messages; the connection handed back."""
        try:
            out_headers = answer_headers(answer.headers, extra_response_headers)
            body = await self.read_small(service, answer)
            if body is not None:
                await send(
                    {"type": "http.response.start", "status": answer.status, "headers": out_headers}
                )
                await send({"type": "http.response.body", "body": body})
                return
            await send(
                {"type": "http.response.start", "status": answer.status, "headers": out_headers}
            )
            try:
                async for chunk in answer.stream():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (UpstreamError, UpstreamTimeout) as exc:
                # The status line is gone already; cutting the connection tells the client.
                log.warning("upstream %s failed mid-answer: %s", service, exc or "timeout")
                raise
            await send({"type": "http.response.body", "body": b""})
        finally:
            pool.release(conn, answer)


# --- the edge: body size, authentication, rate limit, forwarding -----------------------------

# Request headers never passed on (lower-case, as the server hands them over).
_DROPPED_REQUEST_HEADERS = frozenset(
    name.encode("latin-1") for name in HOP_BY_HOP | IDENTITY_HEADERS | OWN_REQUEST_HEADERS
)
_DROPPED_PREFIXES = (b"x-auth-", b"x-user-")
_FORWARDED_BY_PROXIES = frozenset({b"x-forwarded-for", b"x-forwarded-proto"})
_DROPPED_RESPONSE_HEADERS = frozenset(
    name.encode("latin-1") for name in HOP_BY_HOP | OWN_RESPONSE_HEADERS
)
_ANONYMOUS = "sign in (bearer token) or send an API key (X-API-Key)"


@dataclasses.dataclass
class EdgeState:
    """What the edge needs from lifespan, filled in by `proxy_lifespan` (None before)."""

    proxy: Proxy | None = None
    authenticator: Authenticator | None = None
    limiter: RateLimiter | None = None


@dataclasses.dataclass(slots=True)
class Incoming:
    """What the edge needs of a call's request headers, found in one pass (`read_headers`)."""

    kept: list[tuple[bytes, bytes]]  # the headers that go upstream
    length: bytes | None = None
    chunked: bool = False
    authorization: bytes | None = None
    api_key: bytes | None = None
    host: bytes | None = None
    connection: bytes | None = None
    request_id: bytes | None = None
    # What makes a call take the ASGI path rather than the front's (front.py).
    origin: bool = False
    forwarded: bool = False  # X-Forwarded-For / -Proto: the server's proxy-headers rule
    upgrade: bool = False

    @property
    def has_body(self) -> bool:
        return self.length is not None or self.chunked


def read_headers(headers: list[tuple[bytes, bytes]]) -> Incoming:
    incoming = Incoming([])
    kept = incoming.kept
    for name, value in headers:
        if name in _DROPPED_REQUEST_HEADERS:
            if name == b"authorization":
                if incoming.authorization is None:
                    incoming.authorization = value
            elif name == b"x-api-key":
                if incoming.api_key is None:
                    incoming.api_key = value
            elif name == b"host":
                incoming.host = value
            elif name == b"connection":
                previous = incoming.connection
                incoming.connection = value if previous is None else previous + b"," + value
            elif name == b"transfer-encoding":
                incoming.chunked = True
            elif name == b"x-request-id":
                incoming.request_id = value
            elif name in _FORWARDED_BY_PROXIES:
                incoming.forwarded = True
            elif name == b"upgrade":
                incoming.upgrade = True
        elif name.startswith(_DROPPED_PREFIXES):
            continue
        else:
            if name == b"content-length":
                incoming.length = value
            elif name == b"origin":
                incoming.origin = True
            kept.append((name, value))
    return incoming


@dataclasses.dataclass(slots=True)
class Admission:
    """Who is calling and what the rate limit says (`GatewayMiddleware.admit`)."""

    principal: Principal | None
    # Credentials sent but not valid: the answer to a forwarded call (401).
    refused: DomainError | None
    limit_headers: list[tuple[bytes, bytes]]
    # Over the limit: the answer, whatever the call (429).
    over_limit: TooManyRequests | None = None


def forward_target(path: str) -> tuple[Any, str, str] | None:
    """(route label, service, service path) of a forwarded public path, else None."""
    route = route_for(path)
    if route is not None:
        return route, route.service, path
    if path.startswith(_FEEDS) and path[len(_FEEDS) :] in SERVICES:
        return _FEED_LABEL, path[len(_FEEDS) :], SERVICE_EVENTS_PATH
    return None


def _problem(exc: DomainError, scope: Scope) -> Response:
    return exc.to_response(Request(scope))


class GatewayMiddleware:
    """The gateway's edge, inside CORS and the kit's request context (see main.py).

    Every /api/ call is checked here: body size, authentication, rate limit. Calls to the route
    table's paths (and to the services' event feeds) are forwarded from here, without passing
    through FastAPI's middleware stack or router; everything else (identity's routes, the
    gateway's own feed, docs, health, metrics, unknown paths) goes on to the FastAPI app.
    Most forwarded calls do not even come here: the gateway's front (front.py) answers them
    from the server's protocol, with the same `read_headers`, `admit` and `exchange`.
    """

    def __init__(self, app: ASGIApp, settings: Settings, state: EdgeState | None = None) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.rate_limits = settings.rate_limit_enabled
        self.policies = Policies(settings)
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        self.state = state

    def runtime(self, scope: Scope) -> EdgeState:
        if self.state is not None:
            return self.state
        # Mounted without a shared EdgeState (older wiring): read the app's state per call.
        app_state = scope["app"].state
        return EdgeState(
            getattr(app_state, "proxy", None),
            getattr(app_state, "authenticator", None),
            getattr(app_state, "rate_limiter", None),
        )

    def too_large(self, incoming: Incoming) -> PayloadTooLarge | None:
        if incoming.length is None:
            return None
        try:
            too_big = int(incoming.length) > self.max_body
        except ValueError:
            too_big = False
        if not too_big:
            return None
        return PayloadTooLarge(f"the request body may be at most {self.max_body} bytes")

    async def admit(self, runtime: EdgeState, scope: Scope, incoming: Incoming) -> Admission:
        """Authenticate (cached) and count the call against its rate limit: per principal, or
        per client address when anonymous or when the credentials are refused (so guessing
        keys or tokens is limited too)."""
        refused: DomainError | None = None
        principal: Principal | None = None
        authenticator = runtime.authenticator
        if authenticator is not None and scope["path"] not in SIGN_IN_PATHS:
            authorization, api_key = incoming.authorization, incoming.api_key
            try:
                principal = await authenticator.authenticate_credentials(
                    None if authorization is None else authorization.decode("latin-1"),
                    None if api_key is None else api_key.decode("latin-1"),
                )
            except DomainError as exc:
                refused = exc
        admission = Admission(principal, refused, [])
        limiter = runtime.limiter
        if not self.rate_limits or limiter is None:
            return admission
        if principal is None:
            subject = f"addr:{client_address(scope, self.trusted_proxies) or 'unknown'}"
            policy = self.policies.anonymous
        else:
            subject = f"{principal.kind}:{principal.sub}"
            policy = self.policies.for_principal(principal)
        decision = limiter.hit_now(subject, policy) or await limiter.hit(subject, policy)
        admission.limit_headers = decision.headers()
        if not decision.allowed:
            admission.over_limit = TooManyRequests(
                f"more than {policy.quota} requests in {policy.window} s; "
                f"try again in {decision.reset} s",
                headers={
                    "Retry-After": str(decision.reset),
                    **{k.decode(): v.decode() for k, v in admission.limit_headers},
                },
            )
        return admission

    async def exchange(
        self,
        runtime: EdgeState,
        scope: Scope,
        receive: Receive,
        incoming: Incoming,
        admission: Admission,
        service: str,
        target: str,
    ) -> tuple[Proxy, UpstreamPool, Any, Answer]:
        """A forwarded call sent on: the DomainError to answer with when it may not be (401,
        403) or the service fails (502, 504); else the proxy, pool, connection and answer."""
        if admission.refused is not None:
            raise admission.refused
        principal = admission.principal
        if principal is None:
            raise Unauthorized(_ANONYMOUS)
        if target == SERVICE_EVENTS_PATH:
            principal = feed_reader(principal)
        proxy = runtime.proxy
        if proxy is None:
            raise BadGateway("the gateway is not ready to forward yet")
        kept = incoming.kept
        if incoming.connection is not None:
            kept = _without_connection_listed(kept, incoming.connection)
        pool, conn, answer = await proxy.exchange(
            scope,
            receive,
            service=service,
            path=target,
            principal=principal,
            headers=kept,
            host=incoming.host,
            has_body=incoming.has_body,
        )
        return proxy, pool, conn, answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PATHS):
            await self.app(scope, receive, send)
            return
        incoming = read_headers(scope["headers"])
        too_large = self.too_large(incoming)
        if too_large is not None:
            await _problem(too_large, scope)(scope, receive, send)
            return
        if incoming.length is None and incoming.chunked:
            receive = self._counting(receive)

        runtime = self.runtime(scope)
        admission = await self.admit(runtime, scope, incoming)
        state = scope.setdefault("state", {})
        state[PRINCIPAL_KEY] = admission.principal
        if admission.over_limit is not None:
            await _problem(admission.over_limit, scope)(scope, receive, send)
            return
        extra = admission.limit_headers

        path: str = scope["path"]
        where = forward_target(path)
        if where is None:
            # Identity's own routes, the gateway's own feed, the docs, or a 404.
            if extra:
                send = _with_headers(send, extra)
            if admission.refused is not None:
                await _problem(admission.refused, scope)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        # Forwarded calls skip the router: the hottest path does the least.
        label, service, target = where
        scope["route"] = label
        started = False

        async def send_answer(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            proxy, pool, conn, answer = await self.exchange(
                runtime, scope, receive, incoming, admission, service, target
            )
            await proxy.deliver(send_answer, service, pool, conn, answer, extra)
        except ClientDisconnected:
            return
        except DomainError as exc:
            if started:
                raise
            response = exc.to_response(Request(scope))
            if extra:
                response.raw_headers.extend(extra)
            await response(scope, receive, send)
        except Exception:
            # What FastAPI's ServerErrorMiddleware does for routed calls: the 500 problem
            # document when nothing was sent yet, and the error on to the server.
            log.exception("unhandled error while forwarding", extra={"path": path})
            if not started:
                await InternalError().to_response()(scope, receive, send)
            raise

    def _counting(self, receive: Receive) -> Receive:
        """A body without Content-Length is counted as it arrives and cut off past the limit."""
        seen = 0
        limit = self.max_body

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"the request body may be at most {limit} bytes")
            return message

        return counted


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return send_with_headers


def _without_connection_listed(
    headers: list[tuple[bytes, bytes]], connection: bytes
) -> list[tuple[bytes, bytes]]:
    """RFC 9110 §7.6.1: the fields a Connection header names are hop-by-hop too."""
    listed = {v.strip().lower() for v in connection.split(b",")} - {b""}
    return [(n, v) for n, v in headers if n not in listed]


def current_principal(request: Request) -> Principal:
    principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if principal is None:
        raise Unauthorized(_ANONYMOUS)
    return principal


# --- event feeds ------------------------------------------------------------------------------


def feed_reader(principal: Principal) -> Principal:
    """The caller as a feed reader: admins, or holders of the events:read scope."""
    if principal.has_scope(EVENTS_SCOPE):
        return principal
    if not principal.is_admin:
        raise Forbidden(f"reading event feeds needs the admin role or the '{EVENTS_SCOPE}' scope")
    # The service checks the scope itself; the gateway has decided an admin may read.
    return dataclasses.replace(principal, scopes=principal.scopes | {EVENTS_SCOPE})


events_router = APIRouter(tags=["events"])
_IDENTITY_FEED_SQL = feed_sql(SCHEMA)


@events_router.get(
    EVENTS_PREFIX + "/{app}",
    summary="An app's events, in feed order (CloudEvents); admin, or a key with events:read",
    responses={200: {"content": {"application/json": {}}}},
)
async def event_feed(
    request: Request,
    app: str,
    after: Annotated[str | None, Query(description="`next_cursor` of the last page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    principal = current_principal(request)
    if app not in EVENT_FEEDS:
        raise NotFound(f"no event feed named {app!r}; feeds: {', '.join(EVENT_FEEDS)}")
    principal = feed_reader(principal)
    if app == IDENTITY_FEED:
        txid, position = parse_feed_cursor(after)
        db: Database = request.app.state.db
        rows = await db.read_pool().fetch(_IDENTITY_FEED_SQL, txid, position, limit)
        return Response(render_feed(rows, after, limit), media_type="application/json")
    # Services' feeds are forwarded by GatewayMiddleware before routing; this stays for
    # completeness should that ever change.
    return _ForwardedFeed(app, principal)


class _ForwardedFeed(Response):
    """A service's feed forwarded from the router (the edge normally does it before)."""

    def __init__(self, service: str, principal: Principal) -> None:
        self.service = service
        self.principal = principal
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxy: Proxy = scope["app"].state.proxy
        incoming = read_headers(scope["headers"])
        pool, conn, answer = await proxy.exchange(
            scope,
            receive,
            service=self.service,
            path=SERVICE_EVENTS_PATH,
            principal=self.principal,
            headers=incoming.kept,
            host=incoming.host,
            has_body=False,
        )
        await proxy.deliver(send, self.service, pool, conn, answer, [])


# --- assembly ---------------------------------------------------------------------------------


@asynccontextmanager
async def proxy_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=16, keepalive_timeout=4),
        # A shared jar would hand one user's cookies to the next.
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
    signer = TokenSigner(
        load_or_generate_key(settings.internal_token_private_key),
        issuer=settings.internal_token_issuer,
        ttl_seconds=settings.internal_token_ttl_seconds,
        refresh_margin_seconds=settings.internal_token_refresh_margin_seconds,
    )
    proxy = Proxy(
        session,
        signer,
        upstreams(settings),
        pool_size=settings.upstream_pool_size,
        timeout=settings.upstream_timeout_seconds,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
    )
    app.state.proxy = proxy
    db: Database = app.state.db
    redis_store = RedisCounterStore(settings.redis_url) if settings.redis_url else None
    limiter = RateLimiter(
        redis_store or PostgresCounterStore(db.read_pool()),
        sync_interval=settings.rate_limit_sync_interval_seconds,
    )
    limiter.start()
    app.state.rate_limiter = limiter
    edge: EdgeState | None = getattr(app.state, "edge", None)
    if edge is not None:
        edge.proxy = proxy
        edge.limiter = limiter
        edge.authenticator = getattr(app.state, "authenticator", None)
    try:
        yield
    finally:
        if edge is not None:
            edge.proxy = edge.limiter = edge.authenticator = None
        await limiter.stop()
        if redis_store is not None:
            await redis_store.aclose()
        await proxy.close()
