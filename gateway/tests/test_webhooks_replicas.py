"""Delivery state lives in PostgreSQL: a delivery worker killed mid-attempt loses nothing and
resends nothing that was acknowledged, and two gateway replicas deliver each event once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any, cast

import httpx

from servicekit.testing.harness import wait_until
from servicekit.testing.tokens import TokenMinter

from .conftest import Api
from .webhooks_kit import (
    Hooks,
    as_admin,
    gateway_process,
    receiving,
    webhook_gateway,
    webhook_settings,
)

# Short leases: a killed worker's endpoint is taken over within seconds.
FAST = {"webhook_lease_seconds": 2.0, "webhook_poll_seconds": 0.5}


async def _all_delivered(hooks: Hooks, webhook_id: str, count: int) -> list[dict[str, Any]]:
    async def done() -> list[dict[str, Any]] | None:
        items = await hooks.deliveries(webhook_id)
        ok = len(items) == count and all(d["state"] == "delivered" for d in items)
        return items if ok else None

    found: list[dict[str, Any]] = await wait_until(done, within=30)
    return found


async def test_a_worker_killed_mid_delivery_loses_nothing_and_resends_nothing_acknowledged(
    fresh_db: str, minter: TokenMinter, tmp_path: Path
) -> None:
    async with receiving() as receiver:
        settings = webhook_settings(fresh_db, minter, **FAST)
        async with (
            gateway_process(settings, tmp_path) as gateway,
            httpx.AsyncClient(base_url=gateway.url, timeout=30) as client,
        ):
            hooks = await as_admin(Api(client, cast(Any, None)))
            hook = await hooks.create(receiver.url, ["user.created"])
            await hooks.user()
            [acknowledged] = await receiver.until(1)
            await _all_delivered(hooks, hook["id"], 1)
            # The next request is held unanswered: the worker is mid-attempt when it dies.
            receiver.gate = asyncio.Event()
            await hooks.user()
            [_, in_flight] = await receiver.until(2)
            await gateway.kill()
        receiver.gate.set()

        # Another gateway takes the endpoint over once the dead worker's lease ran out.
        async with webhook_gateway(webhook_settings(fresh_db, minter, **FAST)) as api:
            hooks = await as_admin(api)
            await hooks.user()  # an event after the crash, behind the unfinished one
            log = await _all_delivered(hooks, hook["id"], 3)
    ids = [r.id for r in receiver.received]
    # The acknowledged event was not sent again; the one in flight was (same Webhook-Id).
    assert ids[:3] == [acknowledged.id, in_flight.id, in_flight.id]
    assert len(ids) == 4 and Counter(ids)[acknowledged.id] == 1
    assert [d["event_id"] for d in reversed(log)] == [acknowledged.id, in_flight.id, ids[3]]
    # The killed attempt left no trace but the lease: one recorded attempt each.
    assert [d["attempt_count"] for d in log] == [1, 1, 1]


async def test_two_replicas_deliver_each_event_once(fresh_db: str, minter: TokenMinter) -> None:
    async with (
        receiving() as receiver,
        webhook_gateway(webhook_settings(fresh_db, minter, **FAST)) as first,
        webhook_gateway(webhook_settings(fresh_db, minter, **FAST)) as second,
    ):
        a, b = await as_admin(first), await as_admin(second)
        hooks = [await a.create(f"{receiver.url}/{n}", ["user.created"]) for n in range(3)]
        users = [await (a if n % 2 else b).user() for n in range(12)]
        for hook in hooks:
            await _all_delivered(b, hook["id"], len(users))
        # Whatever is still on its way has arrived: nothing more, nothing twice.
        await asyncio.sleep(1.0)
    by_path: dict[str, list[str]] = {}
    for r in receiver.received:
        by_path.setdefault(r.path, []).append(r.json()["subject"])
    # Each endpoint got every event once, in the order the users were created.
    assert by_path == {f"/{n}": [u["id"] for u in users] for n in range(3)}
