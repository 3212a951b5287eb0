"""The gateway's edge: every /api/ call's steps, in order, before any routing.

1. framing: a body whose length two parties could read differently is refused (400, or 501
   for a transfer coding other than chunked), and the connection closed;
2. body size: a Content-Length over the limit is 413 at once, a chunked body is counted as it
   arrives;
3. authentication (`Authenticator`, cached) and the rate limit (per principal, or per client
   address when anonymous or when the credentials are refused, so guessing is limited too);
4. routing: the route table's paths and the services' event feeds are forwarded
   (forwarding.py) with an internal token for the service, without passing FastAPI's
   middlewares or router; everything else (identity's routes, the gateway's own feed, docs,
   health, metrics, unknown paths) goes on to the FastAPI app.

Served by stock uvicorn; the layers around this one are in main.py.
"""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.clientaddr import TrustedProxies, client_address
from gateway.config import Settings
from gateway.exceptions import BadFraming, BadGateway, TransferCodingNotImplemented
from gateway.forwarding import ClientDisconnected, Forwarder
from gateway.headers import Incoming, read_headers
from gateway.identity.authn import SIGN_IN_PATHS, Authenticator
from gateway.ratelimit import Policies, RateLimiter
from gateway.routes import EVENTS_PREFIX, SERVICE_EVENTS_PATH, SERVICES, route_for
from servicekit.auth import ACT_STATE_KEY, Principal
from servicekit.errors import (
    DomainError,
    Forbidden,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    problem_for_unexpected,
)
from servicekit.outbox import EVENTS_SCOPE, feed_scope, may_read_feed

log = logging.getLogger("gateway.edge")

API_PATHS = "/api/"
PRINCIPAL_KEY = "gateway_principal"
_FEEDS = EVENTS_PREFIX + "/"
# What the kit's metrics and access log label forwarded feed calls with.
_FEED_LABEL = SimpleNamespace(path_format=EVENTS_PREFIX + "/{app}")
_ANONYMOUS = "sign in (bearer token) or send an API key (X-API-Key)"
_CHUNKED = b"chunked"
_FEED_READERS_MAX = 10_000


@dataclasses.dataclass
class EdgeState:
    """What the edge needs from start-up, filled in by `startup.edge_lifespan` (None before)."""

    forwarder: Forwarder | None = None
    authenticator: Authenticator | None = None
    limiter: RateLimiter | None = None


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


def feed_reader(principal: Principal, app: str) -> Principal:
    """The caller as a reader of `app`'s feed: admins, holders of `events:<app>`, or of
    `events:read` (every feed)."""
    if may_read_feed(principal, app):
        return principal
    if not principal.is_admin:
        raise Forbidden(
            f"reading the {app} feed needs the admin role or the '{feed_scope(app)}' scope "
            f"('{EVENTS_SCOPE}' opens every feed)"
        )
    # The service checks the scope itself; the gateway has decided an admin may read.
    return dataclasses.replace(principal, scopes=principal.scopes | {feed_scope(app)})


def current_principal(request: Request) -> Principal:
    """The caller the edge authenticated (for the gateway's own routes behind it)."""
    principal: Principal | None = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    if principal is None:
        raise Unauthorized(_ANONYMOUS)
    return principal


