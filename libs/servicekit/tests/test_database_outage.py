"""While PostgreSQL is away an app answers 503 problem documents with Retry-After, never 500,
and serves again by itself once PostgreSQL is back (on the same port)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx

from servicekit.devdb import throwaway_postgres
from servicekit.migrations import upgrade_head
from servicekit.testing.sample.app import MIGRATIONS, SCHEMA, build, settings_for
from servicekit.testing.servers import serve
from servicekit.testing.tokens import TokenMinter, make_principal


async def _create_database(admin_url: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute("CREATE DATABASE outage")
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/outage"


def _unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert int(r.headers["retry-after"]) > 0
    body = r.json()
    assert body["status"] == 503 and "database" in body["detail"]


async def test_an_app_answers_503_with_retry_after_while_the_database_is_away(
    minter: TokenMinter,
) -> None:
    with throwaway_postgres() as server:
        url = await _create_database(server.url)
        await asyncio.to_thread(upgrade_head, MIGRATIONS, url, SCHEMA)
        app = build(settings_for(url, minter.public_pem))
        me = minter.headers(make_principal(), "kitsample")
        async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            created = await client.post("/widgets", json={"name": "before"}, headers=me)
            assert created.status_code == 201, created.text
            widget = f"/widgets/{created.json()['id']}"
            assert (await client.get(widget, headers=me)).status_code == 200

            await asyncio.to_thread(server.stop)
            # A write and a read (the engine's pool, whose connections are not pinged before
            # use: the first statement on a dead one fails), and readiness (asyncpg's pool).
            for _ in range(2):
                _unavailable(await client.post("/widgets", json={"name": "x"}, headers=me))
                _unavailable(await client.get(widget, headers=me))
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "retry-after" in ready.headers

            await asyncio.to_thread(server.start)
            deadline = time.monotonic() + 30
            while True:
                write = await client.post("/widgets", json={"name": "after"}, headers=me)
                read = await client.get(widget, headers=me)
                if write.status_code == 201 and read.status_code == 200:
                    break
                # Until each pool has noticed the new server: still 503s, never 500s.
                for r in (write, read):
                    if r.status_code != 201 and r.status_code != 200:
                        _unavailable(r)
                assert time.monotonic() < deadline, (write.text, read.text)
                await asyncio.sleep(0.1)
            assert (await client.get("/readyz")).status_code == 200
