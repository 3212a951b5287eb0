"""Data quality, duplicates and merge over real HTTP on a migrated database."""

from __future__ import annotations

from typing import Any

import asyncpg

from servicekit.db import to_asyncpg_dsn
from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"
ORDERS = "/api/v1/orders"

COMPLETE = {
    "industry": "Printing",
    "address": "1 Bund Road",
    "phone": "021 5555 0001",
    "email": "buyer@example.com",
    "source": "fair",
    "tags": ["key"],
    "estimated_potential": "100000.00",
}


async def _events(customers, type_: str) -> list[dict[str, Any]]:
    reader = make_principal("integration", kind="key", scopes=["events:read"])
    resp = await customers.client.get(
        "/events", params={"limit": 1000}, headers=customers.headers(reader)
    )
    return [e for e in resp.json()["items"] if e["type"] == type_]


async def test_data_quality_lists_incomplete_important_customers(customers, org):
    h = customers.headers(org.rep_a)
    full = await customers.create(org.rep_a, name="Full A", level="A", **COMPLETE)
    await customers.client.post(f"{API}/{full['id']}/contacts", json={"name": "Boss"}, headers=h)
    thin = await customers.create(org.rep_a, name="Thin A", level="A", phone="13800000001")
    await customers.create(org.rep_a, name="Thin C", level="C")
    others = await customers.create(org.rep_b, name="Thin of B", level="A")

    resp = await customers.client.get(f"{API}/data-quality?level=A&below=80", headers=h)
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    # Only A-level, only below 80, only what rep A may see.
    assert [i["id"] for i in items] == [thin["id"]]
    dq = items[0]["data_quality"]
    # name 15 + region 10 + phone 15 + fresh 10
    assert dq["score"] == 50
    assert dq["missing_required"] == ["address", "industry"]
    assert dq["missing_recommended"] == [
        "email",
        "estimated_potential",
        "contacts",
        "source",
        "tags",
    ]
    assert dq["stale"] is False

    manager = customers.headers(org.manager_north)
    seen = (await customers.client.get(f"{API}/data-quality?level=A", headers=manager)).json()
    assert {i["id"] for i in seen["items"]} == {thin["id"], others["id"]}
    assert seen["items"][0]["data_quality"]["score"] <= seen["items"][1]["data_quality"]["score"]
    south = customers.headers(org.manager_south)
    assert (await customers.client.get(f"{API}/data-quality", headers=south)).json()["items"] == []

    # The full file carries the same score, and a complete record scores 100.
    file = (await customers.client.get(f"{API}/{full['id']}", headers=h)).json()
    assert file["sections"]["data_quality"]["score"] == 100
    everyone = (await customers.client.get(f"{API}/data-quality?below=101", headers=manager)).json()
    assert {i["name"] for i in everyone["items"]} == {"Full A", "Thin A", "Thin C", "Thin of B"}


async def test_stale_records_lose_freshness_points(customers, org):
    c = await customers.create(org.rep_a, name="Old", level="A", **COMPLETE)
    conn = await asyncpg.connect(to_asyncpg_dsn(customers.database_url))
    try:
        await conn.execute(
            "UPDATE customers.customers SET updated_at = now() - interval '200 days' WHERE id = $1",
            __import__("uuid").UUID(c["id"]),
        )
    finally:
        await conn.close()
    resp = await customers.client.get(
        f"{API}/data-quality?level=A&below=100", headers=customers.headers(org.rep_a)
    )
    (item,) = resp.json()["items"]
    # 90 for the fields (no contact: -6), 5 of 10 freshness points.
    assert item["data_quality"]["score"] == 89
    assert item["data_quality"]["stale"] is True


