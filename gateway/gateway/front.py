"""The gateway's front: forwarded calls answered from the server's protocol, not through ASGI.

`uvicorn --http gateway.front:GatewayProtocol` (the stack, the image and the bench serve the
gateway so). uvicorn stays the server: sockets, keep-alive, pipelining, 100-continue, limits and
graceful shutdown are its own, and every call still gets uvicorn's request cycle, whose state
is what pipelining, disconnects and shutdown look at. For the calls the front takes, only the
application call and the writing of the answer are the front's: the ASGI layers (uvicorn's proxy
headers, FastAPI, CORS, the kit's request context, the edge) and uvicorn's `send` are skipped,
and the answer leaves in one write.

Why: measured on this 2-core machine, 32 connections, one customer record, CPU per forwarded
call of the process in the middle, side by side: a bare asyncio-protocol forwarder over the
same pool ~90 us, a bare ASGI forwarder under uvicorn ~140 us, the gateway through its ASGI
stack ~210-250 us, the gateway with this front ~150-200 us; the service itself spends ~200-250
us per call, and on two shared cores the hop's cost decides how much of the service's
throughput is left (bench/gateway.py, bench/README.md).

What the front takes: a call to a forwarded path (the route table's, the services' event feeds)
with a method other than HEAD and OPTIONS, no Origin (browsers' calls keep Starlette's CORS
policy), no Upgrade, and a body of known length no larger than the read-whole limit. Everything
else (identity, docs, health, metrics, chunked or large bodies) goes through ASGI as before.
Both paths run the edge's own steps (`read_headers`, `admit`, `exchange`, `answer_headers`) and
the kit's bookkeeping (request id, metrics, access line), so they answer alike; the gateway's
tests run the forwarding cases through both.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle
from uvicorn.server import ServerState

from gateway.cors import vary_origin
from gateway.proxy import (
    API_PATHS,
    BUFFER_LIMIT,
    ClientDisconnected,
    GatewayMiddleware,
    Incoming,
    answer_headers,
    forward_target,
    read_headers,
)
from gateway.upstream import Answer, UpstreamError, UpstreamTimeout
from servicekit.context import request_id_var
from servicekit.errors import DomainError, problem_for_unexpected
from servicekit.middleware import RequestContextMiddleware, request_id_for, route_template
from servicekit.server import HttpProtocol

log = logging.getLogger("gateway.front")

# HEAD answers carry no body whatever their length says; OPTIONS is CORS's.
_NOT_TAKEN_METHODS = frozenset({"HEAD", "OPTIONS"})
_WITHOUT_BODY = frozenset({204, 304})


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    return None


class Front:
    """The gateway's fast path; made by `create_app` and kept on `app.state.front`."""

    def __init__(self, edge: GatewayMiddleware, context: RequestContextMiddleware) -> None:
        self.edge = edge
        self.context = context
        self.body_limit = min(BUFFER_LIMIT, edge.max_body)
        # uvicorn's rule for X-Forwarded-For/-Proto from trusted proxies, as the server applies
        # it to the ASGI path (set by the first connection, from the server's config).
        self.proxy_headers: ProxyHeadersMiddleware | None = None
        self._configured = False

    def configure(self, config: Config) -> None:
        if not self._configured:
            self._configured = True
            if config.proxy_headers:
                self.proxy_headers = ProxyHeadersMiddleware(
                    cast(Any, _nothing), config.forwarded_allow_ips
                )

    def takes(self, scope: Scope) -> tuple[Incoming, tuple[Any, str, str]] | None:
        """What `serve` needs, for a call the front answers; None for the ASGI path."""
        path: str = scope["path"]
        if not path.startswith(API_PATHS) or scope["method"] in _NOT_TAKEN_METHODS:
            return None
        where = forward_target(path)
        if where is None:
            return None
        incoming = read_headers(scope["headers"])
        if incoming.origin or incoming.chunked or incoming.upgrade:
            return None
        if incoming.length is not None:
            try:
                if int(incoming.length) > self.body_limit:
                    return None
            except ValueError:
                return None
        return incoming, where

    async def serve(
        self,
        protocol: GatewayProtocol,
        cycle: RequestResponseCycle,
        incoming: Incoming,
        where: tuple[Any, str, str],
    ) -> None:
        scope: Any = cycle.scope
        label, service, target = where
        started = time.perf_counter()
        request_id = request_id_for(incoming.request_id)
        token = request_id_var.set(request_id)
        scope["state"]["request_id"] = request_id
        answer = _Answering(protocol, cycle, request_id)
        status = 500
        try:
            if incoming.forwarded and self.proxy_headers is not None:
                await self.proxy_headers(scope, _nothing, _nothing)  # type: ignore[arg-type]
            status = await self._forward(answer, incoming, service, target)
        except Exception as exc:
            if not cycle.response_started:
                # The kit's answer: a 503 while the database is away (admission reads it).
                status = answer.problem(problem_for_unexpected(exc, scope["path"]))
            else:
                log.exception("unhandled error while forwarding", extra={"path": scope["path"]})
                protocol.transport.close()
        finally:
            # As uvicorn's cycle does once its application has returned.
            cycle.on_response = lambda: None
            self.context.finish(
                scope["method"],
                scope["path"],
                route_template(label),
                status,
                time.perf_counter() - started,
            )
            request_id_var.reset(token)

    async def _forward(
        self, answering: _Answering, incoming: Incoming, service: str, target: str
    ) -> int:
        edge = self.edge
        scope: Any = answering.cycle.scope
        runtime = edge.runtime(scope)
        admission = await edge.admit(runtime, scope, incoming)
        if admission.over_limit is not None:
            return answering.problem(admission.over_limit)
        extra = admission.limit_headers
        try:
            proxy, pool, conn, answer = await edge.exchange(
                runtime,
                scope,
                cast(Receive, answering.cycle.receive),
                incoming,
                admission,
                service,
                target,
            )
        except ClientDisconnected:
            return 500  # nothing to answer; counted as the ASGI path counts it
        except DomainError as exc:
            return answering.problem(exc, extra)
        try:
            headers = answer_headers(answer.headers, extra)
            try:
                body = await proxy.read_small(service, answer)
            except DomainError as exc:
                return answering.problem(exc, extra)
            if body is not None:
                answering.whole(answer.status, headers, body)
            else:
                await answering.stream(answer.status, headers, answer, service)
            return answer.status
        finally:
            pool.release(conn, answer)


