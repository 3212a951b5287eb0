"""The forwarding client: HTTP/1.1 keep-alive pools over asyncio protocols, parsed by httptools.

Why not a general client: per forwarded call aiohttp cost ~120 us of the gateway's CPU (header
multidicts built and copied, a timeout handle and a task-like response object per request,
tracing hooks, cookie and proxy lookups) where this costs ~30 us. It does only what the gateway
needs: the request is written in one `write` (head block prepared by the caller, bytes as they
go on the wire), the answer parsed by httptools, the same parser uvicorn serves with.

What it guarantees: one request at a time per connection; connections reused only after a
complete answer that allows keep-alive, and not after they have been idle long enough for the
service to have closed them; a reused connection that turns out closed before any byte of the
answer is retried once on a fresh one, for requests whose body is in hand and whose method is
idempotent; every exchange ends by the deadline (`UpstreamTimeout`, the connection dropped);
streamed answers are flow-controlled (reading pauses while the client is slower).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

# Answers are read ahead at most this far while the client is slower.
_HIGH_WATER = 256 * 1024
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"})


class UpstreamError(Exception):
    """The service could not be reached, closed the connection, or answered garbage."""


class UpstreamTimeout(Exception):
    """No complete answer before the deadline."""


class _StaleConnection(UpstreamError):
    """A reused connection was closed before any byte of the answer: safe to try again."""


class Answer:
    """One upstream answer: status and raw headers at once, the body as it arrives."""

    __slots__ = (
        "_conn",
        "_data_waiter",
        "_done_waiter",
        "_head_waiter",
        "_paused",
        "_timer",
        "buffered",
        "chunks",
        "complete",
        "content_length",
        "error",
        "head_only",
        "headers",
        "status",
        "whole_up_to",
    )

    def __init__(self, conn: _Connection, head_only: bool, whole_up_to: int = 0) -> None:
        self._conn = conn
        self.head_only = head_only
        # Answers announced this small are read whole anyway: `head()` returns only once they
        # are complete, which spares the caller a wake-up between head and body (a service
        # writes them in two pieces, which often arrive apart).
        self.whole_up_to = whole_up_to
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.error: BaseException | None = None
        self._paused = False
        self._head_waiter: asyncio.Future[None] | None = None
        self._data_waiter: asyncio.Future[None] | None = None
        self._done_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- fed by the protocol ---------------------------------------------------------------

    def _wake(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            if self.error is not None:
                waiter.set_exception(self.error)
            else:
                waiter.set_result(None)

    def _headed(self) -> None:
        self._wake(self._head_waiter)

    def _data(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and not self._paused and self._conn.transport is not None:
            self._paused = True
            self._conn.transport.pause_reading()
        self._wake(self._data_waiter)

    def _finished(self) -> None:
        self.complete = True
        self._cancel_timer()
        self._wake(self._head_waiter)
        self._wake(self._data_waiter)
        self._wake(self._done_waiter)

    def _fail(self, error: BaseException) -> None:
        if self.complete or self.error is not None:
            return
        self.error = error
        self._cancel_timer()
        self._wake(self._head_waiter)
        self._wake(self._data_waiter)
        self._wake(self._done_waiter)

    def _expire(self) -> None:
        self._timer = None
        self._fail(UpstreamTimeout())
        self._conn.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- read by the caller ----------------------------------------------------------------

    async def head(self) -> None:
        """Wait for the status line and headers; for answers announced no larger than
        `whole_up_to`, for the whole answer."""
        if self.error is not None:
            raise self.error
        if self.status >= 200:
            return
        self._head_waiter = self._conn.loop.create_future()
        await self._head_waiter

    async def read(self) -> bytes:
        """The whole body (for answers known to be small)."""
        if not self.complete:
            if self.error is not None:
                raise self.error
            self._done_waiter = self._conn.loop.create_future()
            await self._done_waiter
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks = []
        return body

    async def stream(self) -> AsyncIterator[bytes]:
        """The body piece by piece, as it arrives."""
        while True:
            if self.chunks:
                chunks, self.chunks = self.chunks, []
                self.buffered = 0
                if self._paused and not self.complete and self._conn.transport is not None:
                    self._paused = False
                    self._conn.transport.resume_reading()
                for chunk in chunks:
                    yield chunk
                continue
            if self.complete:
                return
            if self.error is not None:
                raise self.error
            self._data_waiter = self._conn.loop.create_future()
            await self._data_waiter


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a service; httptools calls the `on_*` methods."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        # Kept: on Python 3.11 every `asyncio.get_running_loop()` is a getpid() system call,
        # and a forwarded call would make three of them.
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.keep_alive = False
        self._got_bytes = False
        self._writable: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None or answer.complete:
            # Bytes nobody asked for: the connection's framing can no longer be trusted.
            self.abort()
            return
        self._got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            answer._fail(UpstreamError(f"the service's answer is not valid HTTP: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(UpstreamError("the service closed the connection"))
        answer = self.answer
        if answer is None or answer.complete:
            return
        if answer.status >= 200 and answer.content_length is None and self._until_close(answer):
            # An answer without length or chunking ends when the connection does.
            answer._finished()
        elif self.reused and not self._got_bytes:
            answer._fail(_StaleConnection("the kept-alive connection was closed by the service"))
        else:
            answer._fail(UpstreamError("the service closed the connection mid-answer"))

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def drain(self) -> None:
        if self.closed:
            raise UpstreamError("the service closed the connection")
        if self._writable is not None and not self._writable.done():
            await self._writable

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        # Only before the final answer's head: a 1xx answer's headers are not the answer's.
        if self.answer is not None and self.answer.status < 200:
            self.answer.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.answer is not None and self.answer.status < 200:
            self.answer.headers.append((name, value))

    def on_headers_complete(self) -> None:
        answer = self.answer
        if answer is None:
            return
        status = self.parser.get_status_code()
        if status < 200:
            return  # an interim answer (103 Early Hints): the final one follows
        answer.status = status
        for name, value in answer.headers:
            if len(name) == 14 and name.lower() == b"content-length":
                try:
                    answer.content_length = int(value)
                except ValueError:
                    answer.content_length = None
        self.keep_alive = self.parser.should_keep_alive()
        if answer.head_only:
            # The answer to HEAD has no body whatever its Content-Length says; the parser
            # cannot be told so, hence the connection is not reused after it.
            self.keep_alive = False
            answer._finished()
            return
        if answer.content_length is None or answer.content_length > answer.whole_up_to:
            answer._headed()

    def on_body(self, body: bytes) -> None:
        if self.answer is not None and not self.answer.complete:
            self.answer._data(body)

    def on_message_complete(self) -> None:
        answer = self.answer
        if answer is None or answer.complete or answer.status < 200:
            return
        self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        answer._finished()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _until_close(answer: Answer) -> bool:
        return not any(name.lower() == b"transfer-encoding" for name, _ in answer.headers)

    def abort(self) -> None:
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()

    def start(
        self, request: bytes, head_only: bool, deadline: float, whole_up_to: int = 0
    ) -> Answer:
        answer = Answer(self, head_only, whole_up_to)
        self.answer = answer
        self._got_bytes = False
        if self.transport is None:
            raise UpstreamError("the connection is closed")
        answer._timer = self.loop.call_at(deadline, answer._expire)
        self.transport.write(request)
        return answer


class UpstreamPool:
    """Keep-alive connections to one service, at most `limit` at a time."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int = 256,
        connect_timeout: float = 2.0,
        timeout: float = 30.0,
        keepalive_seconds: float = 4.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an upstream must be an http(s) URL, not {base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        # The Host header the service sees: its own address, as a client calling it would send.
        self.host_header = parts.netloc.encode("idna")
        self.prefix = parts.path.rstrip("/").encode()
        self.limit = limit
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        # Below uvicorn's default keep-alive timeout (5 s), so the service rarely closes a
        # connection we are about to reuse.
        self.keepalive_seconds = keepalive_seconds
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        self._idle: list[_Connection] = []
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def _acquire(self, fresh: bool = False) -> _Connection:
        if self._active >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._hand_on()
                raise
        else:
            self._active += 1
        try:
            if not fresh:
                now = time.monotonic()
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed and now - conn.idle_since < self.keepalive_seconds:
                        conn.reused = True
                        return conn
                    conn.abort()
            return await self._connect()
        except BaseException:
            self._hand_on()
            raise

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _transport, conn = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise UpstreamError(f"no connection within {self.connect_timeout:g} s") from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc.strerror or exc}") from None
        return conn

    def _hand_on(self) -> None:
        """A slot is free: give it to the next waiter, else count it free."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1

    def release(self, conn: _Connection, answer: Answer | None) -> None:
        reusable = (
            answer is not None
            and answer.complete
            and answer.error is None
            and conn.keep_alive
            and not conn.closed
            and not self._closed
        )
        conn.answer = None
        if answer is not None:
            answer._cancel_timer()
        if reusable:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.abort()
        self._hand_on()

    async def request(
        self,
        method: bytes,
        head: bytes,
        body: bytes | None,
        deadline: float,
        whole_up_to: int = 0,
    ) -> tuple[_Connection, Answer]:
        """Send a request whose body is in hand; returns once the answer's head is in (once
        it is complete, if it is announced no larger than `whole_up_to`)."""
        request = head if not body else head + body
        retry = method in _IDEMPOTENT
        fresh = False
        while True:
            conn = await self._acquire(fresh=fresh)
            try:
                answer = conn.start(request, method == b"HEAD", deadline, whole_up_to)
                await answer.head()
            except _StaleConnection:
                self.release(conn, conn.answer)
                if retry:
                    retry, fresh = False, True
                    continue
                raise UpstreamError("the service closed the connection") from None
            except BaseException:
                self.release(conn, conn.answer)
                raise
            return conn, answer

    async def request_streamed(
        self,
        method: bytes,
        head: bytes,
        body: AsyncIterator[bytes],
        deadline: float,
        whole_up_to: int = 0,
    ) -> tuple[_Connection, Answer]:
        """Send a request whose body arrives piece by piece (a fresh connection, no retry)."""
        conn = await self._acquire(fresh=True)
        try:
            answer = conn.start(head, False, deadline, whole_up_to)
            async for chunk in body:
                if answer.error is not None:
                    raise answer.error
                if chunk and conn.transport is not None:
                    conn.transport.write(chunk)
                    await conn.drain()
            await answer.head()
        except BaseException:
            self.release(conn, conn.answer)
            raise
        return conn, answer

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            if conn.transport is not None:
                conn.transport.close()
        # Lets the transports finish closing before the loop goes away.
        await asyncio.sleep(0)
