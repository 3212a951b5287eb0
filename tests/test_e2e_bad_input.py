"""Bad input through the gateway: whatever a client sends, the answer is a 4xx problem document
naming what is wrong, never a 500. The NUL sweep walks every public operation of the merged
API document, so an operation added later is covered without a line here."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from conftest import login
from conftest import ok as _ok

pytestmark = pytest.mark.e2e
PASSWORD = "correct-horse-" + uuid.uuid4().hex[:8]
NUL = "a\x00b"
# Path parameters that are not ids, with a value each that names something real.
PATH_VALUES = {"app": "customers"}


@pytest.fixture
async def gw(stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.running["gateway"].url, timeout=60) as client:
        yield client


@pytest.fixture
def admin_login(stack) -> tuple[str, str]:
    return stack.env["BOOTSTRAP_ADMIN_EMAIL"], stack.env["BOOTSTRAP_ADMIN_PASSWORD"]


# --- a minimal valid value for a schema of the document ----------------------------------------


class Document:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def branch(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The schema itself, or its first alternative that is not null."""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(s) for s in schema[key]]
                return next((s for s in options if s.get("type") != "null"), options[0])
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self.resolve(schema["allOf"][0])
        return schema

    def sample(self, schema: dict[str, Any], depth: int = 0) -> Any:
        s = self.branch(schema)
        if "const" in s:
            return s["const"]
        if "enum" in s:
            return s["enum"][0]
        if "example" in s:
            return s["example"]
        kind = s.get("type")
        if kind == "object" or "properties" in s:
            props = s.get("properties", {})
            return {
                name: self.sample(props[name], depth + 1)
                for name in s.get("required", [])
                if name in props and depth < 4
            }
        if kind == "array":
            return [] if not s.get("minItems") else [self.sample(s["items"], depth + 1)]
        if kind == "integer":
            return max(int(s.get("minimum", 1)), 1)
        if kind == "number":
            return max(s.get("minimum", 1), 1)
        if kind == "boolean":
            return False
        return _string(s)

    def text_fields(self, schema: dict[str, Any], depth: int = 0) -> list[str]:
        """The free-text properties of an object schema (no format, no enum)."""
        s = self.branch(schema)
        out = []
        for name, prop in s.get("properties", {}).items():
            p = self.branch(prop)
            if p.get("type") == "string" and not {"format", "enum", "pattern", "const"} & set(p):
                out.append(name)
        return out


def _string(s: dict[str, Any]) -> str:
    fmt = s.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date":
        return "2024-05-01"
    if fmt == "date-time":
        return "2024-05-01T08:00:00Z"
    if fmt == "email":
        return f"x-{uuid.uuid4().hex[:6]}@example.com"
    pattern = s.get("pattern", "")
    if pattern and re.search(r"\\d|0-9", pattern):
        return "1"
    return "x" * max(int(s.get("minLength", 1)), 1)


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                ops.append((method.upper(), path, op))
    # Signing out (refused or not) is last: the sweep's own session must last until then.
    return sorted(ops, key=lambda o: o[1].endswith("/logout"))


def _path(d: Document, path: str, op: dict[str, Any]) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            schema = d.branch(param.get("schema", {}))
            value = PATH_VALUES.get(param["name"]) or _string(schema)
            path = path.replace("{" + param["name"] + "}", value)
    return path


def _named(problem: dict[str, Any], where: str, field: str) -> bool:
    return any(
        list(e["loc"][:2]) == [where, field] or list(e["loc"]) == [where, field]
        for e in problem.get("errors", [])
    )


async def test_nul_in_any_text_of_any_operation_is_a_422_naming_the_field(gw, admin_login):
    """NUL (U+0000) in every free-text query parameter and body field of every public
    operation, as the admin (who may call them all): 422 naming each field, never a 500.
    PostgreSQL cannot hold NUL in text, so before the kit refused it at the edge these
    reached the database and answered 500."""
    admin = await login(gw, *admin_login)
    doc = await _ok(await gw.get("/openapi.json"))
    d = Document(doc)
    checked: list[str] = []
    failures: list[str] = []
    for method, template, op in _operations(doc):
        path = _path(d, template, op)
        name = f"{method} {template}"
        queries = {
            p["name"]: NUL
            for p in op.get("parameters", [])
            if p["in"] == "query"
            and d.branch(p.get("schema", {})).get("type") == "string"
            and "enum" not in d.branch(p.get("schema", {}))
            and "format" not in d.branch(p.get("schema", {}))
        }
        if queries:
            resp = await gw.request(method, path, params=queries, headers=admin)
            problem = resp.json() if resp.status_code == 422 else {}
            missing = [q for q in queries if not _named(problem, "query", q)]
            if resp.status_code != 422 or missing:
                failures.append(f"{name} query {missing}: {resp.status_code} {resp.text[:200]}")
            checked.append(name + " query")
        content = op.get("requestBody", {}).get("content", {})
        for media in ("application/json", "application/x-www-form-urlencoded"):
            if media not in content:
                continue
            schema = content[media].get("schema", {})
            fields = d.text_fields(schema)
            if not fields:
                continue
            body = d.sample(schema)
            if not isinstance(body, dict):
                continue
            body.update(dict.fromkeys(fields, NUL))
            if media == "application/json":
                resp = await gw.request(method, path, json=body, headers=admin)
            else:
                resp = await gw.request(method, path, data=body, headers=admin)
            problem = resp.json() if resp.status_code == 422 else {}
            missing = [f for f in fields if not _named(problem, "body", f)]
            if resp.status_code != 422 or missing:
                failures.append(f"{name} body {missing}: {resp.status_code} {resp.text[:200]}")
            checked.append(name + " body")
    assert not failures, "\n".join(failures)
    # The sweep really covered the API: sign-in, the archive, opportunities, identity.
    assert "POST /api/v1/auth/token body" in checked
    assert "POST /api/v1/customers body" in checked
    assert "GET /api/v1/customers query" in checked
    assert len(checked) > 30, checked
