"""The customer archive through the real gateway: sign-in, the forwarded principal, record
access, the pool, and identity's feed driving the deactivated-user handover."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from conftest import login, organisation, wait_for
from conftest import ok as _ok

pytestmark = pytest.mark.e2e
API = "/api/v1/customers"
PASSWORD = "correct-horse-" + uuid.uuid4().hex[:8]


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    return await login(client, email, password)


async def test_records_and_access_through_the_gateway(gw, admin_login):
    org = await organisation(gw, admin_login, PASSWORD)
    h, users, teams = org["h"], org["users"], org["teams"]
    created = await gw.post(
        API, json={"name": f"E2E {uuid.uuid4().hex[:6]}", "region": "east"}, headers=h["rep_a"]
    )
    c = await _ok(created, 201)
    assert c["owner_id"] == users["rep_a"]["id"] and c["team_id"] == teams["north"]["id"]
    assert created.headers["etag"] == '"1"' and c["code"].startswith("EAST-")

    url = f"{API}/{c['id']}"
    for who, status in (
        ("rep_a", 200),
        ("manager", 200),
        ("rep_b", 404),
        ("rep_sub", 404),
        ("other_manager", 404),
    ):
        for path in (url, f"{url}/history", f"{url}/ownership", f"{url}/card"):
            assert (await gw.get(path, headers=h[who])).status_code == status, (who, path)

    stale = await gw.patch(url, json={"name": "x"}, headers={**h["rep_a"], "If-Match": '"9"'})
    assert stale.status_code == 412
    assert (await gw.patch(url, json={"name": "x"}, headers=h["rep_a"])).status_code == 428

    # The rep's level change waits for the manager who leads the team.
    req = await _ok(
        await gw.patch(url, json={"level": "A"}, headers={**h["rep_a"], "If-Match": '"1"'}), 202
    )
    assert (
        await gw.post(
            f"{API}/change-requests/{req['id']}/approve", json={}, headers=h["other_manager"]
        )
    ).status_code == 404
    await _ok(
        await gw.post(
            f"{API}/change-requests/{req['id']}/approve",
            json={"comment": "ok"},
            headers=h["manager"],
        )
    )
    assert (await _ok(await gw.get(url, headers=h["rep_a"])))["level"] == "A"

    # The manager sees the sub-team's customers too.
    sub_c = await _ok(
        await gw.post(
            API,
            json={"name": f"Sub {uuid.uuid4().hex[:6]}", "region": "WEST"},
            headers=h["rep_sub"],
        ),
        201,
    )
    listed = await _ok(
        await gw.get(API, params={"team_id": teams["sub"]["id"]}, headers=h["manager"])
    )
    assert [x["id"] for x in listed["items"]] == [sub_c["id"]]

    # Release, then two reps race for it: one wins; for the other it has left the pool and is
    # no longer theirs to see (404).
    await _ok(await gw.post(f"{url}/release", json={"reason": "lost contact"}, headers=h["rep_a"]))
    results = await asyncio.gather(
        gw.post(f"{url}/claim", headers=h["rep_b"]), gw.post(f"{url}/claim", headers=h["rep_sub"])
    )
    assert sorted(r.status_code for r in results) == [200, 404]


async def test_deactivating_a_rep_hands_their_customers_over_via_identitys_feed(gw, admin_login):
    org = await organisation(gw, admin_login, PASSWORD)
    h, users = org["h"], org["users"]
    mine = [
        await _ok(
            await gw.post(
                API,
                json={"name": f"Leaving {i} {uuid.uuid4().hex[:6]}", "region": "NORTH"},
                headers=h["rep_b"],
            ),
            201,
        )
        for i in range(2)
    ]
    await _ok(
        await gw.patch(
            f"/api/v1/users/{users['rep_b']['id']}", json={"active": False}, headers=org["admin"]
        )
    )

    async def in_pool() -> bool:
        resp = await gw.get(f"{API}/{mine[0]['id']}", headers=org["admin"])
        return resp.status_code == 200 and resp.json()["owner_id"] is None

    await wait_for(in_pool)
    for c in mine:
        ledger = await _ok(await gw.get(f"{API}/{c['id']}/ownership", headers=h["manager"]))
        assert [(p["owner_id"], p["kind"]) for p in ledger] == [
            (users["rep_b"]["id"], "created"),
            (None, "handover"),
        ]

    # An integration key with events:read follows the customers feed through the gateway.
    key = await _ok(
        await gw.post(
            "/api/v1/api-keys",
            json={"name": f"feed {uuid.uuid4().hex[:6]}", "scopes": ["events:read"]},
            headers=org["admin"],
        ),
        201,
    )
    kh = {"X-API-Key": key["key"]}

    async def handover_events() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after = None
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            page = await _ok(await gw.get("/api/v1/events/customers", params=params, headers=kh))
            out += page["items"]
            after = page["next_cursor"]
            if not page["has_more"]:
                break
        ids = {c["id"] for c in mine}
        return [e for e in out if e["type"] == "customer.owner_changed" and e["subject"] in ids]

    events = await wait_for(handover_events)
    assert len(events) == 2
    assert all(e["data"]["old_owner_id"] == users["rep_b"]["id"] for e in events)
    assert all(e["data"]["in_pool"] and e["data"]["kind"] == "handover" for e in events)
    # Without a customers scope the key gets 403 from the service.
    assert (await gw.get(API, headers=kh)).status_code == 403


async def test_the_rest_of_the_archive_through_the_gateway(gw, admin_login):
    """Products, sku order lines, cancel after reverse, the orders list, a lost customer won
    back, the handover report, duplicate pairs and a historical create: each through the
    gateway, each refusing the caller it must refuse, and the corrections in the feed."""
    org = await organisation(gw, admin_login, PASSWORD)
    h, users, admin = org["h"], org["users"], org["admin"]
    tag = uuid.uuid4().hex[:6].upper()
    sku = f"E2E-{tag}"
    product = {"sku": sku, "name": "Paper A4", "category": "stock", "unit": "box"}
    assert (await gw.post("/api/v1/products", json=product, headers=h["rep_a"])).status_code == 403
    await _ok(await gw.post("/api/v1/products", json=product, headers=admin), 201)
    listed = await _ok(await gw.get("/api/v1/products", params={"limit": 200}, headers=h["rep_a"]))
    assert sku in [p["sku"] for p in listed["items"]]

    c = await _ok(
        await gw.post(API, json={"name": f"Rest {tag}", "region": "EAST"}, headers=h["rep_a"]),
        201,
    )
    orders = f"{API}/{c['id']}/orders"
    line = {"sku": sku, "quantity": "2", "unit_price": "50.00"}
    unknown = await gw.post(
        orders,
        json={"order_date": "2026-01-05", "amount": "100.00", "lines": [{**line, "sku": "NOPE"}]},
        headers=h["rep_a"],
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"][-1] == "sku"
    order = await _ok(
        await gw.post(
            orders,
            json={"order_date": "2026-01-05", "amount": "100.00", "lines": [line]},
            headers=h["rep_a"],
        ),
        201,
    )
    assert order["lines"][0]["product"] == "Paper A4"
    payment = await _ok(
        await gw.post(
            f"/api/v1/orders/{order['id']}/payments",
            json={"amount": "40.00", "received_on": "2026-01-06"},
            headers=h["rep_a"],
        ),
        201,
    )
    o, p = f"/api/v1/orders/{order['id']}", f"/api/v1/payments/{payment['id']}"
    for path in (o, p):
        assert (await gw.get(path, headers=h["rep_b"])).status_code == 404
    assert (await gw.get(o, headers=h["manager"])).status_code == 200
    mine = await _ok(
        await gw.get("/api/v1/orders", params={"customer_id": c["id"]}, headers=h["rep_a"])
    )
    assert [(x["id"], x["outstanding_amount"]) for x in mine["items"]] == [(order["id"], "60.00")]
    theirs = await _ok(await gw.get("/api/v1/orders", headers=h["rep_b"]))
    assert order["id"] not in [x["id"] for x in theirs["items"]]

    refused = await gw.post(f"{o}/cancel", json={"reason": "typo"}, headers=h["rep_a"])
    assert refused.status_code == 409
    await _ok(await gw.post(f"{p}/reverse", json={"reason": "bounced"}, headers=h["rep_a"]))
    await _ok(await gw.post(f"{o}/cancel", json={"reason": "typo"}, headers=h["rep_a"]))

    # The manager declares it lost; a new order wins it back.
    url = f"{API}/{c['id']}"
    lost = {"reason": "price", "competitor": "Rival Co"}
    assert (await gw.post(f"{url}/lost", json=lost, headers=h["rep_a"])).status_code == 403
    assert (await _ok(await gw.post(f"{url}/lost", json=lost, headers=h["manager"])))[
        "status"
    ] == "lost"
    by_status = await _ok(await gw.get(API, params={"status": "lost"}, headers=h["manager"]))
    assert c["id"] in [x["id"] for x in by_status["items"]]
    today = (await _ok(await gw.get(url, headers=h["rep_a"])))["status_since"][:10]
    await _ok(
        await gw.post(orders, json={"order_date": today, "amount": "30.00"}, headers=h["rep_a"]),
        201,
    )
    assert (await _ok(await gw.get(url, headers=h["rep_a"])))["status"] == "active"

    # The handover report: a rep reads their own, the manager their team's.
    params = {"owner_id": users["rep_a"]["id"]}
    report = f"{API}/handovers"
    assert (await gw.get(report, params=params, headers=h["rep_b"])).status_code == 403
    held = await _ok(await gw.get(report, params=params, headers=h["manager"]))
    assert c["id"] in [x["customer_id"] for x in held["items"]]
    assert (await gw.get(f"{API}/duplicates", headers=h["rep_a"])).status_code == 200

    # A historical create: admins only.
    past = {"name": f"Old {tag}", "region": "EAST", "created_at": "2019-05-01T08:00:00Z"}
    assert (await gw.post(API, json=past, headers=h["rep_a"])).status_code == 403
    old = await _ok(await gw.post(API, json=past, headers=admin), 201)
    assert old["created_at"].startswith("2019-05-01")

    # The feed has the corrections and the lifecycle, money as decimal strings.
    key = await _ok(
        await gw.post(
            "/api/v1/api-keys",
            json={"name": f"feed {tag}", "scopes": ["events:read"]},
            headers=admin,
        ),
        201,
    )
    kh = {"X-API-Key": key["key"]}
    wanted = {"order.cancelled", "payment.reversed", "customer.lost", "customer.reactivated"}

    async def corrections() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        after = None
        while True:
            q = {"limit": "1000", **({"after": after} if after else {})}
            page = await _ok(await gw.get("/api/v1/events/customers", params=q, headers=kh))
            for e in page["items"]:
                if e["type"] in wanted and e["data"].get("customer_id", e["subject"]) == c["id"]:
                    out[e["type"]] = e["data"]
            after = page["next_cursor"]
            if not page["has_more"]:
                break
        return out if set(out) == wanted else {}

    got = await wait_for(corrections)
    assert (got["payment.reversed"]["amount"], got["payment.reversed"]["reason"]) == (
        "40.00",
        "bounced",
    )
    assert (got["order.cancelled"]["amount"], got["order.cancelled"]["order_date"]) == (
        "100.00",
        "2026-01-05",
    )
    assert got["customer.lost"]["competitor"] == "Rival Co"
    assert got["customer.reactivated"]["from_state"] == "lost"
