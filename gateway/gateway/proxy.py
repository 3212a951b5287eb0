"""The forwarding half of the gateway: authenticate, limit, sign, stream to the service.

Upstream client: one shared `aiohttp.ClientSession` (keep-alive pool) made in lifespan. Chosen
by measurement (`BENCH_GATEWAY_CLIENTS=1 python -m bench gateway`, 2 cores, 32 connections,
one feed event): a minimal forwarder over `httpx.AsyncClient` kept 0.14 of direct throughput
at ~5 ms of CPU per request (encode/httpx#3215); over aiohttp 0.73 at ~0.55 ms.

Order of work for a call under /api/: body size (Content-Length) -> authenticate
(`app.state.authenticator`) -> rate limit (per principal, or per client address when anonymous)
-> route. Service routes refuse anonymous calls (401) and forward with an internal token minted
for the target service and cached per (principal, service).
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
from multidict import CIMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from yarl import URL

from gateway.config import Settings
from gateway.models import SCHEMA
from gateway.ratelimit import Policies, PostgresCounterStore, RateLimiter
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
from servicekit.app import EVENTS_SCOPE
from servicekit.auth import Principal
from servicekit.db import Database
from servicekit.errors import (
    DomainError,
    Forbidden,
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


@dataclasses.dataclass
class Proxy:
    """What forwarding needs, made in lifespan and kept on `app.state.proxy`."""

    session: aiohttp.ClientSession
    signer: TokenSigner
    upstreams: dict[str, str]
    timeout: aiohttp.ClientTimeout


# --- the middleware: body size, authentication, rate limit --------------------------------


def _problem(exc: DomainError, scope: Scope) -> Response:
    return exc.to_response(Request(scope))


class GatewayMiddleware:
    """Runs before routing for every /api/ call (identity's own routes included)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.rate_limits = settings.rate_limit_enabled
        self.policies = Policies(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PATHS):
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
                break
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                too_big = False
            if too_big:
                too_large = PayloadTooLarge(
                    f"the request body may be at most {self.max_body} bytes"
                )
                await _problem(too_large, scope)(scope, receive, send)
                return
        else:
            receive = self._counting(receive)

        state = scope.setdefault("state", {})
        request = Request(scope, receive)
        gateway_app = scope["app"]
        authenticator = getattr(gateway_app.state, "authenticator", None)
        refused_credentials: DomainError | None = None
        principal: Principal | None = None
        try:
            principal = None if authenticator is None else await authenticator.authenticate(request)
        except DomainError as exc:
            # Counted against the address below, so guessing keys or tokens is limited too.
            refused_credentials = exc
        state[PRINCIPAL_KEY] = principal

        limiter: RateLimiter | None = getattr(gateway_app.state, "rate_limiter", None)
        if self.rate_limits and limiter is not None:
            if principal is None:
                client = scope.get("client")
                subject = f"addr:{client[0] if client else 'unknown'}"
                policy = self.policies.anonymous
            else:
                subject = f"{principal.kind}:{principal.sub}"
                policy = self.policies.for_principal(principal)
            decision = await limiter.hit(subject, policy)
            extra = decision.headers()
            if not decision.allowed:
                refused = TooManyRequests(
                    f"more than {policy.quota} requests in {policy.window} s; "
                    f"try again in {decision.reset} s",
                    headers={
                        "Retry-After": str(decision.reset),
                        **{k.decode(): v.decode() for k, v in extra},
                    },
                )
                await _problem(refused, scope)(scope, receive, send)
                return

            downstream = send

            async def send_with_limits(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), *extra]
                await downstream(message)

            send = send_with_limits

        if refused_credentials is not None:
            await _problem(refused_credentials, scope)(scope, receive, send)
            return

        path = scope["path"]
        route = route_for(path)
        if route is not None:
            label: Any = route
            service, target = route.service, path
        elif path.startswith(_FEEDS) and path[len(_FEEDS) :] in SERVICES:
            label = _FEED_LABEL
            service, target = path[len(_FEEDS) :], SERVICE_EVENTS_PATH
        else:
            # Identity's own routes, the gateway's own feed, the docs, or a 404.
            await self.app(scope, receive, send)
            return
        # Forwarded calls skip the router: the hottest path does the least.
        scope["route"] = label
        try:
            if principal is None:
                raise Unauthorized("sign in (bearer token) or send an API key (X-API-Key)")
            if target == SERVICE_EVENTS_PATH:
                principal = feed_reader(principal)
            response = await forward(request, service, target, principal)
        except DomainError as exc:
            response = exc.to_response(request)
        await response(scope, receive, send)

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


# --- forwarding -----------------------------------------------------------------------------


def current_principal(request: Request) -> Principal:
    principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if principal is None:
        raise Unauthorized("sign in (bearer token) or send an API key (X-API-Key)")
    return principal


