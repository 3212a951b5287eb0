"""Bad input through the gateway: whatever a client sends, the answer is a 4xx problem document
naming what is wrong, never a 500. The NUL sweep walks every public operation of the merged
API document, so an operation added later is covered without a line here."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from conftest import login, organisation, wait_for
from conftest import ok as _ok
from servicekit.db import to_asyncpg_dsn

pytestmark = pytest.mark.e2e
API = "/api/v1/customers"
PASSWORD = "correct-horse-" + uuid.uuid4().hex[:8]
NUL = "a\x00b"
# Path parameters that are not ids, with a value each that names something real.
PATH_VALUES = {"app": "customers"}


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


def _unnamed(resp: httpx.Response, what: str, where: str, fields: list[str]) -> list[str]:
    """The failure to report when `resp` is not a 422 naming every one of `fields`."""
    problem = resp.json() if resp.status_code == 422 else {}
    missing = [f for f in fields if not _named(problem, where, f)]
    if resp.status_code == 422 and not missing:
        return []
    return [f"{what} {missing}: {resp.status_code} {resp.text[:200]}"]


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
            failures += _unnamed(resp, f"{name} query", "query", list(queries))
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
            failures += _unnamed(resp, f"{name} body", "body", fields)
            checked.append(name + " body")
    assert not failures, "\n".join(failures)
    # The sweep really covered the API: sign-in, the archive, opportunities, identity.
    assert "POST /api/v1/auth/token body" in checked
    assert "POST /api/v1/customers body" in checked
    assert "GET /api/v1/customers query" in checked
    assert len(checked) > 30, checked


# --- cursors, dates, CSV bodies, imports, the export, 405 ------------------------------------


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _problem(resp: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = resp.json()
    assert field in problem.get("detail", "") or any(
        field in map(str, e["loc"]) for e in problem.get("errors", [])
    ), problem
    return problem


async def test_cursors_beyond_their_columns_are_422(gw, admin_login):
    """Cursors are opaque, but a client can forge one: integers beyond the column's 64 bits
    (feeds, history) or 32 bits (the data-quality score) reached the driver and answered 500."""
    org = await organisation(gw, admin_login, PASSWORD)
    admin, rep = org["admin"], org["h"]["rep_a"]
    customer = await _ok(
        await gw.post(API, json={"name": "Cursor", "region": "east"}, headers=rep), 201
    )
    history = f"{API}/{customer['id']}/history"
    # A real cursor still pages.
    first = await _ok(await gw.get(history, params={"limit": 1}, headers=rep))
    assert first["items"]
    for url, param, values, who in (
        ("/api/v1/events/customers", "after", [2**64, 0], admin),
        ("/api/v1/events/customers", "after", [0, -(2**63) - 1], admin),
        ("/api/v1/events/identity", "after", [2**70, 1], admin),
        (history, "cursor", [2**63], rep),
        (f"{API}/data-quality", "cursor", [2**31, str(uuid.uuid4())], rep),
        (API, "cursor", ["2024-05-01T00:00:00+00:00", 2**80], rep),
    ):
        _problem(await gw.get(url, params={param: _cursor(values)}, headers=who), 422, param)


async def test_numbers_are_not_dates(gw, admin_login):
    """Pydantic reads a number as seconds since 1970: `{"order_date": 0}` was stored as
    1970-01-01. Dates and times are ISO 8601 text only, in bodies and queries."""
    org = await organisation(gw, admin_login, PASSWORD)
    rep = org["h"]["rep_a"]
    customer = await _ok(
        await gw.post(API, json={"name": "Dates", "region": "east"}, headers=rep), 201
    )
    orders = f"{API}/{customer['id']}/orders"
    for value in (0, 1714521600, "1714521600"):
        body = {"order_date": value, "amount": "10.00"}
        _problem(await gw.post(orders, json=body, headers=rep), 422, "order_date")
    made = await gw.post(orders, json={"order_date": "2024-05-01", "amount": "10.00"}, headers=rep)
    assert made.status_code == 201, made.text
    assert made.json()["order_date"] == "2024-05-01"
    _problem(
        await gw.get(f"{API}/{customer['id']}", params={"as_of": "0"}, headers=rep), 422, "as_of"
    )
    _problem(
        await gw.get("/api/v1/audit", params={"since": "1714521600"}, headers=org["admin"]),
        422,
        "since",
    )


async def test_a_csv_with_a_bare_carriage_return_is_422_after_the_403(gw, admin_login):
    org = await organisation(gw, admin_login, PASSWORD)
    body = b"name,region\nGood,east\nBad\rname,east\n"
    csv_headers = {"Content-Type": "text/csv"}
    # A rep may not import: refused before the body is read, whatever it holds.
    rep = await gw.post(f"{API}/import", content=body, headers={**org["h"]["rep_a"], **csv_headers})
    assert rep.status_code == 403, rep.text
    for url in (f"{API}/import", "/api/v1/leads/bulk"):
        resp = await gw.post(url, content=body, headers={**org["admin"], **csv_headers})
        problem = _problem(resp, 422, "body")
        assert "line 3" in problem["detail"]


async def test_one_bad_row_never_blocks_the_good_ones(gw, admin_login):
    org = await organisation(gw, admin_login, PASSWORD)
    admin = org["admin"]
    tag = uuid.uuid4().hex[:6]
    rows: list[Any] = [
        {"name": f"Good one {tag}", "region": "east"},
        {"name": f"NUL {tag}\x00", "region": "east"},
        {"name": f"Huge {tag}", "region": "east", "estimated_potential": 2**70},
        {"name": f"Surrogate {tag}", "region": "east", "industry": "\ud800"},
        "not an object",
        {"name": f"Bad key {tag}", "region": "east", "attributes": {"k\x00": 1}},
        {"name": f"Good two {tag}", "region": "east", "tags": ["=evil", "ok"]},
    ]
    # A lone surrogate cannot be encoded as UTF-8 by a client library: the JSON escapes it.
    content = json.dumps({"rows": rows}).encode()
    resp = await gw.post(
        f"{API}/import", content=content, headers={**admin, "Content-Type": "application/json"}
    )
    result = await _ok(resp)
    outcomes = [r["outcome"] for r in result["results"]]
    assert outcomes == ["created", "error", "error", "error", "error", "error", "created"], result
    assert result["errors"] == 5
    found = await _ok(await gw.get(API, params={"q": tag}, headers=admin))
    assert sorted(c["name"] for c in found["items"]) == [f"Good one {tag}", f"Good two {tag}"]

    # The same in a CSV body: a NUL in one row's cell is that row's error.
    csv_body = f"name,region,tags\nCSV good {tag},east,a;b\nCSV NUL {tag}\x00,east,\n".encode()
    result = await _ok(
        await gw.post(
            f"{API}/import", content=csv_body, headers={**admin, "Content-Type": "text/csv"}
        )
    )
    assert [r["outcome"] for r in result["results"]] == ["created", "error"], result
    assert "U+0000" in result["results"][1]["error"]

    leads = [
        {"source": "web_form", "company": f"Lead ok {tag}", "region": "east"},
        {"source": "web_form", "company": f"Lead NUL {tag}\x00", "region": "east"},
        {"source": "web_form", "company": f"Lead huge {tag}", "attributes": {"n": 2**70}},
    ]
    pushed = await gw.post(
        "/api/v1/leads/bulk",
        content=json.dumps({"rows": leads}).encode(),
        headers={**admin, "Content-Type": "application/json"},
    )
    outcomes = [r["outcome"] for r in (await _ok(pushed))["results"]]
    assert outcomes[1:] == ["error", "error"] and outcomes[0] != "error", outcomes


async def test_the_export_escapes_every_formula_cell(gw, admin_login):
    """OWASP's CSV injection rule: every cell starting with =, +, -, @, tab or carriage
    return, tags included; `-2+3+cmd|...` (a digit after the sign) and tags went out raw."""
    org = await organisation(gw, admin_login, PASSWORD)
    rep = org["h"]["rep_a"]
    values = {
        "name": "-2+3+cmd|' /C calc'!A0",
        "industry": "@SUM(1+1)*cmd|' /C calc'!A0",
        "address": "\t=1+1",
        "phone": "+86 138 0000",
        "tags": ['=HYPERLINK("http://x")', "plain"],
    }
    made = await _ok(await gw.post(API, json={**values, "region": "east"}, headers=rep), 201)
    resp = await gw.get(f"{API}/export", headers=rep)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(resp.text, newline=""))}
    row = rows[made["id"]]
    for field in ("name", "industry", "address", "phone"):
        assert row[field] == "'" + made[field], (field, row[field])
    assert row["tags"] == "'" + ";".join(made["tags"])
    for cells in rows.values():
        for cell in cells.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cells


async def test_405_names_every_allowed_method(gw, admin_login):
    admin = await login(gw, *admin_login)
    for method, path, allowed in (
        ("DELETE", API, {"GET", "POST"}),
        ("PUT", f"{API}/{uuid.uuid4()}", {"GET", "PATCH"}),
        ("DELETE", "/api/v1/users", {"GET", "POST"}),
        ("PUT", f"/api/v1/users/{uuid.uuid4()}", {"GET", "PATCH"}),
    ):
        resp = await gw.request(method, path, headers=admin)
        assert resp.status_code == 405, (method, path, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert allowed <= {m.strip() for m in resp.headers["allow"].split(",")}, (
            path,
            resp.headers["allow"],
        )


async def test_nul_in_a_header_is_refused_before_any_app_reads_it(stack):
    """Headers feed stored values (the Idempotency-Key, the audit line's client): a NUL in
    one is refused by the HTTP parser as a 400, never reaching the database as a 500."""
    url = httpx.URL(stack.running["gateway"].url)
    body = b"username=x%40example.com&password=y"
    for name in (b"Idempotency-Key", b"User-Agent", b"X-Request-Id"):
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(
                b"POST /api/v1/auth/token HTTP/1.1\r\nHost: gw\r\n"
                + name
                + b": a\x00b\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                + body
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 30)
        finally:
            writer.close()
        assert status_line.split()[1] in (b"400", b"422"), (name, status_line)


_EXPORT_SQL = "%FROM customers.customers%ORDER BY customers.customers.created_at%"


async def _export_backend(conn: asyncpg.Connection) -> tuple[int, str, Any] | None:
    row = await conn.fetchrow(
        "SELECT pid, state, state_change FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE $1 "
        "AND query NOT LIKE '%LIMIT%'",
        _EXPORT_SQL,
    )
    return None if row is None else (row["pid"], row["state"], row["state_change"])


async def test_an_export_that_fails_mid_stream_is_cut_never_ended(gw, admin_login, stack):
    """The export's database connection dies after the first bytes went out: the client must
    see a broken answer, not a clean end of a 200 that looks like the whole file. Enough wide
    rows that the answer cannot sit whole in the sockets' buffers while the client waits:
    Linux grows a socket's receive buffer up to `net.ipv4.tcp_rmem`'s maximum (32 MB on some
    machines) and its send buffer up to `tcp_wmem`'s, and the answer crosses two sockets (the
    service's to the gateway, the gateway's to the client)."""
    org = await organisation(gw, admin_login, PASSWORD)
    wide = {
        "name": "Wide",
        "address": "a" * 1000,
        "industry": "i" * 200,
        "tags": [f"{i:02d}" + "t" * 48 for i in range(50)],
        "region": "east",
    }
    made = await _ok(await gw.post(API, json=wide, headers=org["h"]["rep_a"]), 201)
    conn = await asyncpg.connect(to_asyncpg_dsn(stack.database_url))
    # 30,000 copies of it, straight into the table: through the API each would be an event
    # every follower of the customers feed works through, long after this test.
    columns = await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'customers' "
        "AND table_name = 'customers' AND is_generated = 'NEVER' ORDER BY ordinal_position"
    )
    copied = {"id": "gen_random_uuid()", "code": "code || '-' || g", "external_ref": "NULL"}
    names = [c["column_name"] for c in columns]
    await conn.execute(
        f"INSERT INTO customers.customers ({', '.join(names)}) "  # noqa: S608 - fixed names
        f"SELECT {', '.join(copied.get(n, n) for n in names)} "
        "FROM customers.customers, generate_series(1, 30000) AS g WHERE id = $1",
        uuid.UUID(made["id"]),
    )
    try:
        async with gw.stream("GET", f"{API}/export", headers=org["h"]["rep_a"]) as resp:
            assert resp.status_code == 200
            # The client reads nothing: the service fills the buffers and waits, holding
            # its cursor, idle in its transaction. Then its connection is killed.
            seen: list[Any] = []

            async def waiting() -> bool:
                backend = await _export_backend(conn)
                seen.append(backend)
                return (
                    backend is not None
                    and backend[1] == "idle in transaction"
                    and seen[-2:-1] == [backend]
                )

            await wait_for(waiting, within=60)
            assert await conn.fetchval("SELECT pg_terminate_backend($1)", seen[-1][0])
            received = 0
            with pytest.raises(httpx.HTTPError):
                async for chunk in resp.aiter_raw():
                    received += len(chunk)
        # Cut short: far from the ~120 MB the 30,000 rows make.
        assert received < 60_000_000
    finally:
        await conn.close()
