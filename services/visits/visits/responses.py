"""How every feature answers a record: its JSON (times in UTC with Z, money as decimal
strings) with its ETag, and a Location for a new one."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from servicekit.app import json_response
from servicekit.etag import etag_for


def record(
    model: BaseModel, version: int, *, status: int = 200, location: str | None = None
) -> Response:
    headers = {"ETag": etag_for(version)}
    if location is not None:
        headers["Location"] = location
    return json_response(model.model_dump(mode="json"), status, headers)


def listing(items: Sequence[BaseModel], next_cursor: str | None) -> Response:
    """A list's page, `{"items": [...], "next_cursor": ...}`, encoded once (returning the
    `Page` model instead would have FastAPI validate every item again against the response
    model before encoding it)."""
    body = {"items": [i.model_dump(mode="json") for i in items], "next_cursor": next_cursor}
    return Response(orjson.dumps(body), media_type="application/json")