class GatewayMiddleware:
    """The edge, inside CORS and the kit's request context (see main.py)."""

    def __init__(self, app: ASGIApp, settings: Settings, state: EdgeState) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.rate_limits = settings.rate_limit_enabled
        self.policies = Policies(settings)
        self.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        # Not proxies: the networks delegated calls come from (a set of networks all the same).
        self.delegation_networks = TrustedProxies(settings.delegation_networks)
        self.state = state
        # (caller, app) -> the caller as that feed's reader: the same principal comes back call
        # after call (the authenticator caches it), and a fresh copy per call also missed the
        # token signer's cache by identity, costing an equality check of every field.
        self._feed_readers: dict[tuple[Principal, str], Principal] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PATHS):
            await self.app(scope, receive, send)
            return
        incoming = read_headers(scope["headers"])
        refusal = self.framing(scope, incoming) or self.too_large(incoming)
        if refusal is not None:
            await _problem(refusal, scope, receive, send)
            return
        if incoming.transfer_encoding is not None:
            receive = self._counting(receive)

        admission = await self.admit(scope, incoming)
        scope.setdefault("state", {})[PRINCIPAL_KEY] = admission.principal
        if admission.over_limit is not None:
            await _problem(admission.over_limit, scope, receive, send)
            return
        extra = admission.limit_headers

        where = forward_target(scope["path"])
        if where is None:
            # Identity's own routes, the gateway's own feed, the docs, or a 404.
            if admission.refused is not None:
                await _problem(admission.refused, scope, receive, send, extra)
                return
            await self.app(scope, receive, _with_headers(send, extra) if extra else send)
            return
        label, service, target = where
        scope["route"] = label
        await self.forward(scope, receive, send, incoming, admission, service, target)

    def framing(self, scope: Scope, incoming: Incoming) -> DomainError | None:
        """The server has parsed the framing already and refused most ambiguities itself
        (gateway/tests/test_framing.py pins which); what it lets through is refused here."""
        if incoming.bad_framing is not None:
            return BadFraming(f"the request has {incoming.bad_framing}")
        coding = incoming.transfer_encoding
        if coding is None:
            return None
        if scope.get("http_version") == "1.0":
            # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding is faulty framing.
            return BadFraming("an HTTP/1.0 request cannot carry Transfer-Encoding")
        if coding.strip().lower() != _CHUNKED:
            # A coding the body would still be wrapped in once de-chunked: the service would
            # read it as the body itself.
            return TransferCodingNotImplemented(
                f"only 'chunked' is accepted as Transfer-Encoding, not {coding.decode('latin-1')!r}"
            )
        return None

    def check_delegation_source(self, scope: Scope) -> None:
        """Delegated calls come from the services, inside `delegation_networks`: an internal
        token presented from anywhere else is refused even when it is valid."""
        address = client_address(scope, self.trusted_proxies)
        if address is None or not self.delegation_networks.judge(address)[1]:
            raise Forbidden("delegated calls are taken only from the services' networks")

    def too_large(self, incoming: Incoming) -> PayloadTooLarge | None:
        if incoming.length is None or int(incoming.length) <= self.max_body:
            return None
        return PayloadTooLarge(f"the request body may be at most {self.max_body} bytes")

    async def admit(self, scope: Scope, incoming: Incoming) -> Admission:
        """Authenticate (cached) and count the call against its rate limit."""
        refused: DomainError | None = None
        principal: Principal | None = None
        authenticator = self.state.authenticator
        if authenticator is not None and scope["path"] not in SIGN_IN_PATHS:
            authorization, api_key = incoming.authorization, incoming.api_key
            delegated = None if authorization or api_key else incoming.delegated
            try:
                if delegated is not None:
                    self.check_delegation_source(scope)
                principal = await authenticator.authenticate_credentials(
                    None if authorization is None else authorization.decode("latin-1"),
                    None if api_key is None else api_key.decode("latin-1"),
                    None if delegated is None else delegated.decode("latin-1"),
                )
            except DomainError as exc:
                refused = exc
            if principal is not None and principal.act:
                scope.setdefault("state", {})[ACT_STATE_KEY] = principal.act
        admission = Admission(principal, refused, [])
        limiter = self.state.limiter
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

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        incoming: Incoming,
        admission: Admission,
        service: str,
        target: str,
    ) -> None:
        """A forwarded call: refused (401, 403) when it may not be, else sent on; the
        service's failures answer 502 / 504 while nothing has been sent yet."""
        extra = admission.limit_headers
        started = False

        async def send_answer(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            if admission.refused is not None:
                raise admission.refused
            principal = admission.principal
            if principal is None:
                raise Unauthorized(_ANONYMOUS)
            if target == SERVICE_EVENTS_PATH:
                principal = self.feed_reader(principal, service)
            forwarder = self.state.forwarder
            if forwarder is None:
                raise BadGateway("the gateway is not ready to forward yet")
            await forwarder.forward(
                scope,
                receive,
                send_answer,
                service=service,
                path=target,
                principal=principal,
                incoming=incoming,
                extra_headers=extra,
            )
        except ClientDisconnected:
            return
        except DomainError as exc:
            if started:
                raise
            await _problem(exc, scope, receive, send, extra)
        except Exception as exc:
            if started:
                # The answer is under way: only the server can still tell the client.
                log.exception("unhandled error while forwarding", extra={"path": scope["path"]})
                raise
            # The kit's answer (logged there): a 503 while the database is away, else a 500.
            await _problem(problem_for_unexpected(exc, scope["path"]), scope, receive, send, extra)

    def feed_reader(self, principal: Principal, app: str) -> Principal:
        """`feed_reader`, remembered per (caller, app): a principal is a frozen value."""
        key = (principal, app)
        reader = self._feed_readers.get(key)
        if reader is None:
            reader = feed_reader(principal, app)
            if len(self._feed_readers) >= _FEED_READERS_MAX:
                self._feed_readers.clear()  # rare and cheap: the next calls work it out again
            self._feed_readers[key] = reader
        return reader

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


async def _problem(
    exc: DomainError,
    scope: Scope,
    receive: Receive,
    send: Send,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    response = exc.to_response(instance=scope["path"])
    if extra:
        response.raw_headers.extend(extra)
    await response(scope, receive, send)


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *extra]
        await send(message)

    return send_with_headers
