"""One attempt: POST the signed body to the endpoint and say what came of it.

A 2xx answer within the timeout is a success; anything else (another status, a redirect, which
is never followed, a timeout, a refused or failed connection) is a failure. At most the first
KiB of the answer is read, for the log; the rest is never read. Every attempt opens its own
connection through `GuardedResolver`, so the address is checked again each time.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from gateway.webhooks.addresses import AddressPolicy, AddressRefused, GuardedResolver

EXCERPT_BYTES = 1024

SUCCESS, HTTP_ERROR, TIMEOUT, CONNECTION_ERROR, REFUSED = (
    "success",
    "http_error",
    "timeout",
    "connection_error",
    "refused",
)
OUTCOMES = (SUCCESS, HTTP_ERROR, TIMEOUT, CONNECTION_ERROR, REFUSED)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: str
    duration_ms: float
    status_code: int | None = None
    response: str | None = None
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.outcome == SUCCESS


def _refusal(exc: BaseException) -> AddressRefused | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return seen
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None


class Sender:
    """Made in the webhooks lifespan; `send` is safe to call from many tasks at once."""

    def __init__(self, policy: AddressPolicy, *, timeout: float) -> None:
        self.policy = policy
        self.timeout = timeout
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.policy),
                use_dns_cache=False,
                # A new connection (and so a fresh check of the address) for every attempt.
                force_close=True,
                limit=0,
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
                # Never the environment's proxies: the address checked is the one connected to.
                trust_env=False,
                auto_decompress=False,
            )
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> AttemptResult:
        started = time.perf_counter()

        def took() -> float:
            return round((time.perf_counter() - started) * 1000, 3)

        status: int | None = None
        excerpt = b""
        try:
            self.policy.check_host(URL(url).raw_host or "")
            async with self._session().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                status = answer.status
                try:
                    while len(excerpt) < EXCERPT_BYTES:
                        chunk = await answer.content.read(EXCERPT_BYTES - len(excerpt))
                        if not chunk:
                            break
                        excerpt += chunk
                except (TimeoutError, aiohttp.ClientError):
                    pass  # the status came in time; the excerpt is what arrived of the body
        except asyncio.CancelledError:
            raise
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return AttemptResult(
                TIMEOUT, took(), error=f"no answer within {self.timeout:g} s", status_code=status
            )
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            refused = _refusal(exc)
            if refused is not None:
                return AttemptResult(REFUSED, took(), error=f"address refused: {refused}")
            return AttemptResult(
                CONNECTION_ERROR, took(), error=f"{type(exc).__name__}: {exc}"[:EXCERPT_BYTES]
            )
        text = excerpt.decode("utf-8", errors="replace")
        if 200 <= status < 300:
            return AttemptResult(SUCCESS, took(), status, text)
        return AttemptResult(HTTP_ERROR, took(), status, text, error=f"answered {status}")
