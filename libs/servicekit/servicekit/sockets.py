"""Listening sockets bound by a launcher and handed to a server (uvicorn's `--fd`).

Binding before the server starts makes a free port (port 0) ours from the moment it is chosen.

TCP_NODELAY is set on the listener because the server will not set it on what it accepts:
uvicorn wraps an `--fd` socket as AF_UNIX (`socket.fromfd(fd, AF_UNIX, ...)`), so uvloop and
asyncio, which set TCP_NODELAY only on TCP servers' connections, leave Nagle's algorithm on.
uvicorn writes a response's head and body in two sends, and Nagle then holds the body back until
the client's delayed ACK: about 40 ms added to every call on a kept-alive connection. Linux
copies TCP_NODELAY from a listening socket to the connections it accepts.
"""

from __future__ import annotations

import socket


def listening_socket(host: str, port: int = 0, *, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to (host, port) and listening, inheritable by a child process."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock
