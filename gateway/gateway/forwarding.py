"""A call sent on to its service and the answer brought back, over the upstream pools.

The request: the client's method, path and query unchanged, the headers `headers.py` keeps,
the gateway's own forwarding headers and the internal token for the service. Bodies up to
`BUFFER_LIMIT` (and chunked ones, counted against the size limit as they arrive) are read
whole and sent with the head; larger ones stream. The answer: small ones are read whole and
sent back in one piece, larger ones stream, flow-controlled both ways (the pool stops reading
from the service while the client is slower).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from starlette.types import Receive, Scope, Send

from gateway.clientaddr import NO_PROXIES, TrustedProxies, client_address, client_scheme
from gateway.exceptions import MAY_HAVE_COMPLETED, BadGateway, GatewayTimeout
from gateway.headers import Incoming, answer_headers
from gateway.signing import TokenSigner
from gateway.upstream import Answer, UpstreamError, UpstreamPool, UpstreamTimeout
from servicekit.auth import Principal
from servicekit.errors import DomainError

log = logging.getLogger("gateway.forwarding")

# Bodies up to this size are read whole (one send upstream, one send back); larger ones stream.
BUFFER_LIMIT = 64 * 1024


class ClientDisconnected(Exception):
    """The client went away while its request body was still arriving."""


class Forwarder:
    """A keep-alive pool per service and the internal-token signer; made at start-up."""

    def __init__(
        self,
        signer: TokenSigner,
        upstreams: dict[str, str],
        *,
        pool_size: int,
        timeout: float,
        connect_timeout: float,
        trusted_proxies: TrustedProxies = NO_PROXIES,
        unreachable: Callable[[str], None] = lambda service: None,
    ) -> None:
        self.signer = signer
        # Told of each service found unreachable (the merged API document fetches it again).
        self.unreachable = unreachable
        self.trusted_proxies = trusted_proxies
        self.timeout = timeout
        # Made at start-up, on the loop that serves: kept, as get_running_loop() is a getpid()
        # system call on Python 3.11.
        self.loop = asyncio.get_running_loop()
        self.pools = {
            name: UpstreamPool(url, limit=pool_size, connect_timeout=connect_timeout)
            for name, url in upstreams.items()
        }

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        service: str,
        path: str,
        principal: Principal,
        incoming: Incoming,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> None:
        """Send the call on to `service` and its answer back. BadGateway / GatewayTimeout
        when the service fails before the answer has started; after that, the error goes on
        (the server cuts the connection, the only way left to tell the client)."""
        pool = self.pools[service]
        head = self._head(pool, scope, service, path, principal, incoming)
        deadline = self.loop.time() + self.timeout
        try:
            if not incoming.has_body:
                answer = await pool.request(
                    scope["method"].encode(), head + b"\r\n", None, deadline, BUFFER_LIMIT
                )
            else:
                answer = await self._send_with_body(pool, scope, receive, head, incoming, deadline)
        except (UpstreamError, UpstreamTimeout) as exc:
            raise self._failure(service, exc) from None
        try:
            await self._answer(send, service, answer, extra_headers)
        finally:
            answer.release()

    def _head(
        self,
        pool: UpstreamPool,
        scope: Scope,
        service: str,
        path: str,
        principal: Principal,
        incoming: Incoming,
    ) -> bytes:
        """The request line and headers, without the blank line that ends them."""
        query: bytes = scope.get("query_string", b"")
        # The path as the client wrote it (percent-encoding intact), unless it is rewritten.
        raw_path = scope.get("raw_path") if path == scope["path"] else None
        target = pool.prefix + (raw_path or path.encode("utf-8"))
        if query:
            target += b"?" + query
        method: str = scope["method"]
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: "]
        parts += (pool.host_header, b"\r\n")
        for name, value in incoming.kept:
            parts += (name, b": ", value, b"\r\n")
        client = client_address(scope, self.trusted_proxies)
        if client:
            parts += (b"x-forwarded-for: ", client.encode("latin-1"), b"\r\n")
        scheme = client_scheme(scope, self.trusted_proxies)
        parts += (b"x-forwarded-proto: ", scheme.encode("latin-1"), b"\r\n")
        if incoming.host:
            parts += (b"x-forwarded-host: ", incoming.host, b"\r\n")
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            parts += (b"x-request-id: ", request_id.encode("latin-1"), b"\r\n")
        parts.append(self.signer.header_line(principal, service))
        return b"".join(parts)

    async def _send_with_body(
        self,
        pool: UpstreamPool,
        scope: Scope,
        receive: Receive,
        head: bytes,
        incoming: Incoming,
        deadline: float,
    ) -> Answer:
        method = scope["method"].encode()
        length = None if incoming.length is None else int(incoming.length)
        if length is not None and length > BUFFER_LIMIT:
            return await pool.request(method, head + b"\r\n", _body_stream(receive), deadline)
        # Known and small, or chunked: read whole (a chunked one through the edge's counting
        # receive, 413 past the limit) before anything reaches the service.
        body = await _read_body(receive)
        if length is None:
            head += b"content-length: %d\r\n" % len(body)
        return await pool.request(method, head + b"\r\n", body, deadline, BUFFER_LIMIT)

    async def _answer(
        self, send: Send, service: str, answer: Answer, extra: list[tuple[bytes, bytes]]
    ) -> None:
        headers = answer_headers(answer.headers, extra)
        size = answer.content_length
        if answer.complete or (size is not None and size <= BUFFER_LIMIT):
            try:
                body = await answer.read()
            except (UpstreamError, UpstreamTimeout) as exc:
                raise self._failure(service, exc) from None
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        try:
            async for chunk in answer.stream():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (UpstreamError, UpstreamTimeout) as exc:
            log.warning("upstream %s failed mid-answer: %s", service, exc or "timeout")
            raise
        await send({"type": "http.response.body", "body": b""})

    def _failure(self, service: str, exc: UpstreamError | UpstreamTimeout) -> DomainError:
        if isinstance(exc, UpstreamTimeout):
            return GatewayTimeout(
                f"the {service} service did not answer within {self.timeout:g} s; "
                + MAY_HAVE_COMPLETED
            )
        log.warning("upstream %s failed: %s", service, exc)
        if exc.sent:
            return BadGateway(
                f"the {service} service failed before answering; " + MAY_HAVE_COMPLETED
            )
        self.unreachable(service)
        return BadGateway(f"the {service} service could not be reached")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _body_stream(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