async def test_data_quality_pages(customers, org):
    for i in range(5):
        await customers.create(org.rep_a, name=f"Thin {i}", level="A", phone=f"1380000000{i}")
    h = customers.headers(org.rep_a)
    first = (await customers.client.get(f"{API}/data-quality?limit=2", headers=h)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    names = [i["name"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await customers.client.get(
                f"{API}/data-quality", params={"limit": 2, "cursor": cursor}, headers=h
            )
        ).json()
        names += [i["name"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(names) == [f"Thin {i}" for i in range(5)]


async def test_duplicate_on_create_answers_409_until_confirmed(customers, org):
    h = customers.headers(org.rep_a)
    first = await customers.create(
        org.rep_a, name="Acme Trading Co., Ltd.", phone="+86 138-0013-8000", region="EAST"
    )
    body = {"name": "ACME trading", "region": "east", "email": "x@example.com"}
    resp = await customers.client.post(API, json=body, headers=h)
    assert resp.status_code == 409, resp.text
    (cand,) = resp.json()["candidates"]
    assert cand["id"] == first["id"] and cand["matched_on"] == ["name"]
    by_phone = await customers.client.post(
        API, json={"name": "Other", "region": "WEST", "phone": "13800138000"}, headers=h
    )
    assert by_phone.status_code == 409
    assert by_phone.json()["candidates"][0]["matched_on"] == ["phone"]
    confirmed = await customers.client.post(
        API, json=body, params={"confirm_duplicates": "true"}, headers=h
    )
    assert confirmed.status_code == 201, confirmed.text
    unrelated = await customers.client.post(
        API, json={"name": "Acme Trading", "region": "SOUTH"}, headers=h
    )
    assert unrelated.status_code == 201, unrelated.text


async def test_merge_moves_contacts_orders_and_keeps_history(customers, org):
    h = customers.headers(org.rep_a)
    survivor = await customers.create(org.rep_a, name="Acme", phone="13800000001")
    duplicate = await customers.create(
        org.rep_a, name="ACME Ltd", email="acme@example.com", address="9 Road", tags=["fair"]
    )
    await customers.client.post(
        f"{API}/{survivor['id']}/contacts", json={"name": "S", "is_primary": True}, headers=h
    )
    await customers.client.post(
        f"{API}/{duplicate['id']}/contacts", json={"name": "D", "is_primary": True}, headers=h
    )
    order = (
        await customers.client.post(
            f"{API}/{duplicate['id']}/orders",
            json={"order_date": "2026-01-05", "amount": "70.00"},
            headers=h,
        )
    ).json()
    await customers.client.post(
        f"{ORDERS}/{order['id']}/payments",
        json={"amount": "20.00", "received_on": "2026-01-06"},
        headers=h,
    )

    resp = await customers.client.post(
        f"{API}/{survivor['id']}/merge", json={"duplicate_id": duplicate["id"]}, headers=h
    )
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert (result["contacts_moved"], result["orders_moved"], result["payments_moved"]) == (1, 1, 1)
    assert result["filled_fields"] == ["address", "email", "tags"]

    contacts = (await customers.client.get(f"{API}/{survivor['id']}/contacts", headers=h)).json()
    assert sorted(c["name"] for c in contacts) == ["D", "S"]
    assert [c["name"] for c in contacts if c["is_primary"]] == ["S"]
    orders = (await customers.client.get(f"{API}/{survivor['id']}/orders", headers=h)).json()
    assert [o["id"] for o in orders["items"]] == [order["id"]]
    assert orders["items"][0]["paid_amount"] == "20.00"

    file = (await customers.client.get(f"{API}/{survivor['id']}", headers=h)).json()
    assert (file["email"], file["address"], file["tags"]) == (
        "acme@example.com",
        "9 Road",
        ["fair"],
    )
    dup = (await customers.client.get(f"{API}/{duplicate['id']}", headers=h)).json()
    assert dup["status"] == "merged" and dup["merged_into_id"] == survivor["id"]

    survivor_history = (
        await customers.client.get(f"{API}/{survivor['id']}/history", headers=h)
    ).json()["items"]
    assert survivor_history[0]["action"] == "merged"
    assert survivor_history[0]["changes"]["merged_from"]["new"] == duplicate["code"]
    dup_history = (
        await customers.client.get(f"{API}/{duplicate['id']}/history", headers=h)
    ).json()["items"]
    # The duplicate keeps its own history, with the merge on top.
    assert [e["action"] for e in dup_history] == ["merged", "created"]

    (event,) = await _events(customers, "customer.merged")
    assert event["data"]["merged_into_id"] == survivor["id"]
    assert event["data"]["orders_moved"] == 1

    again = await customers.client.post(
        f"{API}/{survivor['id']}/merge", json={"duplicate_id": duplicate["id"]}, headers=h
    )
    assert again.status_code == 409
    # New orders for the merged one are refused, naming the survivor.
    late = await customers.client.post(
        f"{API}/{duplicate['id']}/orders",
        json={"order_date": "2026-01-07", "amount": "1.00"},
        headers=h,
    )
    assert late.status_code == 409 and late.json()["merged_into_id"] == survivor["id"]


async def test_merge_needs_both_customers(customers, org):
    mine = await customers.create(org.rep_a)
    theirs = await customers.create(org.rep_b)
    h = customers.headers(org.rep_a)
    resp = await customers.client.post(
        f"{API}/{mine['id']}/merge", json={"duplicate_id": theirs["id"]}, headers=h
    )
    assert resp.status_code == 404
    itself = await customers.client.post(
        f"{API}/{mine['id']}/merge", json={"duplicate_id": mine["id"]}, headers=h
    )
    assert itself.status_code == 422
    key = make_principal("integration", kind="key", scopes=["customers:write"])
    by_key = await customers.client.post(
        f"{API}/{mine['id']}/merge",
        json={"duplicate_id": theirs["id"]},
        headers=customers.headers(key),
    )
    assert by_key.status_code == 403
