"""Large answers through the real gateway, each app its own process (as `make run` serves them).

Found under load: after an answer larger than ~256 KiB (an event feed page with limit=1000, an
export) had been read by an ordinary client, the next call forwarded to the same service over
that pooled connection hung until the gateway's upstream timeout and answered 504, although the
service had run it. In-process tests rarely show it; with the apps in their own processes (and
uvloop reading whole socket buffers at once) it came in most rounds.
"""

from __future__ import annotations

import json
import time
import uuid

import asyncpg
import httpx
import pytest

from fieldforce.stack import Stack
from servicekit.db import to_asyncpg_dsn

pytestmark = pytest.mark.e2e

PAGE = "/api/v1/events/visits?limit=1000"


async def _pad_visits_feed(database_url: str, events: int) -> None:
    """`events` events of about 1.2 KiB each in the visits outbox (a type nothing consumes)."""
    conn = await asyncpg.connect(to_asyncpg_dsn(database_url))
    try:
        await conn.executemany(
            "INSERT INTO visits.outbox (id, type, source, subject, data) "
            "VALUES ($1, 'test.padding_written', 'visits', $2, $3::json)",
            [
                (uuid.uuid4(), str(uuid.uuid4()), json.dumps({"n": i, "pad": "p" * 1200}))
                for i in range(events)
            ],
        )
    finally:
        await conn.close()


async def test_calls_after_a_large_answer_answer_at_once(stack: Stack) -> None:
    await _pad_visits_feed(stack.database_url, 1000)
    env = stack.env
    async with httpx.AsyncClient(base_url=stack.running["gateway"].url, timeout=20) as c:
        r = await c.post(
            "/api/v1/auth/token",
            data={
                "username": env["BOOTSTRAP_ADMIN_EMAIL"],
                "password": env["BOOTSTRAP_ADMIN_PASSWORD"],
            },
        )
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for _ in range(6):
            page = await c.get(PAGE, headers=admin)
            assert page.status_code == 200, page.text
            assert len(page.content) > 1024 * 1024
            for _ in range(2):
                started = time.monotonic()
                # Well below the gateway's 30 s upstream timeout: a hang shows as a timeout.
                small = await c.get("/api/v1/events/visits?limit=1", headers=admin, timeout=5)
                assert small.status_code == 200, small.text
                assert time.monotonic() - started < 5
