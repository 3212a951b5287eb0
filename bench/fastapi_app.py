"""A reference between the two sides: plain FastAPI + asyncpg, no kit (no auth, logs, metrics).

Tells how much of the gap to raw is the framework and how much the kit adds on top.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import FastAPI
from fastapi import Path as PathParam
from starlette.requests import Request
from starlette.responses import Response

from bench.raw_app import WIDGET_BY_ID, pool_lifespan

app = FastAPI(lifespan=pool_lifespan)


@app.get("/widgets/{widget_id}")
async def get_widget(request: Request, widget_id: Annotated[uuid.UUID, PathParam()]) -> Response:
    row = await request.app.state.pool.fetchrow(WIDGET_BY_ID, widget_id)
    if row is None:
        return Response(b'{"detail":"not found"}', 404, media_type="application/json")
    return Response(
        orjson.dumps(dict(row), default=str, option=orjson.OPT_UTC_Z), media_type="application/json"
    )