def _upstream_headers(request: Request, token: str) -> CIMultiDict[str]:
    scope = request.scope
    connection_listed: set[str] = set()
    for name, value in scope["headers"]:
        if name == b"connection":
            connection_listed.update(
                v.strip().lower() for v in value.decode("latin-1").split(",") if v.strip()
            )
    out: CIMultiDict[str] = CIMultiDict()
    host = ""
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1")
        if name == "host":
            host = raw_value.decode("latin-1")
            continue
        if (
            name in HOP_BY_HOP
            or name in IDENTITY_HEADERS
            or name in OWN_REQUEST_HEADERS
            or name in connection_listed
            or name.startswith(("x-auth-", "x-user-"))
        ):
            continue
        out.add(name, raw_value.decode("latin-1"))
    client = scope.get("client")
    if client:
        out["X-Forwarded-For"] = client[0]
    out["X-Forwarded-Proto"] = scope.get("scheme", "http")
    if host:
        out["X-Forwarded-Host"] = host
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        out["X-Request-ID"] = request_id
    out["X-Internal-Token"] = token
    return out


def _response_headers(upstream: aiohttp.ClientResponse) -> list[tuple[bytes, bytes]]:
    listed: set[bytes] = set()
    for name, value in upstream.raw_headers:
        if name.lower() == b"connection":
            listed.update(v.strip().lower() for v in value.split(b",") if v.strip())
    out = []
    for name, value in upstream.raw_headers:
        lname = name.lower()
        key = lname.decode("latin-1")
        if key in HOP_BY_HOP or key in OWN_RESPONSE_HEADERS or lname in listed:
            continue
        out.append((lname, value))
    return out


def _start(status: int, headers: list[tuple[bytes, bytes]]) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers}


class BufferedUpstreamResponse(Response):
    """A small upstream answer, already read: sent in one message."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": self.body})


class StreamingUpstreamResponse(Response):
    """A large or open-ended upstream answer, passed on chunk by chunk."""

    def __init__(
        self, upstream: aiohttp.ClientResponse, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.status_code = upstream.status
        self.upstream = upstream
        self.background = None
        self.raw_headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            async for chunk in self.upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The status line is gone already; cutting the connection tells the client.
            log.warning("upstream failed mid-answer: %s", exc)
            raise
        finally:
            self.upstream.release()


async def _request_body(request: Request) -> bytes | AsyncIterator[bytes] | None:
    headers = request.headers
    length = headers.get("content-length")
    if length is None:
        if "transfer-encoding" not in headers:
            return None
        # Unknown length: read it through the counting receive (413 past the limit) before
        # anything reaches the service.
        return await request.body()
    if int(length) <= BUFFER_LIMIT:
        return await request.body()
    return request.stream()


async def forward(request: Request, service: str, path: str, principal: Principal) -> Response:
    proxy: Proxy = request.app.state.proxy
    token = proxy.signer.token(principal, service)
    query = request.scope.get("query_string", b"")
    target = proxy.upstreams[service] + path + ("?" + query.decode("latin-1") if query else "")
    headers = _upstream_headers(request, token)
    body = await _request_body(request)
    upstream: aiohttp.ClientResponse | None = None
    try:
        upstream = await proxy.session.request(
            request.method,
            URL(target, encoded=True),
            headers=headers,
            data=body,
            allow_redirects=False,
            timeout=proxy.timeout,
        )
        out_headers = _response_headers(upstream)
        size = upstream.content_length
        if request.method == "HEAD" or (size is not None and size <= BUFFER_LIMIT):
            try:
                payload = await upstream.read()
            finally:
                upstream.release()
            return BufferedUpstreamResponse(upstream.status, out_headers, payload)
        return StreamingUpstreamResponse(upstream, out_headers)
    except TimeoutError:
        if upstream is not None:
            upstream.release()
        raise GatewayTimeout(
            f"the {service} service did not answer within {proxy.timeout.total:g} s"
        ) from None
    except aiohttp.ClientError as exc:
        if upstream is not None:
            upstream.release()
        log.warning("upstream %s failed: %s", service, exc)
        raise BadGateway(f"the {service} service could not be reached") from None


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
    return await forward(request, app, SERVICE_EVENTS_PATH, principal)


# --- assembly ---------------------------------------------------------------------------------


@asynccontextmanager
async def proxy_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_pool_size,
        limit_per_host=0,
        keepalive_timeout=30,
        ttl_dns_cache=300,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        # A shared jar would hand one user's cookies to the next.
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
    signer = TokenSigner(
        load_or_generate_key(settings.internal_token_private_key),
        issuer=settings.internal_token_issuer,
        ttl_seconds=settings.internal_token_ttl_seconds,
        refresh_margin_seconds=settings.internal_token_refresh_margin_seconds,
    )
    app.state.proxy = Proxy(
        session=session,
        signer=signer,
        upstreams=upstreams(settings),
        timeout=aiohttp.ClientTimeout(
            total=settings.upstream_timeout_seconds,
            sock_connect=settings.upstream_connect_timeout_seconds,
        ),
    )
    db: Database = app.state.db
    limiter = RateLimiter(
        PostgresCounterStore(db.read_pool()),
        sync_interval=settings.rate_limit_sync_interval_seconds,
    )
    limiter.start()
    app.state.rate_limiter = limiter
    try:
        yield
    finally:
        await limiter.stop()
        await session.close()
        # Lets the connector's transports finish closing before the loop goes away.
        await asyncio.sleep(0)
