"""The listening socket a launcher hands to uvicorn (`--fd`): accepted connections get
TCP_NODELAY, so a response's head and body are not held apart by Nagle's algorithm."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
import uvicorn
import uvloop
from starlette.types import Receive, Scope, Send

from servicekit.sockets import listening_socket

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})


async def _accepted_nodelay(sock: socket.socket) -> int:
    """TCP_NODELAY of the connection uvicorn accepts on `sock`, served as `--fd` serves it."""
    config = uvicorn.Config(
        _ok, fd=sock.fileno(), lifespan="off", access_log=False, log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server stopped during start-up"
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
        await writer.drain()
        answer = await reader.readuntil(b"ok")
        assert answer.startswith(b"HTTP/1.1 200")
        (protocol,) = server.server_state.connections
        transport: asyncio.Transport = protocol.transport
        accepted = transport.get_extra_info("socket")
        value = int(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()
        return value
    finally:
        server.should_exit = True
        await task


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_connections_accepted_on_a_launcher_socket_have_nodelay(loop: str) -> None:
    sock = listening_socket("127.0.0.1")
    try:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            assert runner.run(_accepted_nodelay(sock)) != 0
    finally:
        sock.close()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_a_plain_socket_handed_over_leaves_nagle_on(loop: str) -> None:
    """Why `listening_socket` sets TCP_NODELAY: the server does not (uvicorn labels an `--fd`
    socket AF_UNIX). Should a uvicorn upgrade fix that, this fails and says so."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            assert runner.run(_accepted_nodelay(sock)) == 0
    finally:
        sock.close()


def test_a_taken_port_is_refused() -> None:
    first = listening_socket("127.0.0.1")
    try:
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", first.getsockname()[1]).close()
    finally:
        first.close()
