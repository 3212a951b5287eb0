"""Request smuggling and framing through the real gateway, over a raw socket.

Where a request's length could be read two ways (by the gateway and by the service, or by two
proxies in front of it), a smuggled request can ride in the body of another. Each case is
pinned here with what the client gets, whichever layer answers it: uvicorn's httptools parser
refuses most of them itself (a plain-text 400); what it lets through, the edge refuses
(edge.py `framing`). Either way the connection is closed after the answer, so nothing that
followed on it is read as a request, and the service never sees the call.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest

from .test_proxy import proxied

POST = "POST /api/v1/visits/echo HTTP/1.1\r\nhost: gw\r\nauthorization: {auth}\r\n"
# What a smuggler hides in a body: a second request, for the one who reads the body short.
SMUGGLED = "GET /api/v1/visits/echo HTTP/1.1\r\nhost: gw\r\nauthorization: {auth}\r\n\r\n"

REFUSED: dict[str, tuple[str, int, bool]] = {
    # name: (request after the request line and credentials, status, the edge's own problem)
    "content-length and chunked": (
        "content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        400,
        False,
    ),
    "chunked and content-length": (
        "transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED,
        400,
        False,
    ),
    "two equal content-lengths": (
        "content-length: 5\r\ncontent-length: 5\r\n\r\nhello" + SMUGGLED,
        400,
        False,
    ),
    "two different content-lengths": (
        "content-length: 5\r\ncontent-length: 41\r\n\r\nhello" + SMUGGLED,
        400,
        False,
    ),
    "a content-length list": ("content-length: 5, 5\r\n\r\nhello" + SMUGGLED, 400, False),
    "a signed content-length": ("content-length: +5\r\n\r\nhello" + SMUGGLED, 400, False),
    "chunked not last": (
        "transfer-encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        400,
        False,
    ),
    "chunked twice": (
        "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        400,
        False,
    ),
    "a space before the colon": (
        "transfer-encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        400,
        False,
    ),
    "obsolete line folding": (
        "x-folded: a\r\n b\r\ncontent-length: 0\r\n\r\n" + SMUGGLED,
        400,
        False,
    ),
    "obsolete line folding with a tab": (
        "x-folded: a\r\n\tb\r\ncontent-length: 0\r\n\r\n" + SMUGGLED,
        400,
        False,
    ),
    # httptools de-chunks this one and hands it on; the body would still be gzip-coded, and
    # the service would read it as the body itself: the edge refuses it.
    "gzip, chunked": (
        "transfer-encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
        501,
        True,
    ),
}


async def _exchange(port: int, data: bytes) -> bytes:
    """Send `data`, then read everything until the gateway closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(-1)
    finally:
        writer.close()


def _answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The answers in `raw`, each with a Content-Length (as every answer here has)."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return out


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_ambiguous_framing_is_refused_and_the_connection_closed(fresh_db, minter, case):
    extra, status, problem = REFUSED[case]
    async with proxied(fresh_db, minter) as s:
        port = int(s.gateway.rsplit(":", 1)[1])
        auth = s.admin["Authorization"]
        raw = await _exchange(port, (POST + extra).format(auth=auth).encode())
        # One answer, then the connection closed: the smuggled request is never read.
        ((got, headers, body),) = _answers(raw)
        assert got == status, raw
        assert headers["connection"] == "close"
        if problem:
            document: dict[str, Any] = json.loads(body)
            assert headers["content-type"] == "application/problem+json"
            assert document["status"] == status and "Transfer-Encoding" in document["detail"]
        assert s.echo.state.hits == 0


async def test_http10_with_transfer_encoding_is_refused(fresh_db, minter):
    """RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing."""
    async with proxied(fresh_db, minter) as s:
        port = int(s.gateway.rsplit(":", 1)[1])
        auth = s.admin["Authorization"]
        request = (
            f"POST /api/v1/visits/echo HTTP/1.0\r\nhost: gw\r\nauthorization: {auth}\r\n"
            "transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        ((got, headers, body),) = _answers(await _exchange(port, request.encode()))
        assert got == 400 and headers["connection"] == "close"
        assert "HTTP/1.0" in json.loads(body)["detail"]
        assert s.echo.state.hits == 0


async def test_plain_chunked_and_sized_bodies_pass(fresh_db, minter):
    """The control: well-framed bodies, pipelined on one connection, are forwarded."""
    async with proxied(fresh_db, minter) as s:
        port = int(s.gateway.rsplit(":", 1)[1])
        auth = s.admin["Authorization"]
        chunked = POST + "transfer-encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        sized = POST + "content-length: 5\r\nconnection: close\r\n\r\nhello"
        raw = await _exchange(port, (chunked + sized).format(auth=auth).encode())
        answers = _answers(raw)
        assert [a[0] for a in answers] == [200, 200]
        assert all(json.loads(a[2])["body_length"] == 5 for a in answers)
        assert s.echo.state.hits == 2


async def test_a_half_closed_client(fresh_db, minter):
    """A client that shuts its sending side: uvicorn takes the end of its input for the end
    of the connection and answers nothing. A body cut short by it never reaches the service."""
    async with proxied(fresh_db, minter) as s:
        port = int(s.gateway.rsplit(":", 1)[1])
        auth = s.admin["Authorization"]
        for request, reaches_service in (
            (POST + "content-length: 10\r\n\r\nhello", False),
            ("GET /api/v1/visits/echo HTTP/1.1\r\nhost: gw\r\nauthorization: {auth}\r\n\r\n", None),
        ):
            hits = s.echo.state.hits
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request.format(auth=auth).encode())
            await writer.drain()
            writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
            async with asyncio.timeout(10):
                assert await reader.read(-1) == b""
            writer.close()
            if reaches_service is False:
                assert s.echo.state.hits == hits
        # The gateway serves on.
        ok = await s.client.get("/api/v1/visits/echo", headers=s.admin)
        assert ok.status_code == 200
