"""The forwarding client: keep-alive HTTP/1.1 connections to one service, parsed by httptools.

All the edge uses of it:

    pool = UpstreamPool("http://customers:8001", limit=256, timeout=30.0)
    answer = await pool.request(b"GET", head, body, deadline)  # body: bytes, an async
    answer.status, answer.headers, answer.content_length       # iterable of bytes, or None
    body = await answer.read()       # or: async for chunk in answer.stream(): ...
    answer.release()                 # always, once done with it
    await pool.close()

`head` is the request's head block as it goes on the wire (request line, headers, blank line);
`deadline` is on the event loop's clock. Failures are `UpstreamError` (no connection, closed
mid-answer, not HTTP) and `UpstreamTimeout` (no complete answer by the deadline); their
`sent` says whether the request had been written, i.e. whether the service may have acted on
it.

Why not a general client: aiohttp or httpx cost several times the gateway's own work per call
(bench/README.md has the figures). This does only what the gateway needs: the request is
written in one `write`, the answer parsed by httptools, the parser uvicorn serves with.

What it guarantees:
- one request at a time per connection; a connection goes back to the pool only after a
  complete answer that allows keep-alive, with its request body wholly sent, while it is
  reading, and not after it has been idle long enough for the service to have closed it;
- a reused connection that turns out closed before any byte of the answer is retried once on
  a fresh one, for requests whose body is in hand and whose method is idempotent;
- every exchange ends by its deadline (`UpstreamTimeout`, the connection dropped);
- flow control: reading pauses while more than `_HIGH_WATER` bytes of an answer wait for a
  slower reader, and resumes as soon as the reader takes them or the answer is complete (a
  connection paused at its answer's end once went back to the pool that way, and the next
  call on it waited for its deadline);
- interim (1xx) answers are skipped; an answer without length or chunking ends with the
  connection; a final answer that arrives while a body is still being uploaded ends the
  upload (the connection is then not reused);
- at most `limit` connections; callers wait in order for a free one, and a caller cancelled
  while waiting gives its turn on.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import cast
from urllib.parse import urlsplit

import httptools

# An answer is read ahead at most this far while the reader is slower.
_HIGH_WATER = 256 * 1024
_IDEMPOTENT = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE"})


class UpstreamError(Exception):
    """The service could not be reached, closed the connection, or answered garbage."""

    # Whether the request had been written: if so, the service may have acted on it.
    sent = False


class UpstreamTimeout(Exception):
    """No complete answer before the deadline (the request was written)."""

    sent = True


class _StaleConnection(UpstreamError):
    """A reused connection was closed before any byte of the answer: safe to try again."""


class Answer:
    """One upstream answer: status and raw headers at once, the body as it arrives."""

    __slots__ = (
        "_body_waiter",
        "_conn",
        "_head_waiter",
        "_pool",
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

    def __init__(
        self, pool: UpstreamPool, conn: _Connection, head_only: bool, whole_up_to: int
    ) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self.head_only = head_only
        # Answers announced this small are waited for whole: `request` returns once they are
        # complete, which spares the caller a wake-up between head and body (a service
        # writes them in two pieces, which often arrive apart).
        self.whole_up_to = whole_up_to
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.error: BaseException | None = None
        self._head_waiter: asyncio.Future[None] | None = None
        self._body_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- read by the caller ----------------------------------------------------------------

    async def read(self) -> bytes:
        """The whole body."""
        if self.complete:
            body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
            self.chunks = []
            return body
        return b"".join([chunk async for chunk in self.stream()])

    async def stream(self) -> AsyncIterator[bytes]:
        """The body piece by piece, as it arrives."""
        while True:
            if self.chunks:
                chunks, self.chunks = self.chunks, []
                self.buffered = 0
                conn = self._conn
                if conn is not None and conn.paused:
                    conn.resume()
                for chunk in chunks:
                    yield chunk
                continue
            if self.complete:
                return
            if self.error is not None:
                raise self.error
            conn = self._conn
            if conn is None:
                raise UpstreamError("the answer was released before it was read")
            self._body_waiter = conn.loop.create_future()
            await self._body_waiter

    def release(self) -> None:
        """Hand the connection back: kept for the next call after a complete answer, else
        closed. Idempotent; call it once done with the answer, whatever happened."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._cancel_timer()
            self._pool._release(conn, self)

    # -- fed by the connection -------------------------------------------------------------

    def _wake(self, waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            if self.error is not None:
                waiter.set_exception(self.error)
            else:
                waiter.set_result(None)

    def _data(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        conn = self._conn
        if self.buffered > _HIGH_WATER and conn is not None and not conn.paused:
            conn.pause()
        self._wake(self._body_waiter)

    def _finished(self) -> None:
        self.complete = True
        self._cancel_timer()
        conn = self._conn
        if conn is not None and conn.paused:
            # Nothing of this answer is left to read: a connection never waits paused for
            # its next request.
            conn.resume()
        self._wake(self._head_waiter)
        self._wake(self._body_waiter)

    def _fail(self, error: BaseException) -> None:
        if self.complete or self.error is not None:
            return
        self.error = error
        self._cancel_timer()
        self._wake(self._head_waiter)
        self._wake(self._body_waiter)

    def _expire(self) -> None:
        self._timer = None
        self._fail(UpstreamTimeout())
        if self._conn is not None:
            self._conn.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _head(self) -> None:
        """Wait for the final status line and headers (for answers announced no larger than
        `whole_up_to`, for the whole answer)."""
        if self.error is not None:
            raise self.error
        if self.complete or (self.status >= 200 and self._headed_enough()):
            return
        conn = self._conn
        assert conn is not None
        self._head_waiter = conn.loop.create_future()
        await self._head_waiter

    def _headed_enough(self) -> bool:
        size = self.content_length
        return size is None or size > self.whole_up_to


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a service; httptools calls the `on_*` methods."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: Answer | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.keep_alive = False
        # Reading paused for flow control (`Answer._data`), resumed by `resume`.
        self.paused = False
        # A request body is being written: an answer that arrives meanwhile ends the upload.
        self.uploading = False
        self.upload_cut = False
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
            answer._fail(_sent(UpstreamError(f"the service's answer is not valid HTTP: {exc}")))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        # An upload the service cut short with its answer ends quietly; any other fails.
        self._wake_writer(
            None if self.upload_cut else UpstreamError("the service closed the connection")
        )
        answer = self.answer
        if answer is None or answer.complete:
            return
        if answer.status >= 200 and answer.content_length is None and _until_close(answer):
            # An answer without length or chunking ends when the connection does.
            answer._finished()
        elif self.reused and not self._got_bytes:
            answer._fail(_StaleConnection("the kept-alive connection was closed by the service"))
        else:
            answer._fail(_sent(UpstreamError("the service closed the connection mid-answer")))

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        self._wake_writer(None)

    # -- httptools callbacks ---------------------------------------------------------------

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
            return  # an interim answer (100 Continue, 103 Early Hints): the final one follows
        answer.status = status
        for name, value in answer.headers:
            if len(name) == 14 and name.lower() == b"content-length":
                try:
                    answer.content_length = int(value)
                except ValueError:
                    answer.content_length = None
        self.keep_alive = self.parser.should_keep_alive()
        if self.uploading:
            # The service answered before taking the whole body: stop sending it.
            self.upload_cut = True
            self._wake_writer(None)
        if answer.head_only:
            # The answer to HEAD has no body whatever its Content-Length says; the parser
            # cannot be told so, hence the connection is not reused after it.
            self.keep_alive = False
            answer._finished()
            return
        if answer._headed_enough():
            answer._wake(answer._head_waiter)

    def on_body(self, body: bytes) -> None:
        if self.answer is not None and not self.answer.complete:
            self.answer._data(body)

    def on_message_complete(self) -> None:
        answer = self.answer
        if answer is None or answer.complete or answer.status < 200:
            return
        self.keep_alive = self.keep_alive and self.parser.should_keep_alive()
        answer._finished()

    # -- used by the pool ------------------------------------------------------------------

    def pause(self) -> None:
        if self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        self.paused = False
        if self.transport is not None:
            self.transport.resume_reading()

    def abort(self) -> None:
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()

    def reusable(self) -> bool:
        answer = self.answer
        return (
            answer is not None
            and answer.complete
            and answer.error is None
            and self.keep_alive
            and not self.upload_cut
            and not self.paused
            and not self.closed
        )

    def start(self, answer: Answer, request: bytes, deadline: float) -> None:
        self.answer = answer
        self._got_bytes = False
        if self.transport is None:
            raise UpstreamError("the connection is closed")
        answer._timer = self.loop.call_at(deadline, answer._expire)
        self.transport.write(request)

    async def upload(self, body: AsyncIterable[bytes]) -> None:
        """Write a request body as it comes, as fast as the service takes it, until it ends
        or the service answers first."""
        self.uploading = True
        try:
            async for chunk in body:
                if self.upload_cut or (self.answer is not None and self.answer.error):
                    return
                if self.transport is None:
                    raise _sent(UpstreamError("the service closed the connection"))
                self.transport.write(chunk)
                if self._writable is not None and not self._writable.done():
                    await self._writable
                    if self.upload_cut:
                        return
        finally:
            self.uploading = False

    def _wake_writer(self, error: UpstreamError | None) -> None:
        writable = self._writable
        if writable is not None and not writable.done():
            if error is None:
                writable.set_result(None)
            else:
                writable.set_exception(_sent(error))


def _sent(error: UpstreamError) -> UpstreamError:
    error.sent = True
    return error


def _until_close(answer: Answer) -> bool:
    return not any(name.lower() == b"transfer-encoding" for name, _ in answer.headers)


class UpstreamPool:
    """Keep-alive connections to one service, at most `limit` at a time."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int = 256,
        connect_timeout: float = 2.0,
        keepalive_seconds: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an upstream must be an http(s) URL, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        # The Host header the service sees: its own address, as a client calling it would send.
        self.host_header = parts.netloc.encode("idna")
        self.prefix = parts.path.rstrip("/").encode()
        self.limit = limit
        self.connect_timeout = connect_timeout
        # Below uvicorn's default keep-alive timeout (5 s), so the service rarely closes a
        # connection we are about to reuse.
        self.keepalive_seconds = keepalive_seconds
        # Measures how long a connection has been idle (monotonic seconds).
        self.clock = clock
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        self._idle: list[_Connection] = []
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    async def request(
        self,
        method: bytes,
        head: bytes,
        body: bytes | AsyncIterable[bytes] | None,
        deadline: float,
        whole_up_to: int = 0,
    ) -> Answer:
        """Send a request; returns once the answer's head is in (once the whole answer is,
        if it is announced no larger than `whole_up_to`). A body in hand goes out with the
        head in one write; a streamed one on a fresh connection, as it comes."""
        if body is None or isinstance(body, bytes):
            return await self._request_whole(
                method, head + body if body else head, deadline, whole_up_to
            )
        return await self._request_streamed(head, body, deadline, whole_up_to)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            if conn.transport is not None:
                conn.transport.close()
        # Lets the transports finish closing before the loop goes away.
        await asyncio.sleep(0)

    # -- exchanges ---------------------------------------------------------------------------

    async def _request_whole(
        self, method: bytes, request: bytes, deadline: float, whole_up_to: int
    ) -> Answer:
        retry = method in _IDEMPOTENT
        fresh = False
        while True:
            conn = await self._acquire(fresh=fresh)
            answer = Answer(self, conn, method == b"HEAD", whole_up_to)
            try:
                conn.start(answer, request, deadline)
                await answer._head()
            except _StaleConnection:
                answer.release()
                if retry:
                    retry, fresh = False, True
                    continue
                raise _sent(UpstreamError("the service closed the connection")) from None
            except BaseException:
                answer.release()
                raise
            return answer

    async def _request_streamed(
        self, head: bytes, body: AsyncIterable[bytes], deadline: float, whole_up_to: int
    ) -> Answer:
        # A fresh connection: a stale one could not be retried, the body being gone.
        conn = await self._acquire(fresh=True)
        answer = Answer(self, conn, False, whole_up_to)
        try:
            conn.start(answer, head, deadline)
            await conn.upload(body)
            await answer._head()
        except BaseException:
            answer.release()
            raise
        return answer

    # -- connections -------------------------------------------------------------------------

    async def _acquire(self, fresh: bool = False) -> _Connection:
        if self._active >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    # The slot was handed over just as the wait was cancelled: pass it on.
                    self._hand_on()
                raise
        else:
            self._active += 1
        try:
            if not fresh:
                now = self.clock()
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
                    lambda: _Connection(loop),
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

    def _release(self, conn: _Connection, answer: Answer) -> None:
        reusable = conn.answer is answer and conn.reusable() and not self._closed
        conn.answer = None
        if reusable:
            conn.idle_since = self.clock()
            conn.reused = False
            self._idle.append(conn)
        else:
            conn.abort()
        self._hand_on()
