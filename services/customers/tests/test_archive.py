"""Records: create, codes, list/search, full file and card, PATCH with If-Match, history, as-of,
settings, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date, datetime
from decimal import Decimal

from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"


async def test_create_assigns_code_owner_team_and_etag(customers, org):
    resp = await customers.client.post(
        API,
        json={
            "name": "Acme Trading",
            "region": "east",
            "level": "A",
            "phone": "+86 138-0013-8000",
            "email": "Buyer@Acme.example",
            "tags": ["vip", "vip", "export"],
            "estimated_potential": "1200000.50",
        },
        headers=customers.headers(org.rep_a),
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["code"] == "EAST-A-000001"
    assert body["region"] == "EAST"
    assert body["owner_id"] == org.rep_a.sub
    assert body["team_id"] == org.team_north
    assert body["version"] == 1
    assert body["tags"] == ["vip", "export"]
    assert body["estimated_potential"] == "1200000.50"
    assert resp.headers["etag"] == '"1"'
    assert resp.headers["location"] == f"{API}/{body['id']}"

    second = await customers.create(org.rep_b, region="EAST")
    other_region = await customers.create(org.rep_b, region="WEST")
    assert second["code"] == "EAST-C-000001"
    assert other_region["code"] == "WEST-C-000001"
    # Time-ordered ids (UUIDv7): new rows append to the primary-key index.
    ids = [uuid.UUID(c["id"]) for c in (body, second, other_region)]
    assert all(i.version == 7 for i in ids) and ids == sorted(ids)


async def test_manager_leaves_it_in_the_pool_or_names_an_owner_of_their_teams(customers, org):
    pooled = await customers.create(org.manager_north)
    assert pooled["owner_id"] is None and pooled["team_id"] is None

    named = await customers.create(org.manager_north, owner_id=org.rep_sub.sub)
    assert named["owner_id"] == org.rep_sub.sub
    assert named["team_id"] == org.team_north_sub

    for owner, msg in [
        (org.rep_south.sub, "the user is not in one of your teams"),
        (str(uuid.uuid4()), "unknown user"),
    ]:
        resp = await customers.client.post(
            API,
            json={"name": "X", "region": "EAST", "owner_id": owner},
            headers=customers.headers(org.manager_north),
        )
        assert resp.status_code == 422
        assert resp.json()["errors"] == [{"loc": ["owner_id"], "msg": msg}]

    resp = await customers.client.post(
        API,
        json={"name": "X", "region": "EAST", "owner_id": org.rep_b.sub},
        headers=customers.headers(org.rep_a),
    )
    assert resp.status_code == 422


async def test_concurrent_creates_get_distinct_gap_free_codes(customers, org):
    reps = [org.rep_a, org.rep_b, org.rep_sub, org.rep_south]

    async def make(i: int) -> str:
        resp = await customers.client.post(
            API,
            json={"name": f"Parallel {i}", "region": "NORTH" if i % 3 else "SOUTH"},
            params={"confirm_duplicates": "true"},
            headers=customers.headers(reps[i % 4]),
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["code"])

    codes = await asyncio.gather(*[make(i) for i in range(30)])
    assert len(set(codes)) == 30
    north = sorted(c for c in codes if c.startswith("NORTH-C-"))
    south = sorted(c for c in codes if c.startswith("SOUTH-C-"))
    assert north == [f"NORTH-C-{n:06}" for n in range(1, len(north) + 1)]
    assert south == [f"SOUTH-C-{n:06}" for n in range(1, len(south) + 1)]


async def test_a_rolled_back_create_leaves_no_gap_and_codes_are_never_reused(customers, org):
    first = await customers.create(org.rep_a, name="Gap Test One")
    assert first["code"] == "EAST-C-000001"

    # Two creates of the same ERP record at once: both pass the external_ref check, both
    # reserve a number, one insert loses on the unique index and its transaction (with its
    # reserved number) rolls back.
    async def push() -> int:
        resp = await customers.client.post(
            API,
            json={"name": "Pushed twice", "region": "EAST", "source": "erp", "external_ref": "E1"},
            params={"confirm_duplicates": "true"},
            headers=customers.headers(org.rep_a),
        )
        assert resp.status_code in (201, 409), resp.text
        return int(resp.status_code)

    statuses = sorted(await asyncio.gather(push(), push()))
    assert statuses == [201, 409]
    second = await customers.create(org.rep_a, name="Gap Test Three")
    assert second["code"] == "EAST-C-000003"
    listed = await customers.client.get(API, headers=customers.headers(org.rep_a))
    assert sorted(c["code"] for c in listed.json()["items"]) == [
        "EAST-C-000001",
        "EAST-C-000002",
        "EAST-C-000003",
    ]

    # Renaming or moving region never changes the code; the next one is never a reused one.
    resp = await customers.client.patch(
        f"{API}/{second['id']}",
        json={"region": "WEST", "name": "Renamed"},
        headers=customers.headers(org.rep_a, **{"If-Match": '"1"'}),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["code"] == "EAST-C-000003"
    third = await customers.create(org.rep_a)
    assert third["code"] == "EAST-C-000004"


async def test_code_pattern_from_settings_with_level_and_year(customers, org, clock):
    resp = await customers.client.put(
        f"{API}/settings",
        json={"code_pattern": "{region}-{level}-{year}-{seq:04}"},
        headers=customers.headers(org.admin),
    )
    assert resp.status_code == 200, resp.text
    year = clock.now().year
    a = await customers.create(org.rep_a, level="A")
    b = await customers.create(org.rep_a, level="B")
    a2 = await customers.create(org.rep_a, level="A")
    assert a["code"] == f"EAST-A-{year}-0001"
    assert b["code"] == f"EAST-B-{year}-0001"
    assert a2["code"] == f"EAST-A-{year}-0002"


async def test_duplicates_answer_409_with_candidates_unless_confirmed(customers, org):
    await customers.create(org.rep_a, name="Shanghai Widget Co., Ltd.", phone="021-5555 0001")
    resp = await customers.client.post(
        API,
        json={"name": "shanghai widget co ltd", "region": "east"},
        headers=customers.headers(org.rep_b),
    )
    assert resp.status_code == 409
    problem = resp.json()
    assert problem["type"] == "/problems/duplicates-found"
    assert problem["candidates"][0]["matched_on"] == ["name"]
    resp = await customers.client.post(
        API,
        json={"name": "Other name", "region": "WEST", "phone": "02155550001"},
        headers=customers.headers(org.rep_b),
    )
    assert resp.status_code == 409
    assert resp.json()["candidates"][0]["matched_on"] == ["phone"]
    resp = await customers.client.post(
        API,
        json={"name": "Other name", "region": "WEST", "phone": "02155550001"},
        params={"confirm_duplicates": "true"},
        headers=customers.headers(org.rep_b),
    )
    assert resp.status_code == 201


async def test_list_filters_search_sort_and_keyset_pages(customers, org):
    mine = [
        await customers.create(
            org.rep_a,
            name=f"Alpha {i}",
            region="EAST" if i % 2 else "WEST",
            level="A" if i < 2 else "C",
            tags=["t1"] if i == 3 else [],
            phone=f"1390000000{i}",
        )
        for i in range(5)
    ]
    await customers.create(org.rep_b, name="Beta")
    pool = await customers.create(org.manager_north, name="Pool One")
    h = customers.headers(org.rep_a)

    async def ids(**params: str) -> list[str]:
        resp = await customers.client.get(API, params=params, headers=h)
        assert resp.status_code == 200, resp.text
        return [str(c["id"]) for c in resp.json()["items"]]

    assert await ids() == [c["id"] for c in mine] + [pool["id"]]
    assert await ids(owner_id=org.rep_a.sub, region="east") == [mine[1]["id"], mine[3]["id"]]
    assert await ids(level="A", owner_id=org.rep_a.sub) == [mine[0]["id"], mine[1]["id"]]
    assert await ids(tag="t1") == [mine[3]["id"]]
    assert await ids(pool="true") == [pool["id"]]
    assert await ids(q="alpha 4") == [mine[4]["id"]]
    assert await ids(q=mine[2]["code"]) == [mine[2]["id"]]
    assert await ids(q="139 0000 0003") == [mine[3]["id"]]
    assert await ids(sort="name", order="desc", owner_id=org.rep_a.sub) == [
        c["id"] for c in reversed(mine)
    ]

    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        resp = await customers.client.get(API, params=params, headers=h)
        page = resp.json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in mine] + [pool["id"]]

    bad = await customers.client.get(API, params={"level": "Z", "limit": "999"}, headers=h)
    assert bad.status_code == 422
    locs = [e["loc"] for e in bad.json()["errors"]]
    assert ["query", "level"] in locs and ["query", "limit"] in locs
    bad_cursor = await customers.client.get(API, params={"cursor": "nope"}, headers=h)
    assert bad_cursor.status_code == 422


async def test_full_file_and_card(customers, org):
    c = await customers.create(org.rep_a, level="B", estimated_potential="250000")
    resp = await customers.client.get(f"{API}/{c['id']}", headers=customers.headers(org.rep_a))
    assert resp.status_code == 200
    file = resp.json()
    assert resp.headers["etag"] == '"1"'
    assert file["code"] == c["code"]
    assert file["level_info"] == {
        "level": "B",
        "since": c["created_at"],
        "cadence_days": 14,
        "proposed_level": "B",
        "purchases_12m": "0",
    }
    assert [p["owner_id"] for p in file["ownership"]] == [org.rep_a.sub]
    assert isinstance(file["sections"], dict)

    card = await customers.client.get(f"{API}/{c['id']}/card", headers=customers.headers(org.rep_a))
    assert card.status_code == 200
    assert card.json()["cadence_days"] == 14
    assert card.json()["code"] == c["code"]
    assert "estimated_potential" not in card.json()


async def test_patch_needs_if_match_and_records_history_and_as_of(customers, org, clock):
    c = await customers.create(org.rep_a, name="Before", industry="steel")
    url = f"{API}/{c['id']}"
    h = customers.headers(org.rep_a)
    missing = await customers.client.patch(url, json={"name": "After"}, headers=h)
    assert missing.status_code == 428
    assert missing.headers["content-type"] == "application/problem+json"

    t_before = clock.now()
    clock.advance(1)
    ok = await customers.client.patch(
        url, json={"name": "After", "industry": None}, headers={**h, "If-Match": '"1"'}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["name"] == "After" and ok.json()["industry"] is None
    assert ok.json()["version"] == 2 and ok.headers["etag"] == '"2"'

    stale = await customers.client.patch(
        url, json={"name": "Lost"}, headers={**h, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2

    nulled = await customers.client.patch(
        url, json={"name": None}, headers={**h, "If-Match": '"2"'}
    )
    assert nulled.status_code == 422
    assert nulled.json()["errors"][0]["loc"] == ["body", "name"]

    invalid = await customers.client.patch(
        url, json={"status": "invalid"}, headers={**h, "If-Match": '"2"'}
    )
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["loc"] == ["invalid_reason"]
    invalid = await customers.client.patch(
        url,
        json={"status": "invalid", "invalid_reason": "company closed"},
        headers={**h, "If-Match": '"2"'},
    )
    assert invalid.status_code == 200 and invalid.json()["status"] == "invalid"

    hist = await customers.client.get(f"{url}/history", headers=h)
    entries = hist.json()["items"]
    assert [e["action"] for e in entries] == ["updated", "updated", "created"]
    assert entries[1]["changes"] == {
        "name": {"old": "Before", "new": "After"},
        "industry": {"old": "steel", "new": None},
    }
    assert entries[1]["actor_id"] == org.rep_a.sub and entries[1]["version"] == 2
    assert entries[0]["changes"]["status"] == {"old": "active", "new": "invalid"}

    past = await customers.client.get(url, params={"as_of": t_before.isoformat()}, headers=h)
    assert past.status_code == 200, past.text
    assert past.json()["name"] == "Before"
    assert past.json()["industry"] == "steel"
    assert past.json()["status"] == "active"
    assert past.json()["version"] == 1
    now = await customers.client.get(url, params={"as_of": clock.now().isoformat()}, headers=h)
    assert now.json()["name"] == "After" and now.json()["status"] == "invalid"
    before_creation = await customers.client.get(
        url, params={"as_of": "2000-01-01T00:00:00Z"}, headers=h
    )
    assert before_creation.status_code == 404
    naive = await customers.client.get(url, params={"as_of": "2030-01-01T00:00:00"}, headers=h)
    assert naive.status_code == 422


async def test_merged_status_cannot_be_set_by_patch_and_bad_bodies_name_fields(customers, org):
    c = await customers.create(org.rep_a)
    url = f"{API}/{c['id']}"
    h = customers.headers(org.rep_a, **{"If-Match": '"1"'})
    resp = await customers.client.patch(url, json={"status": "merged"}, headers=h)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["loc"] == ["body", "status"]
    resp = await customers.client.patch(url, json={"code": "HACK-1"}, headers=h)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["loc"] == ["body", "code"]
    resp = await customers.client.post(
        API,
        json={"name": "", "region": "EAST", "email": "not-an-email", "estimated_potential": "-1"},
        headers=customers.headers(org.rep_a),
    )
    assert resp.status_code == 422
    assert resp.headers["content-type"] == "application/problem+json"
    locs = {tuple(e["loc"]) for e in resp.json()["errors"]}
    assert {("body", "name"), ("body", "email"), ("body", "estimated_potential")} <= locs


async def test_settings_are_admin_managed_and_validated(customers, org):
    resp = await customers.client.get(f"{API}/settings", headers=customers.headers(org.rep_a))
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["code_pattern"] == "{region}-{level}-{seq:06}"
    assert doc["cadence_days"] == {"A": 7, "B": 14, "C": 30}
    assert doc["approval_fields"] == ["level", "owner_id"]
    assert resp.headers["etag"] == '"0"'

    denied = await customers.client.put(
        f"{API}/settings", json=doc, headers=customers.headers(org.manager_north)
    )
    assert denied.status_code == 403
    bad = await customers.client.put(
        f"{API}/settings",
        json={**doc, "code_pattern": "{region}-{owner}", "cadence_days": {"A": 0, "B": 1, "C": 2}},
        headers=customers.headers(org.admin),
    )
    assert bad.status_code == 422
    locs = {tuple(e["loc"]) for e in bad.json()["errors"]}
    assert ("body", "code_pattern") in locs and ("body", "cadence_days", "A") in locs

    doc["cadence_days"]["A"] = 5
    saved = await customers.client.put(
        f"{API}/settings", json=doc, headers=customers.headers(org.admin, **{"If-Match": '"0"'})
    )
    assert saved.status_code == 200 and saved.headers["etag"] == '"1"'
    stale = await customers.client.put(
        f"{API}/settings", json=doc, headers=customers.headers(org.admin, **{"If-Match": '"0"'})
    )
    assert stale.status_code == 412
    c = await customers.create(org.rep_a, level="A")
    card = await customers.client.get(f"{API}/{c['id']}/card", headers=customers.headers(org.rep_a))
    assert card.json()["cadence_days"] == 5


async def test_settings_patch_changes_only_what_it_names(customers, org):
    admin = customers.headers(org.admin)
    url = f"{API}/settings"
    denied = await customers.client.patch(
        url, json={"cadence_days": {"A": 3}}, headers=customers.headers(org.manager_north)
    )
    assert denied.status_code == 403
    patched = await customers.client.patch(
        url,
        json={"cadence_days": {"A": 3}, "pool": {"claims_per_day": None}},
        headers={**admin, "If-Match": '"0"'},
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] == '"1"'
    doc = patched.json()
    assert doc["cadence_days"] == {"A": 3, "B": 14, "C": 30}
    assert doc["pool"] == {"max_customers_per_rep": 300, "claims_per_day": None}
    assert doc["code_pattern"] == "{region}-{level}-{seq:06}"
    assert (await customers.client.get(url, headers=admin)).json() == doc

    # Each value is checked as the change names it, then the merged document as a whole
    # (A's thresholds not below B's); nothing is saved when either fails.
    bad = await customers.client.patch(url, json={"cadence_days": {"B": 0}}, headers=admin)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in bad.json()["errors"]] == [["body", "cadence_days", "B"]]
    below_b = await customers.client.patch(
        url, json={"level_thresholds": {"A": {"purchases_12m": "1"}}}, headers=admin
    )
    assert below_b.status_code == 422
    assert [e["loc"] for e in below_b.json()["errors"]] == [["body", "level_thresholds"]]
    unknown = await customers.client.patch(url, json={"colour": "red"}, headers=admin)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "colour"]
    not_an_object = await customers.client.patch(url, json=["A"], headers=admin)
    assert not_an_object.status_code == 422
    stale = await customers.client.patch(
        url, json={"cadence_days": {"A": 4}}, headers={**admin, "If-Match": '"0"'}
    )
    assert stale.status_code == 412
    after = await customers.client.get(url, headers=admin)
    assert after.json() == doc and after.headers["etag"] == '"1"'


async def test_level_proposals_list_customers_whose_proposed_level_differs(customers, org, clock):
    low_a = await customers.create(org.rep_a, level="A", estimated_potential="1000")
    high_c = await customers.create(org.rep_a, level="C", estimated_potential="300000")
    await customers.create(org.rep_a, level="B", estimated_potential="200000")
    rep_b_a = await customers.create(org.rep_b, level="A", estimated_potential="5")
    resp = await customers.client.get(
        f"{API}/level-proposals", headers=customers.headers(org.rep_a)
    )
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [(i["id"], i["level"], i["proposed_level"]) for i in items] == [
        (low_a["id"], "A", "C"),
        (high_c["id"], "C", "B"),
    ]

    # Purchases of the trailing twelve months count, older orders do not.
    today = clock.now().date()
    for day, amount in (
        (today, "60000"),
        (today, "50000"),
        (date(today.year - 2, 1, 1), "1000000"),
    ):
        order = await customers.client.post(
            f"{API}/{low_a['id']}/orders",
            json={"order_date": day.isoformat(), "amount": amount},
            headers=customers.headers(org.rep_a),
        )
        assert order.status_code == 201, order.text
    again = await customers.client.get(
        f"{API}/level-proposals", headers=customers.headers(org.rep_a)
    )
    [first, *_] = again.json()["items"]
    assert (first["id"], first["proposed_level"]) == (low_a["id"], "B")
    assert Decimal(first["purchases_12m"]) == Decimal("110000")
    # Each customer's own purchases: rep B's customer bought nothing and stays proposed C.
    everyone = await customers.client.get(
        f"{API}/level-proposals", headers=customers.headers(org.admin)
    )
    proposals = {i["id"]: i for i in everyone.json()["items"]}
    assert proposals[low_a["id"]]["proposed_level"] == "B"
    assert proposals[rep_b_a["id"]]["proposed_level"] == "C"
    assert Decimal(proposals[rep_b_a["id"]]["purchases_12m"]) == 0


async def test_unknown_routes_and_ids(customers, org):
    h = customers.headers(org.admin)
    assert (await customers.client.get(f"{API}/{uuid.uuid4()}", headers=h)).status_code == 404
    assert (await customers.client.get(f"{API}/not-a-uuid", headers=h)).status_code == 404
    anon = await customers.client.get(API)
    assert anon.status_code == 401


async def test_integration_keys_need_a_customers_scope(customers, org):
    c = await customers.create(org.rep_a)
    nothing = make_principal("integration", kind="key", scopes=["leads:write"])
    reader = make_principal("integration", kind="key", scopes=["customers:read"])
    for path in (API, f"{API}/{c['id']}"):
        assert (
            await customers.client.get(path, headers=customers.headers(nothing))
        ).status_code == 403
        assert (
            await customers.client.get(path, headers=customers.headers(reader))
        ).status_code == 200
    denied = await customers.client.post(
        API, json={"name": "K", "region": "EAST"}, headers=customers.headers(reader)
    )
    assert denied.status_code == 403
    writer = make_principal("integration", kind="key", scopes=["customers:write"])
    made = await customers.client.post(
        API, json={"name": "K", "region": "EAST"}, headers=customers.headers(writer)
    )
    assert made.status_code == 201 and made.json()["owner_id"] is None


@contextlib.contextmanager
def statements(customers):
    """The SQL statements the app sends through its engine while the block runs."""
    from sqlalchemy import event

    sent: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    engine = customers.app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_sections_wired_into_the_archive_join_the_full_file_in_one_statement(customers, org):
    import sqlalchemy as sa

    from customers.archive.extensions import Section
    from customers.archive.models import HISTORY

    def history_size(customer_id):
        return (
            sa.select(sa.func.json_build_object("entries", sa.func.count()))
            .where(HISTORY.c.customer_id == customer_id)
            .scalar_subquery()
        )

    c = await customers.create(org.rep_a)
    await customers.client.patch(
        f"{API}/{c['id']}",
        json={"address": "2 Road"},
        headers=customers.headers(org.rep_a, **{"If-Match": '"1"'}),
    )
    sections = customers.extensions.file_sections
    sections["history_size"] = Section(history_size, "customers:read")
    try:
        with statements(customers) as sent:
            resp = await customers.client.get(
                f"{API}/{c['id']}", headers=customers.headers(org.rep_a)
            )
    finally:
        del sections["history_size"]
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["sections"]["history_size"] == {"entries": 2}
    # The record, settings, ledger, purchases and all five sections: one statement.
    assert set(body["sections"]) == {"contacts", "orders", "data_quality", "visits", "history_size"}
    assert len(sent) == 1, sent
    again = await customers.client.get(f"{API}/{c['id']}", headers=customers.headers(org.rep_a))
    assert "history_size" not in again.json()["sections"]


async def test_a_retried_create_with_an_idempotency_key_creates_one_customer(customers, org):
    h = customers.headers(org.rep_a, **{"Idempotency-Key": "create-once"})
    body = {"name": "Retried Ltd", "region": "EAST"}
    first = await customers.client.post(API, json=body, headers=h)
    second = await customers.client.post(API, json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    listed = await customers.client.get(API, headers=customers.headers(org.rep_a))
    assert len(listed.json()["items"]) == 1
    other = await customers.client.post(API, json={**body, "name": "Other"}, headers=h)
    assert other.status_code == 422


async def test_as_of_replays_owner_changes_too(customers, org, clock):
    c = await customers.create(org.rep_a)
    before = clock.now()
    clock.advance(1)
    moved = await customers.client.patch(
        f"{API}/{c['id']}",
        json={"owner_id": org.rep_b.sub},
        headers=customers.headers(org.manager_north, **{"If-Match": '"1"'}),
    )
    assert moved.status_code == 200, moved.text
    past = await customers.client.get(
        f"{API}/{c['id']}",
        params={"as_of": before.isoformat()},
        headers=customers.headers(org.admin),
    )
    assert past.json()["owner_id"] == org.rep_a.sub and past.json()["version"] == 1
    assert past.json()["team_id"] == org.team_north


async def test_patching_an_external_ref_taken_by_another_customer_is_a_422(customers, org):
    await customers.create(org.rep_a, source="erp", external_ref="ONE")
    other = await customers.create(org.rep_a, source="erp", external_ref="TWO")
    resp = await customers.client.patch(
        f"{API}/{other['id']}",
        json={"external_ref": "ONE"},
        headers=customers.headers(org.rep_a, **{"If-Match": '"1"'}),
    )
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["loc"] == ["external_ref"]
    unchanged = await customers.client.get(
        f"{API}/{other['id']}", headers=customers.headers(org.rep_a)
    )
    assert unchanged.json()["external_ref"] == "TWO" and unchanged.json()["version"] == 1


async def test_full_file_json_is_exactly_the_schema_and_one_statement(customers, org, clock):
    """The full file's JSON is CustomerFile's own dump (times as "Z", money as decimal
    strings, field order), read with one statement however many sections it has."""
    from customers.archive.schemas import CustomerFile

    c = await customers.create(
        org.rep_a, level="A", tags=["vip", "export"], estimated_potential="1234.50"
    )
    url = f"{API}/{c['id']}"
    h = customers.headers(org.rep_a)
    patched = await customers.client.patch(
        url, json={"address": "9 Quay"}, headers={**h, "If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    contact = await customers.client.post(
        f"{url}/contacts", json={"name": "Li Wei", "is_primary": True}, headers=h
    )
    assert contact.status_code == 201, contact.text
    order = await customers.client.post(
        f"{url}/orders",
        json={"order_date": clock.now().date().isoformat(), "amount": "300.10"},
        headers=h,
    )
    assert order.status_code == 201, order.text

    with statements(customers) as sent:
        resp = await customers.client.get(url, headers=h)
    assert resp.status_code == 200, resp.text
    assert len(sent) == 1, sent
    assert resp.headers["etag"] == '"2"'
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["address"] == "9 Quay" and body["estimated_potential"] == "1234.50"
    assert body["level_info"] == {
        "level": "A",
        "since": c["created_at"],
        "cadence_days": 7,
        "proposed_level": "C",
        "purchases_12m": "300.10",
    }
    assert body["sections"]["contacts"][0]["name"] == "Li Wei"
    assert body["sections"]["orders"]["summary"]["total"] == "300.10"
    # Byte for byte the schema's JSON (the sections are JSON built by PostgreSQL).
    dumped = CustomerFile.model_validate(body).model_dump(mode="json")
    assert {k: v for k, v in dumped.items() if k != "sections"} == {
        k: v for k, v in body.items() if k != "sections"
    }
    assert list(body) == list(CustomerFile.model_fields)
    assert body["updated_at"].endswith("Z")
    # The custody entries read the same as the ledger's own endpoint, times in UTC with "Z".
    ledger = await customers.client.get(f"{API}/{c['id']}/ownership", headers=h)
    [entry] = ledger.json()
    [owned] = body["ownership"]
    assert owned["started_at"].endswith("Z") and owned["ended_at"] is None
    assert datetime.fromisoformat(owned["started_at"]) == datetime.fromisoformat(
        entry["started_at"]
    )


async def test_full_file_refuses_a_bad_as_of_and_missing_or_forged_tokens(customers, org):
    c = await customers.create(org.rep_a)
    url = f"{API}/{c['id']}"
    h = customers.headers(org.rep_a)
    bad = await customers.client.get(url, params={"as_of": "yesterday"}, headers=h)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["loc"] == ["query", "as_of"]
    assert (await customers.client.get(url)).status_code == 401
    forged = await customers.client.get(url, headers={"X-Internal-Token": "forged"})
    assert forged.status_code == 401


async def test_list_page_json_is_the_schema_and_pages_by_code_backwards(customers, org):
    """The list page is encoded straight from the rows: each item must be CustomerRead's own
    JSON; keyset pages over a one-column sort, descending, walk every visible row once."""
    from customers.archive.schemas import CustomerRead

    made = [
        await customers.create(org.rep_a, name=f"Gamma {i}", estimated_potential=f"{i * 10}.05")
        for i in range(5)
    ]
    h = customers.headers(org.rep_a)
    resp = await customers.client.get(API, params={"owner_id": org.rep_a.sub}, headers=h)
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [c["id"] for c in items] == [c["id"] for c in made]
    for item in items:
        assert CustomerRead.model_validate(item).model_dump(mode="json") == item
        assert list(item) == list(CustomerRead.model_fields)
    assert items[1]["estimated_potential"] == "10.05"

    seen, cursor = [], None
    while True:
        params = {"limit": "2", "sort": "code", "order": "desc"}
        resp = await customers.client.get(
            API, params={**params, **({"cursor": cursor} if cursor else {})}, headers=h
        )
        assert resp.status_code == 200, resp.text
        seen += [c["code"] for c in resp.json()["items"]]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted((c["code"] for c in made), reverse=True)
