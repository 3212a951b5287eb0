"""`servicekit.calls`: an app calls another app's public API through the gateway on behalf of
the caller it serves, presenting the internal token it was given, with the caller's request
id; the principal's `act` chain survives the token round trip. (The gateway's side is
gateway/tests/test_delegation.py; the whole path, tests/test_e2e_opportunities.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from servicekit.app import AppSpec, json_response
from servicekit.auth import Principal, TokenVerifier
from servicekit.calls import GatewayCalls
from servicekit.devdb import free_port
from servicekit.errors import Unauthorized
from servicekit.routing import kit_router
from servicekit.settings import KitSettings
from servicekit.testing.harness import serve_service
from servicekit.testing.sample.app import MIGRATIONS
from servicekit.testing.servers import serve
from servicekit.testing.tokens import make_principal


def caller_app() -> AppSpec:
    router = kit_router(prefix="/api/v1/things")

    @router.post("/relay")
    async def relay(calls: GatewayCalls) -> Response:
        answer = await calls.post("/api/v1/other/things", json={"n": 1}, params={"x": "y"})
        return json_response({"status": answer.status, "seen": answer.json()})

    return AppSpec(
        name="kitsample",
        schema="kitsample",
        title="calls",
        migrations_dir=MIGRATIONS,
        routers=[router],
    )


def stand_in_gateway(seen: list[dict[str, Any]]) -> Starlette:
    async def other(request: Request) -> Response:
        seen.append(
            {
                "token": request.headers.get("x-internal-token"),
                "request_id": request.headers.get("x-request-id"),
                "query": request.url.query,
                "body": orjson.loads(await request.body()),
            }
        )
        return Response(b'{"made": true}', status_code=201, media_type="application/json")

    return Starlette(routes=[Route("/api/v1/other/things", other, methods=["POST"])])


async def test_a_call_carries_the_callers_token_and_request_id(sample_db, minter):
    seen: list[dict[str, Any]] = []
    async with (
        serve(stand_in_gateway(seen)) as gateway_url,
        serve_service(
            caller_app(),
            KitSettings,
            sample_db,
            minter,
            follow_feeds=False,
            app_name="kitsample",
            gateway_url=gateway_url,
        ) as app,
    ):
        rep = make_principal("rep")
        headers = app.headers(rep, **{"X-Request-ID": "req-1234"})
        resp = await app.client.post("/api/v1/things/relay", headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"status": 201, "seen": {"made": True}}
        (call,) = seen
        assert call["token"] == headers["X-Internal-Token"]
        assert call["request_id"] == "req-1234"
        assert call["query"] == "x=y" and call["body"] == {"n": 1}


async def test_without_a_reachable_gateway_the_call_is_a_503(sample_db, minter):
    async with serve_service(
        caller_app(), KitSettings, sample_db, minter, follow_feeds=False, app_name="kitsample"
    ) as app:
        resp = await app.post("/api/v1/things/relay", as_=make_principal("rep"))
        assert resp.status_code == 503 and "GATEWAY_URL" in resp.json()["detail"]
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with serve_service(
        caller_app(),
        KitSettings,
        sample_db,
        minter,
        follow_feeds=False,
        app_name="kitsample",
        gateway_url=nowhere,
    ) as app:
        resp = await app.post("/api/v1/things/relay", as_=make_principal("rep"))
        assert resp.status_code == 503 and "could not be reached" in resp.json()["detail"]


def test_the_act_chain_survives_the_token(minter):
    verifier = TokenVerifier(
        minter.public_pem, audience=["customers", "visits"], issuer="fieldforce-gateway"
    )
    principal = Principal(
        sub=str(uuid.uuid4()), kind="user", role="rep", act=("analytics", "opportunities")
    )
    back, audience = verifier.verify_with_audience(minter.token(principal, "visits"))
    assert back == principal and audience == "visits"
    assert principal.to_claims()["act"] == {"sub": "analytics", "act": {"sub": "opportunities"}}
    assert "act" not in Principal(sub="x", kind="user", role="rep").to_claims()
    with pytest.raises(Unauthorized):
        verifier.verify(minter.token(principal, "gateway"))
    deep = Principal(sub="x", kind="user", role="rep", act=("a", "b", "c", "d", "e"))
    with pytest.raises(Unauthorized):
        verifier.verify(minter.token(deep, "visits"))
