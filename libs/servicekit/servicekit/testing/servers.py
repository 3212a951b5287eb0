"""Serve an ASGI app over real HTTP inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from servicekit.devdb import free_port


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Run `app` (lifespan included) on 127.0.0.1; yields its base URL; stops it on exit."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port or free_port(),
        lifespan="on",
        log_level="warning",
        access_log=False,
        log_config=None,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # uvicorn re-installs its own handlers; keep our JSON logs for the next server.
        logging.getLogger("uvicorn.error").handlers = []
