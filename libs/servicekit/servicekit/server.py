"""The HTTP protocol every app is served with: uvicorn's httptools protocol, one send per answer.

`uvicorn --http servicekit.server:HttpProtocol` (the stack, the image, the bench and the test
servers all serve this way).

Why: uvicorn writes an answer's head and its body in two `transport.write` calls, so a small
answer leaves in two TCP segments. Each costs the sender a send() and the receiver a wake-up and
a recv(): on a kept-alive connection between two of our processes (the gateway and a service)
that is two extra system calls and an extra scheduler switch on each side per call. Here a small
write is held back and leaves with the next one, in one writev, or at the end of the event
loop's current pass if no other write follows; at most one small write is held at a time, so
the transport's flow control (its buffer limits) lags by 16 KiB at most.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Writes up to this size wait for the next one (an answer's head is some hundreds of bytes).
HOLD_LIMIT = 16 * 1024


class CoalescingTransport:
    """A transport whose small writes are sent together with the write that follows."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is None and len(data) <= HOLD_LIMIT:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self.write_now(data)

    def write_now(self, data: bytes | bytearray | memoryview) -> None:
        """Send `data` (with a held write before it) without waiting: for a caller that has a
        whole answer in hand."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        else:
            self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def get_write_buffer_size(self) -> int:
        held = 0 if self._held is None else len(self._held)
        return held + self._transport.get_write_buffer_size()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a `CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        # Reading, flow control and addresses stay on the real transport; answers go through
        # the coalescing one.
        self.coalescing = CoalescingTransport(self.transport, self.loop)
        self.transport = self.coalescing  # type: ignore[assignment]
