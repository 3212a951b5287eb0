"""The baseline: one Starlette route, an asyncpg pool, fetchrow, orjson. No auth, no kit.

(`default=str` because asyncpg hands back its own UUID type, which orjson does not know.)

What a GET by id costs with nothing but the server, the driver and the serializer; the kit's
read path is measured against it. DATABASE_URL comes from the environment.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

WIDGET_BY_ID = (
    "SELECT id, name, owner, version, created_at FROM kitsample.widgets WHERE id = $1::uuid"
)


async def get_widget(request: Request) -> Response:
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow(WIDGET_BY_ID, request.path_params["widget_id"])
    if row is None:
        return Response(b'{"detail":"not found"}', 404, media_type="application/json")
    return Response(
        orjson.dumps(dict(row), default=str, option=orjson.OPT_UTC_Z), media_type="application/json"
    )


@asynccontextmanager
async def pool_lifespan(app: Starlette) -> AsyncIterator[None]:
    """`app.state.pool` for the app's lifetime (every bench's raw baseline uses it). Same pool
    bounds as the kit's reads pool (KitSettings.read_pool_size)."""
    app.state.pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"],
        min_size=1,
        max_size=int(os.environ.get("READ_POOL_SIZE", "10")),
    )
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(routes=[Route("/widgets/{widget_id:uuid}", get_widget)], lifespan=pool_lifespan)
