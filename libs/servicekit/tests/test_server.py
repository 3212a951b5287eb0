"""The kit's HTTP protocol: an answer's head leaves with its body, in one send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from servicekit.server import HOLD_LIMIT, CoalescingTransport
from servicekit.testing.servers import serve


class _Recording(asyncio.Transport):
    """A transport that keeps what each write call sent, as one send each."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.sends.append(bytes(data))

    def writelines(self, list_of_data: object) -> None:
        self.sends.append(b"".join(bytes(d) for d in list_of_data))  # type: ignore[attr-defined]

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_a_small_write_leaves_with_the_next_one() -> None:
    real = _Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert real.sends == [] and transport.get_write_buffer_size() > 0
    transport.write(b"ok")
    assert real.sends == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]


async def test_a_held_write_leaves_by_the_end_of_the_loop_pass() -> None:
    real = _Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    await asyncio.sleep(0)
    assert real.sends == [b"HTTP/1.1 100 Continue\r\n\r\n"]


async def test_large_writes_pass_at_once_and_close_flushes() -> None:
    real = _Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    big = b"x" * (HOLD_LIMIT + 1)
    transport.write(big)
    assert real.sends == [big]
    transport.write(b"tail")
    transport.close()
    assert real.sends == [big, b"tail"] and real.closed
    # Nothing is written on a closed transport when the loop comes round.
    transport.write(b"late")
    await asyncio.sleep(0)
    assert real.sends == [big, b"tail"]


def _app() -> Starlette:
    async def small(request: Request) -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    async def streamed(request: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(50):
                yield b"%05d" % i * 2000

        return StreamingResponse(chunks(), media_type="application/octet-stream")

    return Starlette(routes=[Route("/small", small), Route("/streamed", streamed)])


async def test_served_answers_arrive_whole_and_in_order() -> None:
    """Served with the kit's protocol (serve's default), as every app is."""
    async with serve(_app()) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # Two pipelined requests on one kept-alive connection: answered in order.
        writer.write(
            b"GET /small HTTP/1.1\r\nhost: t\r\n\r\nGET /small HTTP/1.1\r\nhost: t\r\n\r\n"
        )
        await writer.drain()
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(11) == b'{"ok":true}'
        writer.close()
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.get("/streamed")
            assert r.content == b"".join(b"%05d" % i * 2000 for i in range(50))


async def test_write_now_sends_at_once_after_what_is_held() -> None:
    real = _Recording()
    transport = CoalescingTransport(real, asyncio.get_running_loop())
    transport.write_now(b"whole answer")
    assert real.sends == [b"whole answer"]
    transport.write(b"head")
    transport.write_now(b"body")
    assert real.sends == [b"whole answer", b"headbody"]
    await asyncio.sleep(0)
    assert real.sends == [b"whole answer", b"headbody"]
