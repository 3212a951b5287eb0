"""How every feature answers a record: its JSON (times in UTC with Z, money as decimal
strings) with its ETag, and a Location for a new one."""

from __future__ import annotations

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
