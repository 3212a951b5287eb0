"""The forwarding client (gateway/upstream.py) against real servers over real sockets: a uvicorn
app for the ordinary cases, scripted raw HTTP servers for what a real service does only rarely
(closing a kept-alive connection, dying mid-answer, interim answers, answering before it has
read the upload, answering too slowly)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.upstream import _HIGH_WATER, Answer, UpstreamError, UpstreamPool, UpstreamTimeout
from servicekit.testing.servers import serve

BIG = 4 * 1024 * 1024  # far beyond the pool's read-ahead and the sockets' buffers


def _head(method: str, path: str, pool: UpstreamPool, *extra: bytes) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\n".encode()
        + b"host: "
        + pool.host_header
        + b"\r\n"
        + b"".join(extra)
        + b"\r\n"
    )


def _deadline(seconds: float = 5.0) -> float:
    return asyncio.get_running_loop().time() + seconds


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for a state the event loop reaches by itself (bytes read, a reader paused)."""
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.001)


async def _lag(answer: Answer) -> bool:
    """Be a reader slower than the service: wait until the pool has read ahead as far as it
    will (and paused reading), or has the whole answer. True if it paused."""
    conn = answer._conn
    assert conn is not None
    await _until(lambda: conn.paused or answer.complete)
    return conn.paused


async def _get(pool: UpstreamPool, path: str, seconds: float = 5.0) -> tuple[Answer, bytes]:
    answer = await pool.request(b"GET", _head("GET", path, pool), None, _deadline(seconds))
    try:
        return answer, await answer.read()
    finally:
        answer.release()


