"""End to end through the real gateway and the real services, each its own process."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import uuid
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from fieldforce.apps import BY_NAME
from fieldforce.stack import Stack
from servicekit.testing.harness import wait_until
from servicekit.testing.tokens import TokenMinter, make_principal

pytestmark = pytest.mark.e2e
PROBLEM = "application/problem+json"


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


async def _login(c: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    r = await c.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _rep(c: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    email = f"e2e-rep-{uuid.uuid4().hex[:8]}@example.com"
    password = "pw-" + secrets.token_urlsafe(12)
    r = await c.post(
        "/api/v1/users",
        json={"email": email, "name": "E2E rep", "role": "rep", "password": password},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    return await _login(c, email, password)


def _gateway(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.running["gateway"].url, timeout=20)


async def _admin(c: httpx.AsyncClient, stack: Stack) -> dict[str, str]:
    # From the env the stack was started with: importing the root conftest again would draw
    # a new random password.
    env = stack.env
    return await _login(c, env["BOOTSTRAP_ADMIN_EMAIL"], env["BOOTSTRAP_ADMIN_PASSWORD"])


async def test_feeds_and_records_through_the_gateway(stack: Stack) -> None:
    async with _gateway(stack) as c:
        admin = await _admin(c, stack)
        for app in ("identity", "customers", "visits", "opportunities", "analytics"):
            r = await c.get(f"/api/v1/events/{app}?limit=1", headers=admin)
            assert r.status_code == 200, (app, r.text)
            assert "items" in r.json()
            assert r.headers["ratelimit-policy"].startswith('"admin";')
        key = {"X-API-Key": stack.env["EVENTS_API_KEY"]}
        keyed = await c.get("/api/v1/events/customers", headers=key)
        assert keyed.status_code == 200, keyed.text
        rep = await _rep(c, admin)
        _problem(await c.get("/api/v1/events/customers", headers=rep), 403)
        _problem(await c.get("/api/v1/events/customers"), 401)

        # A record written and read through the gateway.
        created = await c.post(
            "/api/v1/customers", json={"name": "E2E Gateway Co.", "region": "east"}, headers=admin
        )
        assert created.status_code == 201, created.text
        customer_id = created.json()["id"]
        got = await c.get(f"/api/v1/customers/{customer_id}", headers=admin)
        assert got.status_code == 200, got.text
        assert got.json()["id"] == customer_id
        _problem(await c.get(f"/api/v1/customers/{uuid.uuid4()}", headers=rep), 404)

        _problem(await c.get("/api/v1/no-such-area/1", headers=admin), 404)


async def test_forged_internal_token_grants_nothing_and_services_need_one(
    stack: Stack, minter: TokenMinter
) -> None:
    # Signed with the very key the services trust: the gateway still drops it.
    forged = minter.token(make_principal("admin", scopes=["events:read"]), "customers")
    async with _gateway(stack) as c:
        _problem(await c.get("/api/v1/events/customers", headers={"X-Internal-Token": forged}), 401)
        _problem(await c.get("/api/v1/customers", headers={"X-Internal-Token": forged}), 401)
    async with httpx.AsyncClient(base_url=stack.running["customers"].url) as direct:
        _problem(await direct.get("/api/v1/customers"), 401)
        _problem(await direct.get("/events"), 401)


async def test_a_local_caller_cannot_choose_its_address(stack: Stack) -> None:
    """The launcher serves the apps without uvicorn's proxy headers: with no trusted proxy
    configured, a caller's X-Forwarded-For is neither audited nor locked out as its address."""
    email = f"e2e-nobody-{uuid.uuid4().hex[:8]}@example.com"
    async with _gateway(stack) as c:
        r = await c.post(
            "/api/v1/auth/token",
            data={"username": email, "password": "a-guess-1"},
            headers={"X-Forwarded-For": "203.0.113.77"},
        )
        _problem(r, 401)
        admin = await _admin(c, stack)
        trail = await c.get("/api/v1/audit?action=login.failed&limit=200", headers=admin)
        assert trail.status_code == 200, trail.text
        seen = [a["client_address"] for a in trail.json()["items"] if a["detail"]["email"] == email]
        assert seen == ["127.0.0.1"]


