"""How every feature answers a record: its JSON (times in UTC with Z, money as decimal
strings) with its ETag, and a Location for a new one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from servicekit.app import json_response
from servicekit.etag import etag_for
from servicekit.openapi import with_headers


def record(
    model: BaseModel | Mapping[str, Any],
    version: int,
    *,
    status: int = 200,
    location: str | None = None,
) -> Response:
    """`model`, or a mapping of its read schema's fields in the schema's order (answered as
    it is, `docs/anatomy.md`), with its ETag."""
    headers = {"ETag": etag_for(version)}
    if location is not None:
        headers["Location"] = location
    payload = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return json_response(payload, status, headers)


def listing(items: Sequence[BaseModel], next_cursor: str | None) -> Response:
    """A list's page, `{"items": [...], "next_cursor": ...}`, encoded once (returning the
    `Page` model instead would have FastAPI validate every item again against the response
    model before encoding it)."""
    body = {"items": [i.model_dump(mode="json") for i in items], "next_cursor": next_cursor}
    return Response(orjson.dumps(body), media_type="application/json")


def rows_listing(items: Sequence[Mapping[str, Any]], next_cursor: str | None) -> Response:
    """A list's page whose items are already the read schema's fields in its order (rows
    answered as they are, `docs/anatomy.md`): written as `listing` writes the models."""
    return json_response({"items": items, "next_cursor": next_cursor})


def answers(
    *,
    created: bool = False,
    record: bool = True,
    missing: str | None = None,
    conflict: str | None = None,
    invalid: str | None = None,
    post: bool = True,
) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=`: the headers of its success (`ETag` on a record, `Location` too
    on a new one) and the causes of its 404, 409 and 422 in this route's words (the kit
    documents them as problems, and the 412 of a route that reads `If-Match`). A POST's 409
    also answers a retry whose Idempotency-Key is still being processed."""
    doc: dict[int | str, dict[str, Any]] = {}
    if created:
        doc[201] = with_headers("ETag", "Location")
    elif record:
        doc[200] = with_headers("ETag")
    if conflict is not None and post:
        conflict += " (or the Idempotency-Key is still being processed)"
    for status, cause in ((404, missing), (409, conflict), (422, invalid)):
        if cause is not None:
            doc[status] = {"description": cause}
    return doc
