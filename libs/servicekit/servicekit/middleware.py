"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a copy per request).

This wraps every request of every app, so it is kept lean (bench/foundation.py measures it):
the labelled metric children are looked up once per (method, route, status) and kept, and the
access line skips the logging module's caller lookup, which nothing in the JSON line uses.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import ACT_STATE_KEY
from servicekit.clock import Clock, reset_clock, use_clock
from servicekit.context import request_id_var
from servicekit.errors import problem_for_unexpected
from servicekit.ids import random_hex
from servicekit.metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = logging.getLogger("servicekit.access")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_UNMATCHED = "<unmatched>"
_REQUEST_ID_HEADER = b"x-request-id"
# Enough for every (method, route, status) an app really serves; past it (a client inventing
# methods) the children are still counted, just looked up each time.
_MAX_CACHED_SERIES = 2048


def route_template(route: Any) -> str:
    """The label a matched route is counted and logged under."""
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else _UNMATCHED


def _route_template(scope: Scope) -> str:
    return route_template(scope.get("route"))


class RequestContextMiddleware:
    """Request id in and out, one JSON access line, and the request metrics."""

    def __init__(
        self,
        app: ASGIApp,
        app_name: str,
        quiet_paths: frozenset[str] = frozenset(),
        clock: Clock | None = None,
    ):
        self.app = app
        self.app_name = app_name
        self.quiet_paths = quiet_paths
        # An injected clock (tests) is made the current one for each request; the system's
        # is the default and costs nothing here.
        self.clock = clock
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _metrics(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                HTTP_REQUESTS.labels(self.app_name, method, route, str(status)),
                HTTP_LATENCY.labels(self.app_name, method, route),
            )
            if len(self._series) < _MAX_CACHED_SERIES:
                self._series[key] = series
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER:
                given = value
                break
        request_id = request_id_for(given)
        token = request_id_var.set(request_id)
        clock_token = None if self.clock is None else use_clock(self.clock)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_REQUEST_ID_HEADER, request_id.encode())
        status = 500
        started = False
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            # What got past the app's own handlers (a layer in front of them, such as the
            # gateway's edge) is answered the kit's way too: a 503 while the database is away.
            if started:
                raise
            problem = problem_for_unexpected(exc, scope["path"])
            await problem.to_response(instance=scope["path"])(scope, receive, send_wrapper)
        finally:
            self.finish(
                scope["method"],
                scope["path"],
                _route_template(scope),
                status,
                time.perf_counter() - start,
                scope["state"].get(ACT_STATE_KEY),
            )
            request_id_var.reset(token)
            if clock_token is not None:
                reset_clock(clock_token)

    def finish(
        self,
        method: str,
        path: str,
        route: str,
        status: int,
        elapsed: float,
        act: tuple[str, ...] | None = None,
    ) -> None:
        """Count a request and write its access line (the request id is the context's).
        `act`: the apps that made the call on the principal's behalf, nearest first."""
        requests, latency = self._metrics(method, route, status)
        requests.inc()
        latency.observe(elapsed)
        if path not in self.quiet_paths and access_log.isEnabledFor(logging.INFO):
            fields = {
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            }
            if act:
                fields["act"] = list(act)
            # A record made here rather than by `access_log.info`: nothing in the line uses
            # the caller's frame, which the logging module would look up on every request.
            record = access_log.makeRecord(
                access_log.name,
                logging.INFO,
                __file__,
                0,
                "request",
                (),
                None,
                "RequestContextMiddleware",
                fields,
            )
            access_log.handle(record)


def request_id_for(given: bytes | None) -> str:
    """The caller's X-Request-ID when it is a sane one, else a new id."""
    if given is not None:
        candidate = given.decode("latin-1")
        if _VALID_REQUEST_ID.match(candidate):
            return candidate
    return random_hex()
