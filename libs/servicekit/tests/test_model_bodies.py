"""A route whose body is one JSON model has it validated from the body's bytes (`KitRoute`):
the endpoint gets the same model, and every refused body the same problem document, as a plain
FastAPI route validating the parsed document."""

from __future__ import annotations

import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import httpx
import orjson
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import Response

from servicekit.app import json_response
from servicekit.errors import install_error_handlers
from servicekit.fields import Money
from servicekit.inputs import Timestamp
from servicekit.routing import kit_router
from servicekit.testing.servers import serve


class Kind(StrEnum):
    call = "call"
    visit = "visit"


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: uuid.UUID
    kind: Kind
    at: Timestamp
    amount: Money | None = None
    text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] = ""
    point: Point | None = None
    tags: list[str] = Field(default_factory=list, max_length=3)
    done: bool = False


def _echo(body: Note) -> Response:
    # What the endpoint received, with the fields the client set.
    return json_response(
        {"note": body.model_dump(mode="json"), "set": sorted(body.model_fields_set)}
    )


def _app() -> FastAPI:
    kit = kit_router(prefix="/kit")
    plain = APIRouter(prefix="/plain")

    @kit.post("/notes")
    async def kit_note(body: Note) -> Response:
        assert type(body) is Note
        return _echo(body)

    @plain.post("/notes")
    async def plain_note(body: Note) -> Response:
        return _echo(body)

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(kit)
    app.include_router(plain)
    return app


CUSTOMER = "0f8e2c53-1b4e-4e5a-9c1d-8f0e7a6b5c4d"
GOOD: dict[str, Any] = {
    "customer_id": CUSTOMER,
    "kind": "visit",
    "at": "2026-05-01T08:00:00+02:00",
    "amount": "12.50",
    "text": "  spoke to the buyer ",
    "point": {"lat": 31.5, "lon": 121.5},
    "tags": ["a", "b"],
}
# A valid body's beginning, to end in a raw spelling of one more field.
HEAD = b'{"customer_id": "%s", "kind": "call", "at": "2026-05-01T08:00:00Z"' % CUSTOMER.encode()
# "e" and three digits in an id: the request's edge parses the document to look closer.
SUSPECT_ID = "0f8e2c53-1b4e-4e5a-9c1d-8f0e7a6e4001"


def _note(**fields: Any) -> bytes:
    return orjson.dumps({"customer_id": CUSTOMER, "kind": "call", "at": GOOD["at"], **fields})


BODIES: list[bytes] = [
    b"{}",
    b"[]",
    b"null",
    b"12",
    b'"text"',
    b"{",
    b'{"customer_id": "x"}',
    _note(done="yes", tags=["a"], extra=1),
    _note(kind="meeting", at=1714550400),
    _note(at="2026-05-01", amount=12.5),
    _note(at="2026-05-01T08:00:00", amount="-1"),
    _note(point={"lat": 91, "lon": "x", "alt": 3}),
    _note(tags=["a", "b", "c", "d"], text="x" * 30),
    _note(point=None, amount=None),
    _note(customer_id=SUSPECT_ID, at="x"),
    orjson.dumps({**GOOD, "customer_id": SUSPECT_ID}),
    HEAD + b', "done": true, "done": false}',
]
# Values no field can store: refused at the kit route's edge (a plain route has no such check).
UNSTORABLE: list[bytes] = [
    HEAD + b', "text": "a\\u0000b"}',
    HEAD + b', "point": {"lat": NaN, "lon": 1}}',
]


async def _both(client: httpx.AsyncClient, body: bytes, **headers: str) -> tuple[Any, Any]:
    answers = []
    for route in ("/kit/notes", "/plain/notes"):
        resp = await client.post(
            route, content=body, headers={"content-type": "application/json", **headers}
        )
        doc = resp.json()
        if isinstance(doc, dict):
            doc.pop("instance", None)
        answers.append((resp.status_code, resp.headers["content-type"], doc))
    return answers[0], answers[1]


async def test_a_model_body_gets_the_same_model_and_the_same_refusals_as_fastapi():
    async with serve(_app()) as url, httpx.AsyncClient(base_url=url) as client:
        kit, plain = await _both(client, orjson.dumps(GOOD))
        assert kit == plain
        status, _, doc = kit
        assert status == 200
        # Stripped as the model says, the default filled in.
        assert doc["note"] == {**GOOD, "text": "spoke to the buyer", "done": False}
        assert doc["set"] == sorted(GOOD)
        assert Decimal(doc["note"]["amount"]) == Decimal("12.50")

        for body in BODIES:
            kit, plain = await _both(client, body)
            assert kit == plain, body
            assert kit[0] in (200, 422), (body, kit)
            if kit[0] == 422:
                assert kit[1] == "application/problem+json"
                assert kit[2]["errors"], body

        for body in UNSTORABLE:
            resp = await client.post(
                "/kit/notes", content=body, headers={"content-type": "application/json"}
            )
            assert resp.status_code == 422, body
            assert [e["type"] for e in resp.json()["errors"]] == ["value_unstorable"], body

        # Not JSON by its media type: neither route reads it as a model.
        kit, plain = await _both(client, orjson.dumps(GOOD), **{"content-type": "text/plain"})
        assert kit == plain and kit[0] == 422