def _pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def _app() -> Starlette:
    async def peer(request: Request) -> Response:
        # Which client port the call came from: the same port means the same connection.
        assert request.client is not None
        return PlainTextResponse(str(request.client.port))

    async def chunks(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(50):
                yield f"{i:04d}".encode() * 1000

        return StreamingResponse(parts(), media_type="text/plain")

    async def sized(request: Request) -> Response:
        return Response(b"x" * 1234, media_type="application/octet-stream")

    async def big(request: Request) -> Response:
        return Response(_pattern(int(request.query_params["size"])))

    async def big_chunked(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            data = _pattern(int(request.query_params["size"]))
            for i in range(0, len(data), 100_000):
                yield data[i : i + 100_000]

        return StreamingResponse(parts())

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    return Starlette(
        routes=[
            Route("/peer", peer),
            Route("/chunks", chunks),
            Route("/sized", sized, methods=["GET", "HEAD"]),
            Route("/big", big),
            Route("/big-chunked", big_chunked),
            Route("/echo", echo, methods=["POST"]),
        ]
    )


async def test_connections_are_kept_alive_and_answers_read_whole_or_streamed():
    async with serve(_app()) as url:
        pool = UpstreamPool(url, limit=4)
        try:
            ports = {(await _get(pool, "/peer"))[1] for _ in range(5)}
            assert len(ports) == 1, "one kept-alive connection serves calls one after another"

            # Chunked on the wire (no Content-Length): de-chunked, every byte in order.
            answer = await pool.request(b"GET", _head("GET", "/chunks", pool), None, _deadline())
            assert answer.content_length is None
            streamed = b"".join([chunk async for chunk in answer.stream()])
            answer.release()
            assert streamed == b"".join(f"{i:04d}".encode() * 1000 for i in range(50))

            # HEAD: Content-Length announced, no body follows; the call ends at the head.
            answer = await pool.request(b"HEAD", _head("HEAD", "/sized", pool), None, _deadline())
            assert answer.status == 200 and answer.content_length == 1234
            assert await answer.read() == b""
            answer.release()

            body = bytes(range(256)) * 10
            length = b"content-length: %d\r\n" % len(body)
            answer = await pool.request(
                b"POST", _head("POST", "/echo", pool, length), body, _deadline()
            )
            assert await answer.read() == body
            answer.release()

            # A body streamed from an async iterable, on a fresh connection.
            async def pieces() -> AsyncIterator[bytes]:
                for _ in range(20):
                    yield body

            length = b"content-length: %d\r\n" % (20 * len(body))
            answer = await pool.request(
                b"POST", _head("POST", "/echo", pool, length), pieces(), _deadline()
            )
            assert await answer.read() == body * 20
            answer.release()
        finally:
            await pool.close()


# --- flow control --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_answers_far_larger_than_the_buffers_for_slow_and_fast_readers(path: str):
    """A slow reader makes the pool stop reading from the service; the answer still arrives
    whole, and the connection serves the next calls at once (it once went back to the pool
    with reading paused, and the next call waited for its deadline)."""
    async with serve(_app()) as url:
        pool = UpstreamPool(url, limit=1)
        try:
            (_, port) = await _get(pool, "/peer")
            for slow in (True, False, True):
                answer = await pool.request(
                    b"GET", _head("GET", f"{path}?size={BIG}", pool), None, _deadline()
                )
                conn = answer._conn
                assert conn is not None
                received = []
                paused = 0
                async for chunk in answer.stream():
                    received.append(chunk)
                    if slow and not answer.complete:
                        paused += await _lag(answer)
                answer.release()
                assert b"".join(received) == _pattern(BIG)
                if slow:
                    assert paused > 0, "the pool paused reading while the reader lagged"
                assert not conn.paused
                # The same connection, at once, for the next calls.
                for _ in range(3):
                    assert (await _get(pool, "/peer", seconds=2.0))[1] == port
        finally:
            await pool.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclasses.dataclass
class RawServer:
    url: str
    connections: int = 0  # accepted so far


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[RawServer]:
    """A scripted HTTP server: `handler` plays each connection."""

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.connections += 1
        await handler(reader, writer)

    server = await asyncio.start_server(counted, "127.0.0.1", 0)
    served = RawServer(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    try:
        yield served
    finally:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_an_answer_ending_just_past_the_read_ahead_leaves_the_connection_reading():
    """The case that hung: the last piece of an answer both crosses the read-ahead limit and
    completes it, in one read. Reading must not stay paused for the next call."""
    body = _pattern(_HIGH_WATER + 1)

    async def answer_big_then_small(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
        while True:
            with contextlib.suppress(asyncio.IncompleteReadError):
                await _read_request(reader)
                writer.write(OK)
                continue
            break
        writer.close()

    async with raw_server(answer_big_then_small) as served:
        pool = UpstreamPool(served.url)
        try:
            answer = await pool.request(b"GET", _head("GET", "/", pool), None, _deadline())
            # Nothing taken until the whole answer is in: the reader is as slow as can be.
            await _until(lambda: answer.complete)
            assert await answer.read() == body
            answer.release()
            for _ in range(3):
                assert (await _get(pool, "/", seconds=2.0))[1] == b"ok"
            assert served.connections == 1
        finally:
            await pool.close()


# --- what services do rarely ---------------------------------------------------------------


@pytest.mark.parametrize(("method", "retried"), [(b"GET", True), (b"POST", False)])
async def test_a_kept_alive_connection_closed_by_the_service_is_retried_only_if_idempotent(
    method: bytes, retried: bool
):

    async def answer_once_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # Like a service closing an idle keep-alive connection just as a request arrives:
        # the first request of a connection is answered, the second finds it closed.
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await _read_request(reader)
        writer.close()

    async with raw_server(answer_once_per_connection) as served:
        pool = UpstreamPool(served.url)
        try:
            head = _head(method.decode(), "/", pool, b"content-length: 0\r\n")
            answer = await pool.request(method, head, None, _deadline())
            assert await answer.read() == b"ok"
            answer.release()
            if retried:
                answer = await pool.request(method, head, None, _deadline())
                assert await answer.read() == b"ok"
                answer.release()
                assert served.connections == 2
            else:
                # A write is never sent twice: the service might have acted on it.
                with pytest.raises(UpstreamError) as refused:
                    await pool.request(method, head, None, _deadline())
                assert refused.value.sent
                assert served.connections == 1
        finally:
            await pool.close()


async def test_interim_answers_are_skipped_and_the_connection_kept():
    async def interim_then_final(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for _ in range(2):
            await _read_request(reader)
            writer.write(
                b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"
                b"HTTP/1.1 100 Continue\r\n\r\n"
                b"HTTP/1.1 201 Created\r\nx-final: yes\r\ncontent-length: 4\r\n\r\ndone"
            )
        await reader.read()
        writer.close()

    async with raw_server(interim_then_final) as served:
        pool = UpstreamPool(served.url)
        try:
            for _ in range(2):
                answer, body = await _get(pool, "/")
                assert answer.status == 201 and body == b"done"
                assert answer.headers == [(b"x-final", b"yes"), (b"content-length", b"4")]
        finally:
            await pool.close()


@pytest.mark.parametrize("size", [10, 3 * _HIGH_WATER])
async def test_an_answer_without_length_is_read_until_the_service_closes(size: int):
    body = _pattern(size)

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    async with raw_server(until_close) as served:
        pool = UpstreamPool(served.url)
        try:
            for expected_connections in (1, 2):
                answer = await pool.request(b"GET", _head("GET", "/", pool), None, _deadline())
                assert answer.content_length is None
                received = []
                async for chunk in answer.stream():
                    received.append(chunk)
                    # Slowly: a large answer pauses the pool, which sees the end only once
                    # it reads again.
                    await _lag(answer)
                answer.release()
                assert b"".join(received) == body
                # Ended by the close: never reused.
                assert served.connections == expected_connections
        finally:
            await pool.close()


async def test_a_final_answer_during_an_upload_ends_the_upload():
    """A service may refuse a request before it has read the body (401, 413): the answer is
    returned at once, the rest of the body is not sent, and the connection is not reused."""
    done = asyncio.Event()

    async def refuse_early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await _read_request(reader)
        if b"close-after" in head:
            writer.write(b"HTTP/1.1 413 Too Large\r\ncontent-length: 3\r\n\r\nbig")
            await writer.drain()
            writer.close()
            return
        writer.write(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\nno")
        # Then reads nothing more: an uploader waiting for the service to take the body
        # would wait for ever.
        await done.wait()
        writer.close()

    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 65536
            yield b"u" * 65536

    async with raw_server(refuse_early) as served:
        pool = UpstreamPool(served.url)
        try:
            for path, status, body in (("/keep-open", 401, b"no"), ("/close-after", 413, b"big")):
                sent = 0
                head = _head("POST", path, pool, b"content-length: 1073741824\r\n")
                answer = await pool.request(b"POST", head, endless(), _deadline())
                assert answer.status == status and await answer.read() == body
                answer.release()
                assert sent < 1073741824
            # Neither connection is reused: the next call opens a third.
            before = served.connections
            with contextlib.suppress(UpstreamError, UpstreamTimeout):
                await _get(pool, "/close-after", seconds=1.0)
            assert served.connections == before + 1
        finally:
            done.set()
            await pool.close()


async def test_a_service_dying_mid_answer_is_an_error_not_a_short_body():
    async def die_mid_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    async with raw_server(die_mid_answer) as served:
        pool = UpstreamPool(served.url)
        try:
            answer = await pool.request(b"GET", _head("GET", "/", pool), None, _deadline())
            with pytest.raises(UpstreamError) as died:
                await answer.read()
            assert died.value.sent
            answer.release()
        finally:
            await pool.close()


async def test_a_stuck_service_times_out_at_the_deadline_and_garbage_is_refused():
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await reader.read()  # until the pool gives up and drops the connection

    async with raw_server(never_answer) as served:
        pool = UpstreamPool(served.url)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(UpstreamTimeout):
                await pool.request(b"GET", _head("GET", "/", pool), None, _deadline(0.3))
            assert 0.3 <= loop.time() - started < 3.0
        finally:
            await pool.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    async with raw_server(garbage) as served:
        pool = UpstreamPool(served.url)
        try:
            with pytest.raises(UpstreamError):
                await pool.request(b"GET", _head("GET", "/", pool), None, _deadline())
        finally:
            await pool.close()


async def test_nothing_listening_is_an_error_before_anything_was_sent():
    async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with raw_server(nothing) as served:
        url = served.url  # closed again: the port is free
    pool = UpstreamPool(url, connect_timeout=1.0)
    try:
        with pytest.raises(UpstreamError) as refused:
            await pool.request(b"GET", _head("GET", "/", pool), None, _deadline())
        assert not refused.value.sent
    finally:
        await pool.close()


# --- the pool's limit and its waiters ------------------------------------------------------


async def test_the_pool_never_opens_more_than_its_limit():
    async with serve(_app()) as url:
        pool = UpstreamPool(url, limit=2)
        try:
            ports = await asyncio.gather(*(_get(pool, "/peer") for _ in range(20)))
            assert len({port for _, port in ports}) <= 2
        finally:
            await pool.close()


async def test_cancelled_waiters_give_their_turn_on():
    async with serve(_app()) as url:
        pool = UpstreamPool(url, limit=1)
        try:
            held = await pool.request(b"GET", _head("GET", "/peer", pool), None, _deadline())
            first = asyncio.create_task(_get(pool, "/peer"))
            second = asyncio.create_task(_get(pool, "/peer"))
            third = asyncio.create_task(_get(pool, "/peer"))
            await _until(lambda: len(pool._waiters) == 3)
            # Cancelled while waiting: leaves the queue.
            first.cancel()
            # Cancelled just after being handed the connection, before it could run: the turn
            # goes on to the next waiter instead of being lost.
            await held.read()
            held.release()
            second.cancel()
            for task in (first, second):
                with pytest.raises(asyncio.CancelledError):
                    await task
            async with asyncio.timeout(5):
                answer, _ = await third
            assert answer.status == 200
            # Nothing leaked: the one connection serves the next call at once.
            async with asyncio.timeout(5):
                await _get(pool, "/peer")
        finally:
            await pool.close()


async def test_a_request_cancelled_while_waiting_for_its_answer_drops_the_connection():
    arrived = asyncio.Event()

    async def slow_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        if not arrived.is_set():
            arrived.set()
            await reader.read()  # never answers; ends when the pool drops the connection
            writer.close()
            return
        writer.write(OK)
        await writer.drain()
        await reader.read()
        writer.close()

    async with raw_server(slow_first) as served:
        pool = UpstreamPool(served.url, limit=1)
        try:
            waiting = asyncio.create_task(_get(pool, "/"))
            await arrived.wait()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            # The slot is free and the half-used connection is gone: a fresh one answers.
            async with asyncio.timeout(5):
                assert (await _get(pool, "/"))[1] == b"ok"
            assert served.connections == 2
        finally:
            await pool.close()
