"""Problem documents, authentication, one commit per request, ETags, pages, request ids."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt
import sqlalchemy as sa

from servicekit.auth import generate_keypair, load_private_key, mint_internal_token
from servicekit.routing import lone_statement
from servicekit.testing.sample.app import build, received, settings_for
from servicekit.testing.servers import serve
from servicekit.testing.tokens import make_principal


async def test_health_ready_and_metrics(sample):
    assert (await sample.client.get("/healthz")).json() == {"status": "ok"}
    ready = await sample.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == ["kitsample_0002"]
    me = make_principal()
    created = await sample.client.post("/widgets", json={"name": "a"}, headers=sample.headers(me))
    wid = created.json()["id"]
    await sample.client.get(f"/widgets/{wid}", headers=sample.headers(me))
    text = (await sample.client.get("/metrics")).text
    assert (
        'http_requests_total{app="kitsample",method="GET",route="/widgets/{widget_id}",'
        'status="200"}'
    ) in text
    assert (
        'http_request_duration_seconds_count{app="kitsample",method="POST",route="/widgets"}'
        in text
    )
    for pool in ("session", "reads", "primary"):
        assert f'db_pool_connections{{app="kitsample",pool="{pool}",state="idle"}}' in text
    assert 'outbox_events{app="kitsample"}' in text


async def test_the_reads_pool_refuses_writes_and_the_primary_pool_takes_them(sample):
    """Reads may move to a replica: nothing may write through them, whatever the caller."""
    import asyncpg
    import pytest

    db = sample.app.state.db
    async with db.reads().acquire() as conn:
        assert await conn.fetchval("SHOW transaction_read_only") == "on"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TEMPORARY TABLE scratch (n int)")
    async with db.primary().acquire() as conn:
        assert await conn.fetchval("SHOW transaction_read_only") == "off"


async def test_readyz_is_503_problem_when_schema_is_not_migrated(databases, minter):
    empty = await databases.acreate()
    app = build(settings_for(empty, minter.public_pem))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/healthz")).status_code == 200
        resp = await client.get("/readyz")
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert "database not ready" in resp.json()["detail"]


async def test_requests_without_a_valid_internal_token_get_401(sample):
    me = make_principal()
    assert (await sample.client.get("/widgets")).status_code == 401
    # A route that never asks for the principal is guarded all the same.
    assert (await sample.client.post("/widgets/crash")).status_code == 401
    body = (await sample.client.get("/widgets")).json()
    assert body["type"] == "/problems/unauthorized" and body["status"] == 401

    key = load_private_key(sample.minter.private_pem)
    expired = mint_internal_token(key, me, audience="kitsample", now=time.time() - 3600)
    wrong_audience = mint_internal_token(key, me, audience="customers")
    foreign_key = load_private_key(generate_keypair()[0])
    foreign = mint_internal_token(foreign_key, me, audience="kitsample")
    good = sample.minter.token(me, "kitsample")
    header, _payload, signature = good.split(".")
    forged_claims = jwt.utils.base64url_encode(
        b'{"sub":"x","role":"admin","aud":"kitsample","iss":"fieldforce-gateway",'
        b'"iat":1,"exp":99999999999}'
    ).decode()
    tampered = f"{header}.{forged_claims}.{signature}"
    for token, why in [
        (expired, "expired"),
        (wrong_audience, "not valid"),
        (foreign, "not valid"),
        (tampered, "not valid"),
        ("junk", "not valid"),
    ]:
        resp = await sample.client.get("/widgets", headers={"X-Internal-Token": token})
        assert resp.status_code == 401, why
        assert why in resp.json()["detail"]
    assert (
        await sample.client.get("/widgets", headers={"X-Internal-Token": good})
    ).status_code == 200


async def test_invalid_input_gets_problem_documents_never_500(sample):
    h = sample.headers()
    bad = await sample.client.post("/widgets", json={"name": ""}, headers=h)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["loc"] == ["body", "name"]
    not_json = await sample.client.post(
        "/widgets", content=b"{", headers={**h, "content-type": "application/json"}
    )
    assert not_json.status_code == 422
    bad_id = await sample.client.get("/widgets/not-a-uuid", headers=h)
    assert bad_id.status_code == 422 and bad_id.json()["errors"][0]["loc"] == ["path", "widget_id"]
    missing = await sample.client.get(f"/widgets/{uuid.uuid4()}", headers=h)
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"
    unknown = await sample.client.get("/nowhere", headers=h)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    wrong_method = await sample.client.delete("/widgets", headers=h)
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == 405
    # Every method of every route at the path, not only the first route's.
    assert wrong_method.headers["allow"] == "GET, POST"
    wrong_method = await sample.client.put(f"/widgets/{uuid.uuid4()}", headers=h)
    assert wrong_method.headers["allow"] == "GET, PATCH"
    crash = await sample.client.post("/widgets/crash", headers=h)
    assert crash.status_code == 500
    assert crash.json()["type"] == "/problems/internal-error"
    assert "hunter2" not in crash.text and "Traceback" not in crash.text
    refused = await sample.client.post("/widgets/refused", headers=h)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "cannot be stored" in refused.json()["detail"] and "Traceback" not in refused.text


async def test_a_refused_request_leaves_no_half_written_change(sample):
    h = sample.headers()
    resp = await sample.client.post("/widgets", json={"name": "boom"}, headers=h)
    assert resp.status_code == 422
    db = sample.app.state.db
    async with db.session() as s:
        widgets = (await s.execute(sa.text("SELECT count(*) FROM kitsample.widgets"))).scalar()
        events = (await s.execute(sa.text("SELECT count(*) FROM kitsample.outbox"))).scalar()
    assert (widgets, events) == (0, 0)


async def test_if_match_guards_updates(sample):
    h = sample.headers()
    created = await sample.client.post("/widgets", json={"name": "v1"}, headers=h)
    assert created.headers["etag"] == '"1"'
    url = f"/widgets/{created.json()['id']}"
    missing = await sample.client.patch(url, json={"name": "v2"}, headers=h)
    assert missing.status_code == 428
    ok = await sample.client.patch(url, json={"name": "v2"}, headers={**h, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
    stale = await sample.client.patch(url, json={"name": "v3"}, headers={**h, "If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert (await sample.client.get(url, headers=h)).json()["name"] == "v2"


async def test_keyset_pages_walk_every_row_once(sample):
    me = make_principal()
    h = sample.headers(me)
    other = sample.headers()
    ids = {
        (await sample.client.post("/widgets", json={"name": f"w{i}"}, headers=h)).json()["id"]
        for i in range(7)
    }
    await sample.client.post("/widgets", json={"name": "not mine"}, headers=other)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await sample.client.get("/widgets", params=params, headers=h)).json()
        seen += [w["id"] for w in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 7 and set(seen) == ids
    assert (
        await sample.client.get("/widgets", params={"limit": 201}, headers=h)
    ).status_code == 422
    junk = await sample.client.get("/widgets", params={"cursor": "zzz"}, headers=h)
    assert junk.status_code == 422 and junk.json()["errors"][0]["loc"] == ["cursor"]
    assert len((await sample.client.get("/widgets", headers=h)).json()["items"]) == 7


async def test_request_id_is_echoed_or_created(sample):
    given = await sample.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await sample.client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    hostile = await sample.client.get("/healthz", headers={"X-Request-ID": "a b\tc"})
    assert hostile.headers["x-request-id"] != "a b\tc"


async def test_reads_run_without_a_transaction_and_writes_in_one(sample):
    """GET statements are sent alone (no BEGIN / COMMIT round trips); a POST's statements
    share the request's one transaction."""
    from sqlalchemy import event

    seen: list[tuple[str, bool]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        driver = conn.connection.driver_connection
        seen.append((statement.split()[0].upper(), driver.is_in_transaction()))

    me = make_principal()
    engine = sample.app.state.db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", record)
    try:
        created = await sample.client.post(
            "/widgets", json={"name": "tx"}, headers=sample.headers(me)
        )
        writes, seen[:] = list(seen), []
        got = await sample.client.get(
            f"/widgets/{created.json()['id']}", headers=sample.headers(me)
        )
    finally:
        event.remove(engine, "after_cursor_execute", record)
    assert created.status_code == 201 and got.status_code == 200
    assert writes and all(in_tx for _, in_tx in writes)
    assert seen == [("SELECT", False)]
    # A read's session is closed without a commit to make; its connection goes back to the
    # pool, after an answer as after a refusal.
    missing = await sample.client.get(f"/widgets/{uuid.uuid4()}", headers=sample.headers(me))
    assert missing.status_code == 404
    assert sample.app.state.db.engine.pool.checkedout() == 0


async def test_a_lone_statement_commits_alone_and_only_when_nothing_ran_before(sample):
    """`lone_statement`: first in its session, the statement is sent without a transaction
    and is committed when it returns; after another statement it joins the transaction."""
    db = sample.app.state.db

    def insert(subject: str) -> sa.Insert:
        return sa.insert(received).values(event_id=uuid.uuid4(), type="t", subject=subject)

    async def subjects() -> set[str]:
        async with db.session() as s:
            return set((await s.execute(sa.select(received.c.subject))).scalars())

    alone = db.new_session()
    try:
        assert await lone_statement(alone)
        await alone.execute(insert("alone"))
        driver = (await alone.connection()).sync_connection.connection.driver_connection
        assert not driver.is_in_transaction()
        assert await subjects() == {"alone"}  # committed before the session ends
    finally:
        await alone.close()
    joined = db.new_session()
    try:
        await joined.execute(sa.select(received.c.seq).limit(1))
        assert not await lone_statement(joined)
        await joined.execute(insert("joined"))
        assert await subjects() == {"alone"}  # not before the transaction commits
        await joined.rollback()
    finally:
        await joined.close()
    assert await subjects() == {"alone"}
    assert db.engine.pool.checkedout() == 0
