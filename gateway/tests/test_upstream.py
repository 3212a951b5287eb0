"""The forwarding client (gateway/upstream.py) against real servers over real sockets: a uvicorn
app for the ordinary cases, scripted raw HTTP servers for what a real service does only rarely
(closing a kept-alive connection, dying mid-answer, answering too slowly)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.upstream import UpstreamError, UpstreamPool, UpstreamTimeout
from servicekit.testing.servers import serve


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

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    return Starlette(
        routes=[
            Route("/peer", peer),
            Route("/chunks", chunks),
            Route("/sized", sized, methods=["GET", "HEAD"]),
            Route("/echo", echo, methods=["POST"]),
        ]
    )


async def test_connections_are_kept_alive_and_answers_read_whole_or_streamed():
    async with serve(_app()) as url:
        pool = UpstreamPool(url, limit=4)
        try:
            ports = set()
            for _ in range(5):
                conn, answer = await pool.request(
                    b"GET", _head("GET", "/peer", pool), None, _deadline()
                )
                assert answer.status == 200
                ports.add(await answer.read())
                pool.release(conn, answer)
            assert len(ports) == 1, "one kept-alive connection serves calls one after another"

            # Chunked on the wire (no Content-Length): de-chunked, every byte in order.
            conn, answer = await pool.request(
                b"GET", _head("GET", "/chunks", pool), None, _deadline()
            )
            assert answer.content_length is None
            streamed = b"".join([chunk async for chunk in answer.stream()])
            pool.release(conn, answer)
            assert streamed == b"".join(f"{i:04d}".encode() * 1000 for i in range(50))

            # HEAD: Content-Length announced, no body follows; the call ends at the head.
            conn, answer = await pool.request(
                b"HEAD", _head("HEAD", "/sized", pool), None, _deadline()
            )
            assert answer.status == 200 and answer.content_length == 1234
            assert await answer.read() == b""
            pool.release(conn, answer)

            body = bytes(range(256)) * 10
            conn, answer = await pool.request(
                b"POST",
                _head("POST", "/echo", pool, b"content-length: %d\r\n" % len(body)),
                body,
                _deadline(),
            )
            assert await answer.read() == body
            pool.release(conn, answer)
        finally:
            await pool.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


@pytest.mark.parametrize(("method", "retried"), [(b"GET", True), (b"POST", False)])
async def test_a_kept_alive_connection_closed_by_the_service_is_retried_only_if_idempotent(
    method: bytes, retried: bool
):
    connections = 0

    async def answer_once_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # Like a service closing an idle keep-alive connection just as a request arrives:
        # the first request of a connection is answered, the second finds it closed.
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(OK)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await _read_request(reader)
        writer.close()

    async with raw_server(answer_once_per_connection) as url:
        pool = UpstreamPool(url)
        try:
            head = _head(method.decode(), "/", pool, b"content-length: 0\r\n")
            conn, answer = await pool.request(method, head, None, _deadline())
            assert await answer.read() == b"ok"
            pool.release(conn, answer)
            if retried:
                conn, answer = await pool.request(method, head, None, _deadline())
                assert await answer.read() == b"ok"
                pool.release(conn, answer)
                assert connections == 2
            else:
                # A write is never sent twice: the service might have acted on it.
                with pytest.raises(UpstreamError):
                    await pool.request(method, head, None, _deadline())
                assert connections == 1
        finally:
            await pool.close()


async def test_a_service_dying_mid_answer_is_an_error_not_a_short_body():
    async def die_mid_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    async with raw_server(die_mid_answer) as url:
        pool = UpstreamPool(url)
        try:
            conn, answer = await pool.request(b"GET", _head("GET", "/", pool), None, _deadline())
            with pytest.raises(UpstreamError):
                await answer.read()
            pool.release(conn, answer)
        finally:
            await pool.close()


async def test_a_slow_service_times_out_at_the_deadline_and_garbage_is_refused():
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(10)

    async with raw_server(never_answer) as url:
        pool = UpstreamPool(url)
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(UpstreamTimeout):
                await pool.request(b"GET", _head("GET", "/", pool), None, _deadline(0.3))
            assert asyncio.get_running_loop().time() - started < 1.5
        finally:
            await pool.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    async with raw_server(garbage) as url:
        pool = UpstreamPool(url)
        try:
            with pytest.raises(UpstreamError):
                await pool.request(b"GET", _head("GET", "/", pool), None, _deadline())
        finally:
            await pool.close()


async def test_the_pool_never_opens_more_than_its_limit():
    async with serve(_app()) as url:
        pool = UpstreamPool(url, limit=2)
        try:

            async def one() -> bytes:
                conn, answer = await pool.request(
                    b"GET", _head("GET", "/peer", pool), None, _deadline()
                )
                try:
                    return await answer.read()
                finally:
                    pool.release(conn, answer)

            ports = await asyncio.gather(*(one() for _ in range(20)))
            assert len(set(ports)) <= 2
        finally:
            await pool.close()
