"""Serve an ASGI app over real HTTP inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from servicekit.sockets import listening_socket


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Run `app` (lifespan included) on 127.0.0.1; yields its base URL; stops it on exit.

    Served as the stack serves the apps (uvicorn's httptools protocol). The socket is bound
    here, before the server starts, so that a free port (port None) is ours from the moment it
    is chosen: no other test can take it in between.
    """
    sock = listening_socket("127.0.0.1", port or 0)
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=bound,
        lifespan="on",
        log_level="warning",
        access_log=False,
        log_config=None,
        # As the stack serves them: the gateway judges X-Forwarded-For itself.
        proxy_headers=False,
        http="httptools",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()
        # uvicorn re-installs its own handlers; keep our JSON logs for the next server.
        logging.getLogger("uvicorn.error").handlers = []
