"""Calling another app's public API on behalf of the caller being served.

When one app must act in another (opportunities creates the customer of a converted lead;
analytics reads what a manager may read), it calls the other app's public path through the
gateway, under the authority of the user or key whose request it is serving, so that the
other app's own rules (access, codes, duplicate checks, scopes) apply exactly as if that
principal had called. It never writes another app's schema and never acts on its own.

How (the one mechanism, RFC 8693-style delegation):

- the app presents, in `X-Internal-Token`, the internal token its current request came with
  (signed by the gateway, audience: this app, ~60 s life);
- the gateway accepts such a token only when it verifies with the gateway's own key, has not
  expired, and its audience is one of the services; it then loads the principal's current
  facts (a deactivated user or a revoked key is refused), applies that principal's rate
  limit, routes the call as usual and mints a fresh internal token for the target, whose
  `act` claim names the acting app(s) (`Principal.act`, in the access lines of both);
- plain bearer tokens and API keys are untouched by any of this.

Usage: an endpoint takes `calls: GatewayCalls` and hands it to its service, which calls
`await calls.post("/api/v1/customers", json=...)` and reads the `Answer`. The client is made
in the app's lifespan from `GATEWAY_URL`; without it the dependency answers 503.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import aiohttp
import orjson
from fastapi import Depends
from starlette.requests import Request

from servicekit.auth import INTERNAL_TOKEN_HEADER, TOKEN_STATE_KEY, Principal, authenticate
from servicekit.errors import ServiceUnavailable

log = logging.getLogger("servicekit.calls")

STATE_KEY = "gateway_client"


@dataclass(frozen=True, slots=True)
class Answer:
    """The other app's answer, as the gateway relayed it."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON (None when empty or not JSON: a problem the gateway wrote is
        JSON too, so this only happens for bodies no app of ours writes)."""
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None


class GatewayClient:
    """One per app (`app.state.gateway_client`), made in the lifespan from `GATEWAY_URL`."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # One principal's cookies must never reach the next one's call.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def on_behalf_of(
        self, principal: Principal, token: str, request_id: str | None = None
    ) -> CallerCalls:
        return CallerCalls(self, principal, token, request_id)

    async def send(
        self,
        method: str,
        path: str,
        *,
        token: str,
        request_id: str | None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        if not path.startswith("/api/"):
            raise ValueError(f"calls go to the public API (/api/...), not {path!r}")
        sent = {INTERNAL_TOKEN_HEADER: token, **(headers or {})}
        if request_id:
            # The caller's request id travels on, so one user action reads as one trail.
            sent["X-Request-ID"] = request_id
        data = None
        if json is not None:
            data = orjson.dumps(json, default=str)
            sent["Content-Type"] = "application/json"
        try:
            async with self._session().request(
                method, self.base_url + path, params=params, data=data, headers=sent
            ) as resp:
                body = await resp.read()
                return Answer(resp.status, body, dict(resp.headers))
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("call %s %s through the gateway failed: %r", method, path, exc)
            raise ServiceUnavailable(
                f"the gateway could not be reached for {method} {path}; retry shortly"
            ) from None


@dataclass(frozen=True, slots=True)
class CallerCalls:
    """The app's gateway client bound to the principal of the request being served."""

    client: GatewayClient
    principal: Principal
    token: str
    request_id: str | None = None

    async def request(self, method: str, path: str, **kwargs: Any) -> Answer:
        return await self.client.send(
            method, path, token=self.token, request_id=self.request_id, **kwargs
        )

    async def get(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        return await self.request("POST", path, **kwargs)


async def _gateway_calls(request: Request) -> CallerCalls:
    principal = authenticate(request)
    client: GatewayClient | None = getattr(request.app.state, STATE_KEY, None)
    if client is None:
        raise ServiceUnavailable("GATEWAY_URL is not set: this app cannot call other apps")
    state = request.scope["state"]
    return client.on_behalf_of(principal, state[TOKEN_STATE_KEY], state.get("request_id"))


# The app's gateway client on behalf of the current request's principal.
GatewayCalls = Annotated[CallerCalls, Depends(_gateway_calls)]