async def test_request_id_is_echoed_and_reaches_the_service_log(stack: Stack) -> None:
    request_id = f"e2e-{uuid.uuid4().hex}"
    async with _gateway(stack) as c:
        admin = await _admin(c, stack)
        r = await c.get(
            "/api/v1/events/customers?limit=1", headers={**admin, "X-Request-ID": request_id}
        )
        assert r.status_code == 200
        assert r.headers["x-request-id"] == request_id
    log_path = stack.running["customers"].log_path

    def logged() -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for line in log_path.read_text().splitlines()
            if request_id in line and line.startswith("{")
        ]

    lines = await wait_until(logged, within=5, every=0.05, what=f"{request_id} in {log_path}")
    assert any(line.get("path") == "/events" and line.get("status") == 200 for line in lines)


async def test_upstream_down_is_a_502_problem_in_time(stack: Stack) -> None:
    async with _gateway(stack) as c:
        admin = await _admin(c, stack)
        # The merged document is cached for a while: made now, it holds analytics' paths.
        assert (
            "analytics"
            not in (await c.get("/openapi.json")).json()["info"]["x-unavailable-services"]
        )
        stack.stop_app("analytics")
        try:
            started = time.monotonic()
            body = _problem(await c.get("/api/v1/targets", headers=admin), 502)
            assert "analytics" in body["detail"]
            assert time.monotonic() - started < 5
            doc = (await c.get("/openapi.json")).json()
            assert "analytics" in doc["info"]["x-unavailable-services"]
            assert not [p for p in doc["paths"] if p.startswith("/api/v1/targets")]
        finally:
            stack.start_app(BY_NAME["analytics"])
            await asyncio.to_thread(stack.wait_ready, 60, ["analytics"])
        r = await c.get("/api/v1/events/analytics", headers=admin)
        assert r.status_code == 200, r.text


async def test_merged_openapi_of_the_whole_stack(stack: Stack) -> None:
    async with _gateway(stack) as c:
        # Services' documents are cached briefly; a fresh one after the restart above.
        doc: dict[str, Any] = {}
        for _ in range(40):
            doc = (await c.get("/openapi.json")).json()
            if not doc["info"]["x-unavailable-services"]:
                break
            await asyncio.sleep(0.5)
    validate(doc)
    assert doc["info"]["x-unavailable-services"] == []
    paths = doc["paths"]
    assert "/api/v1/auth/token" in paths and "/api/v1/events/{app}" in paths
    assert "/api/v1/customers/{customer_id}" in paths
    assert not {"/healthz", "/readyz", "/metrics", "/events"} & set(paths)
    _holds_to_the_contract_rules(doc)


HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _inline_enums(node: Any, where: str) -> list[str]:
    """Closed sets written out in place instead of referring to their one component."""
    found = []
    if isinstance(node, dict):
        if "enum" in node and node["enum"] != ["true"]:  # Idempotent-Replayed's one value
            found.append(where)
        for key, value in node.items():
            found += _inline_enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _inline_enums(value, f"{where}[{i}]")
    return found


def _holds_to_the_contract_rules(doc: dict[str, Any]) -> None:
    """What issue 12 asks of every operation of every service, checked over the whole
    document, so that an app added later is held to it too."""
    described = {t["name"] for t in doc["tags"] if t.get("description")}
    ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            where = f"{method.upper()} {path}"
            # Short and stable: `customers_create`, never FastAPI's `create_api_v1_..._post`.
            assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", op["operationId"]), where
            assert "api_v1" not in op["operationId"], where
            ids.append(op["operationId"])
            assert len(op["tags"]) == 1 and op["tags"][0] in described, where
            for status, answer in op["responses"].items():
                if int(status) >= 400:
                    # Every error is the one problem document (or a problem of its own).
                    assert list(answer["content"]) == ["application/problem+json"], where
    assert len(ids) == len(set(ids))
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "Problem" in schemas
    assert _inline_enums(doc["paths"], "paths") == []
    assert [w for w in _inline_enums(schemas, "") if w.count("/") > 1] == []
