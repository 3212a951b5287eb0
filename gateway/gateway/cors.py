"""CORS in front of everything, cheap for the calls that carry no Origin (servers, scripts).

Starlette's CORSMiddleware builds a `Headers` view of the request and a `MutableHeaders` of
the answer on every call, Origin or not; on the forwarded path that was several percent of the
gateway's CPU. Here calls with an Origin (browsers: preflights and simple requests) are handed
to Starlette's middleware, which keeps the policy; the others only get `Vary: Origin` added, as
Starlette adds it (the answer would differ for a caller that sent one).
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ORIGIN = b"origin"
_VARY = b"vary"


def _vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` (changed in place) saying that the answer varies with the Origin header."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == _VARY:
            headers[i] = (name, value + b", Origin")
            return headers
    headers.append((_VARY, b"Origin"))
    return headers


class Cors:
    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.app = app
        self.policy = CORSMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, _value in scope["headers"]:
            if name == _ORIGIN:
                await self.policy(scope, receive, send)
                return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _vary_origin(list(message.get("headers", ())))
            await send(message)

        await self.app(scope, receive, send_with_vary)
