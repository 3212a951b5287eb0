"""Bulk import and the streamed export over real HTTP on a migrated database."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import asyncpg

from servicekit.db import to_asyncpg_dsn
from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"
IMPORT = f"{API}/import"


async def _events(customers, type_: str) -> list[dict[str, Any]]:
    reader = make_principal("integration", kind="key", scopes=["events:read"])
    resp = await customers.client.get(
        "/events", params={"limit": 1000}, headers=customers.headers(reader)
    )
    return [e for e in resp.json()["items"] if e["type"] == type_]


def _rows() -> list[Any]:  # one row is deliberately not an object
    return [
        {
            "external_ref": "E1",
            "source": "crm",
            "name": "Alpha",
            "region": "east",
            "level": "A",
            "phone": "13800000001",
            "tags": ["vip"],
        },
        {"external_ref": "E2", "source": "crm", "name": "", "region": "east"},  # empty name
        {
            "external_ref": "E3",
            "source": "crm",
            "name": "Gamma",
            "region": "west",
            "estimated_potential": "12.5",
        },
        {
            "external_ref": "E4",
            "source": "crm",
            "name": "Delta",
            "region": "east",
            "email": "not-an-email",
        },
        {
            "external_ref": "E5",
            "source": "crm",
            "name": "Epsilon",
            "region": "east",
            "colour": "red",
        },  # unknown field
        {"external_ref": "E1", "source": "crm", "name": "Alpha again", "region": "east"},
        "not an object",
        {"name": "No ref", "region": "north"},
    ]


async def test_import_mixed_rows_then_reimport(customers, org):
    h = customers.headers(org.manager_north)
    resp = await customers.client.post(IMPORT, json={"rows": _rows()}, headers=h)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    outcomes = [(r["row"], r["outcome"]) for r in body["results"]]
    assert outcomes == [
        (0, "created"),
        (1, "error"),
        (2, "created"),
        (3, "error"),
        (4, "error"),
        (5, "error"),
        (6, "error"),
        (7, "created"),
    ]
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (3, 0, 0, 5)
    errors = {r["row"]: r["error"] for r in body["results"] if r["outcome"] == "error"}
    assert "name" in errors[1] and "email" in errors[3] and "colour" in errors[4]
    assert "repeats row 0" in errors[5] and "object" in errors[6]
    created = {r["row"]: r["id"] for r in body["results"] if r["outcome"] == "created"}
    alpha = (await customers.client.get(f"{API}/{created[0]}", headers=h)).json()
    assert (alpha["code"], alpha["region"], alpha["level"], alpha["owner_id"]) == (
        "EAST-A-000001",
        "EAST",
        "A",
        None,
    )
    assert alpha["external_ref"] == "E1" and alpha["tags"] == ["vip"]
    assert len(await _events(customers, "customer.created")) == 3
    hist = (await customers.client.get(f"{API}/{created[0]}/history", headers=h)).json()
    assert hist["items"][0]["action"] == "created"

    # Re-import: same rows unchanged, a changed one updated, a new one created.
    again = [
        {
            "external_ref": "E1",
            "source": "crm",
            "name": "Alpha",
            "region": "east",
            "level": "A",
            "phone": "13800000001",
            "tags": ["vip"],
        },
        {
            "external_ref": "E3",
            "source": "crm",
            "name": "Gamma",
            "region": "west",
            "estimated_potential": "99.00",
            "level": "B",
        },
        {"external_ref": "E9", "source": "crm", "name": "Iota", "region": "west"},
    ]
    resp = await customers.client.post(IMPORT, json={"rows": again}, headers=h)
    body = resp.json()
    assert [(r["outcome"], r["id"]) for r in body["results"][:2]] == [
        ("unchanged", created[0]),
        ("updated", created[2]),
    ]
    assert body["results"][2]["outcome"] == "created"
    gamma = (await customers.client.get(f"{API}/{created[2]}", headers=h)).json()
    assert (gamma["estimated_potential"], gamma["level"], gamma["version"]) == ("99.00", "B", 2)
    (upd,) = await _events(customers, "customer.updated")
    assert set(upd["data"]["changed_fields"]) == {"estimated_potential", "level"}
    assert len(await _events(customers, "customer.level_changed")) == 1
    hist = (await customers.client.get(f"{API}/{created[2]}/history", headers=h)).json()
    assert hist["items"][0]["changes"]["level"] == {"old": "C", "new": "B"}


async def test_import_flags_duplicates_unless_confirmed(customers, org):
    h = customers.headers(org.admin)
    existing = await customers.create(org.admin, name="Acme", phone="13800000009")
    rows = [
        {"name": "Other name", "region": "west", "phone": "+86 138 0000 0009"},
        {"name": "Beta", "region": "west", "email": "b@example.com"},
        {"name": "Beta Co", "region": "west"},  # same as the row before (name + region)
    ]
    body = (await customers.client.post(IMPORT, json={"rows": rows}, headers=h)).json()
    assert [r["outcome"] for r in body["results"]] == ["error", "created", "error"]
    assert existing["code"] in body["results"][0]["error"]
    assert "row 1" in body["results"][2]["error"]
    confirmed = (
        await customers.client.post(
            IMPORT, json={"rows": [rows[0]]}, params={"confirm_duplicates": "true"}, headers=h
        )
    ).json()
    assert confirmed["created"] == 1


async def test_import_is_safe_to_retry_with_idempotency_key(customers, org):
    h = customers.headers(org.admin, **{"Idempotency-Key": "batch-1"})
    rows = [{"name": f"Row {i}", "region": "east", "external_ref": f"R{i}"} for i in range(3)]
    first = await customers.client.post(IMPORT, json={"rows": rows}, headers=h)
    second = await customers.client.post(IMPORT, json={"rows": rows}, headers=h)
    assert first.status_code == second.status_code == 200
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.json() == first.json()
    assert first.json()["created"] == 3
    assert len(await _events(customers, "customer.created")) == 3
    other = await customers.client.post(IMPORT, json={"rows": rows[:1]}, headers=h)
    assert other.status_code == 422


async def test_csv_import(customers, org):
    text = (
        "external_ref,source,name,region,level,phone,tags,estimated_potential\n"
        "C1,erp,Kappa,south,B,13900000001,a;b,1000.00\n"
        "C2,erp,,south,B,,,\n"
        "C3,erp,Lambda,south,Z,,,\n"
        "C4,erp,Mu,south,,,,\n"
    )
    resp = await customers.client.post(
        IMPORT,
        content=text.encode(),
        headers=customers.headers(org.admin, **{"Content-Type": "text/csv"}),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [r["outcome"] for r in body["results"]] == ["created", "error", "error", "created"]
    assert "level" in body["results"][2]["error"]
    kappa = (
        await customers.client.get(
            f"{API}/{body['results'][0]['id']}", headers=customers.headers(org.admin)
        )
    ).json()
    assert kappa["tags"] == ["a", "b"] and kappa["estimated_potential"] == "1000.00"
    mu = body["results"][3]["id"]
    assert (await customers.client.get(f"{API}/{mu}", headers=customers.headers(org.admin))).json()[
        "level"
    ] == "C"


async def test_import_limits_and_rights(customers, org):
    too_many = [{"name": f"N{i}", "region": "east"} for i in range(10_001)]
    resp = await customers.client.post(
        IMPORT, json={"rows": too_many}, headers=customers.headers(org.admin)
    )
    assert resp.status_code == 413
    rep = await customers.client.post(
        IMPORT, json={"rows": []}, headers=customers.headers(org.rep_a)
    )
    assert rep.status_code == 403
    key = make_principal("integration", kind="key", scopes=["customers:read"])
    assert (
        await customers.client.post(IMPORT, json={"rows": []}, headers=customers.headers(key))
    ).status_code == 403
    bad = await customers.client.post(
        IMPORT, content=b"{nope", headers=customers.headers(org.admin)
    )
    assert bad.status_code == 422
    # A manager names only owners of their teams (unknown users are refused per row).
    body = (
        await customers.client.post(
            IMPORT,
            json={"rows": [{"name": "Nu", "region": "east", "owner_id": str(uuid.uuid4())}]},
            headers=customers.headers(org.manager_north),
        )
    ).json()
    assert body["errors"] == 1 and "owner_id" in body["results"][0]["error"]


async def test_import_updates_only_what_the_caller_may_change(customers, org):
    conn = await asyncpg.connect(to_asyncpg_dsn(customers.database_url))
    try:
        # rep_south's customer, with an external_ref, as the sync of another team left it.
        c = await customers.create(org.rep_south, name="Xi", external_ref="S1", source="crm")
        assert await conn.fetchval(
            "SELECT owner_id FROM customers.customers WHERE id = $1", uuid.UUID(c["id"])
        ) == uuid.UUID(org.rep_south.sub)
    finally:
        await conn.close()
    body = (
        await customers.client.post(
            IMPORT,
            json={
                "rows": [{"name": "Xi 2", "region": "east", "external_ref": "S1", "source": "crm"}]
            },
            headers=customers.headers(org.manager_north),
        )
    ).json()
    assert body["results"][0]["outcome"] == "error"
    assert "outside what you may change" in body["results"][0]["error"]


async def test_export_streams_only_the_callers_scope(customers, org):
    mine = [
        await customers.create(org.rep_a, name=f"Mine {i}", address="=1+1", phone="+86 138")
        for i in range(3)
    ]
    pool = await customers.create(org.admin, name="Pool one")
    theirs = await customers.create(org.rep_b, name="Not mine")
    resp = await customers.client.get(
        f"{API}/export?format=csv", headers=customers.headers(org.rep_a)
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    ids = {r["id"] for r in rows}
    assert ids == {c["id"] for c in mine} | {pool["id"]}
    assert theirs["id"] not in ids
    # Every cell a spreadsheet could run is escaped (OWASP: a phone's "+" too; an import
    # reads the quote off again).
    assert {r["address"] for r in rows if r["name"].startswith("Mine")} == {"'=1+1"}
    assert {r["phone"] for r in rows if r["name"].startswith("Mine")} == {"'+86 138"}
    admin = await customers.client.get(f"{API}/export", headers=customers.headers(org.admin))
    assert len(list(csv.DictReader(io.StringIO(admin.text)))) == 5
    bad = await customers.client.get(
        f"{API}/export?format=xlsx", headers=customers.headers(org.admin)
    )
    assert bad.status_code == 422


async def test_export_is_reimportable(customers, org):
    await customers.create(
        org.admin,
        name="Omicron",
        external_ref="X1",
        source="crm",
        tags=["a", "b"],
        estimated_potential="10.00",
    )
    h = customers.headers(org.admin)
    exported = (await customers.client.get(f"{API}/export", headers=h)).text
    resp = await customers.client.post(
        IMPORT, content=exported.encode(), headers={**h, "Content-Type": "text/csv"}
    )
    body = resp.json()
    assert body["unchanged"] == 1 and body["errors"] == 0, body


async def test_concurrent_imports_of_the_same_rows_create_each_once(customers, org):
    import asyncio

    rows = [{"name": f"Same {i}", "region": "east", "external_ref": f"C{i}"} for i in range(50)]
    h = customers.headers(org.admin)
    answers = await asyncio.gather(
        *[customers.client.post(IMPORT, json={"rows": rows}, headers=h) for _ in range(3)]
    )
    assert {a.status_code for a in answers} <= {200, 409}, [a.text[:200] for a in answers]
    created = sum(a.json()["created"] for a in answers if a.status_code == 200)
    assert created == 50
    conn = await asyncpg.connect(to_asyncpg_dsn(customers.database_url))
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM customers.customers WHERE external_ref LIKE 'C%'"
        )
    finally:
        await conn.close()
    assert count == 50
    # Whoever got 409 retries and finds every row there.
    retry = (await customers.client.post(IMPORT, json={"rows": rows}, headers=h)).json()
    assert retry["unchanged"] == 50 and retry["created"] == 0


async def test_a_large_import_gets_ordered_ids_gap_free_codes_history_and_events(customers, org):
    """Past the COPY threshold: ids are time-ordered (UUIDv7, ascending in row order, so the
    batch appends to the primary-key index), codes continue gap-free, and every created row has
    its history entry and its event, in row order in the feed."""
    first = await customers.create(org.admin, region="SOUTH")
    rows = [
        {"name": f"Big {i}", "region": "south", "external_ref": f"BIG{i}", "source": "erp"}
        for i in range(150)
    ]
    h = customers.headers(org.admin)
    body = (await customers.client.post(IMPORT, json={"rows": rows}, headers=h)).json()
    assert body["created"] == 150 and body["errors"] == 0
    ids = [uuid.UUID(r["id"]) for r in body["results"]]
    assert all(i.version == 7 for i in ids) and ids == sorted(ids)
    conn = await asyncpg.connect(to_asyncpg_dsn(customers.database_url))
    try:
        codes = await conn.fetch(
            "SELECT id, code FROM customers.customers WHERE source = 'erp' ORDER BY code"
        )
        history = await conn.fetchval(
            "SELECT count(*) FROM customers.customer_history "
            "WHERE customer_id = ANY($1::uuid[]) AND action = 'created'",
            ids,
        )
    finally:
        await conn.close()
    assert first["code"] == "SOUTH-C-000001"
    assert [r["code"] for r in codes] == [f"SOUTH-C-{n:06}" for n in range(2, 152)]
    assert [r["id"] for r in codes] == ids, "codes are handed out in row order"
    assert history == 150
    created = [e for e in await customers.events({"customer.created"}) if e.data["source"] == "erp"]
    assert [e.subject for e in created] == [str(i) for i in ids]
    assert [e.data["code"] for e in created] == [r["code"] for r in codes]
    event_ids = [e.id for e in created]
    assert event_ids == sorted(event_ids)