class _Answering:
    """Writes one answer on the protocol's transport, as uvicorn's `send` would frame it."""

    __slots__ = ("cycle", "protocol", "request_id")

    def __init__(
        self, protocol: GatewayProtocol, cycle: RequestResponseCycle, request_id: str
    ) -> None:
        self.protocol = protocol
        self.cycle = cycle
        self.request_id = request_id

    def _head(
        self, status: int, headers: list[tuple[bytes, bytes]], length: int | None, chunked: bool
    ) -> list[bytes]:
        parts = [STATUS_LINE[status]]
        for name, value in self.protocol.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        has_length = False
        for name, value in vary_origin(headers):
            if name == b"content-length":
                has_length = True
            parts += (name, b": ", value, b"\r\n")
        parts += (b"x-request-id: ", self.request_id.encode("latin-1"), b"\r\n")
        if length is not None and not has_length and status not in _WITHOUT_BODY:
            parts.append(b"content-length: %d\r\n" % length)
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        if not self.cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        self.cycle.response_started = True
        return parts

    def _complete(self) -> None:
        cycle = self.cycle
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            self.protocol.transport.close()
        cycle.on_response()

    def whole(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        if self.cycle.disconnected:
            return
        parts = self._head(status, headers, len(body), chunked=False)
        parts.append(body)
        self.protocol.coalescing.write_now(b"".join(parts))
        self._complete()

    async def stream(
        self, status: int, headers: list[tuple[bytes, bytes]], answer: Answer, service: str
    ) -> None:
        if self.cycle.disconnected:
            return
        chunked = answer.content_length is None and status not in _WITHOUT_BODY
        transport = self.protocol.coalescing
        flow = self.protocol.flow
        transport.write_now(b"".join(self._head(status, headers, None, chunked)))
        try:
            async for chunk in answer.stream():
                if self.cycle.disconnected:
                    return
                if not chunk:
                    continue
                transport.write_now(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if flow.write_paused:
                    await flow.drain()
        except (UpstreamError, UpstreamTimeout) as exc:
            # The status line is gone already; cutting the connection tells the client.
            log.warning("upstream %s failed mid-answer: %s", service, exc or "timeout")
            transport.close()
            return
        if chunked:
            transport.write_now(b"0\r\n\r\n")
        self._complete()

    def problem(self, exc: DomainError, extra: list[tuple[bytes, bytes]] | None = None) -> int:
        """The problem document of `exc` (as the ASGI path renders it), `extra` headers added."""
        response = exc.to_response(instance=self.cycle.scope["path"])
        headers = [*response.raw_headers, *(extra or ())]
        self.whole(exc.status, headers, bytes(response.body))
        return exc.status


class GatewayProtocol(HttpProtocol):
    """The kit's protocol (uvicorn's httptools one) with the gateway's front in it."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: Any = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.front = find_front(config.loaded_app)
        if self.front is not None:
            self.front.configure(config)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        front = self.front
        # `app` is another one when uvicorn answers for itself (over its concurrency limit).
        if front is not None and app is self.app:
            chosen = front.takes(cast(Scope, cycle.scope))
            if chosen is not None:
                task = self.loop.create_task(front.serve(self, cycle, *chosen))
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return
        super()._start_asgi_task(cycle, app)


def find_front(app: Any) -> Front | None:
    """The gateway's front behind the server's app (uvicorn wraps it in its middlewares)."""
    for _ in range(8):
        front = getattr(getattr(app, "state", None), "front", None)
        if isinstance(front, Front):
            return front
        app = getattr(app, "app", None)
        if app is None:
            break
    return None
