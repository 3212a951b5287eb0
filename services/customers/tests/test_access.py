"""Access: a rep sees their own customers and the pool, a manager their teams (sub-teams
included) and the pool, an admin all; anything else is a 404 on every sub-resource."""

from __future__ import annotations

from typing import Any

from servicekit.auth import Principal
from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"


async def test_a_rep_gets_404_for_another_reps_customer_and_its_sub_resources(customers, org):
    theirs = await customers.create(org.rep_b)
    h = customers.headers(org.rep_a)
    base = f"{API}/{theirs['id']}"
    for path in (base, f"{base}/card", f"{base}/history", f"{base}/ownership"):
        resp = await customers.client.get(path, headers=h)
        assert resp.status_code == 404, path
        assert resp.json()["type"] == "/problems/not-found"
    as_of = await customers.client.get(base, params={"as_of": "2030-01-01T00:00:00Z"}, headers=h)
    assert as_of.status_code == 404
    patch = await customers.client.patch(
        base, json={"name": "mine now"}, headers={**h, "If-Match": '"1"'}
    )
    assert patch.status_code == 404
    release = await customers.client.post(f"{base}/release", json={"reason": "x"}, headers=h)
    assert release.status_code == 404
    listed = await customers.client.get(API, headers=h)
    assert theirs["id"] not in [c["id"] for c in listed.json()["items"]]
    # The owner sees it all.
    for path in (base, f"{base}/card", f"{base}/history", f"{base}/ownership"):
        assert (
            await customers.client.get(path, headers=customers.headers(org.rep_b))
        ).status_code == 200


async def test_reps_read_the_pool_but_do_not_edit_it(customers, org):
    pooled = await customers.create(org.manager_north)
    h = customers.headers(org.rep_south)
    assert (await customers.client.get(f"{API}/{pooled['id']}", headers=h)).status_code == 200
    resp = await customers.client.patch(
        f"{API}/{pooled['id']}", json={"name": "x"}, headers={**h, "If-Match": '"1"'}
    )
    assert resp.status_code == 403


async def test_a_manager_sees_their_team_and_sub_teams_only(customers, org):
    a = await customers.create(org.rep_a)
    sub = await customers.create(org.rep_sub)
    south = await customers.create(org.rep_south)
    pooled = await customers.create(org.admin)

    async def visible(principal: Principal) -> set[str]:
        resp = await customers.client.get(API, headers=customers.headers(principal))
        return {str(c["id"]) for c in resp.json()["items"]}

    assert await visible(org.manager_north) == {a["id"], sub["id"], pooled["id"]}
    assert await visible(org.manager_south) == {south["id"], pooled["id"]}
    assert await visible(org.admin) == {a["id"], sub["id"], south["id"], pooled["id"]}
    assert await visible(org.rep_sub) == {sub["id"], pooled["id"]}

    h = customers.headers(org.manager_south)
    assert (await customers.client.get(f"{API}/{a['id']}", headers=h)).status_code == 404
    assert (await customers.client.get(f"{API}/{a['id']}/history", headers=h)).status_code == 404
    mh = customers.headers(org.manager_north, **{"If-Match": '"1"'})
    ok = await customers.client.patch(f"{API}/{sub['id']}", json={"industry": "food"}, headers=mh)
    assert ok.status_code == 200
    assert ok.json()["industry"] == "food"


async def test_a_list_narrowed_to_one_owner_or_the_pool_keeps_the_access_rule(customers, org):
    """An owner or pool filter lets the list decide visibility ahead (for the planner): the
    answers must be exactly those of the general rule."""
    a = await customers.create(org.rep_a, region="EAST")
    sub = await customers.create(org.rep_sub, region="EAST")
    south = await customers.create(org.rep_south, region="EAST")
    pooled = await customers.create(org.admin, region="EAST")

    async def listed(principal: Principal, **params: str) -> set[str]:
        resp = await customers.client.get(
            API, params={"region": "east", **params}, headers=customers.headers(principal)
        )
        assert resp.status_code == 200, resp.text
        return {str(c["id"]) for c in resp.json()["items"]}

    assert await listed(org.rep_a, owner_id=org.rep_a.sub) == {a["id"]}
    assert await listed(org.rep_a, owner_id=org.rep_b.sub) == set()
    assert await listed(org.rep_a, owner_id=org.rep_south.sub) == set()
    assert await listed(org.rep_a, pool="true") == {pooled["id"]}
    assert await listed(org.manager_north, owner_id=org.rep_sub.sub) == {sub["id"]}
    assert await listed(org.manager_north, owner_id=org.rep_south.sub) == set()
    assert await listed(org.manager_north, owner_id=org.manager_north.sub) == set()
    assert await listed(org.manager_south, owner_id=org.rep_south.sub) == {south["id"]}
    assert await listed(org.manager_south, pool="true") == {pooled["id"]}
    assert await listed(org.admin, owner_id=org.rep_south.sub) == {south["id"]}
    reader = make_principal("integration", kind="key", scopes=["customers:read"])
    assert await listed(reader, owner_id=org.rep_a.sub) == {a["id"]}


async def test_a_reps_own_and_pool_list_merges_both_in_page_order(customers, org):
    """A rep's unnarrowed list runs as two ordered branches (own, pool) merged: pages must
    interleave both exactly as one ordered list would, both ways, and hide the others'."""
    made = []
    for i in range(6):
        owner = org.rep_a if i % 2 else org.admin  # admin-created ones stay in the pool
        made.append(await customers.create(owner, name=f"Merge {i}", region="WEST"))
    await customers.create(org.rep_b, region="WEST")
    h = customers.headers(org.rep_a)
    for order in ("asc", "desc"):
        seen, cursor = [], None
        while True:
            params = {"region": "west", "limit": "2", "order": order}
            resp = await customers.client.get(
                API, params={**params, **({"cursor": cursor} if cursor else {})}, headers=h
            )
            assert resp.status_code == 200, resp.text
            seen += [c["id"] for c in resp.json()["items"]]
            cursor = resp.json()["next_cursor"]
            if cursor is None:
                break
        expected = [c["id"] for c in made]
        assert seen == (expected if order == "asc" else expected[::-1])


# --- what a caller is told of records they may not see ----------------------------------------


def _leaks(text: str, record: dict[str, Any]) -> list[str]:
    """The identifying values of `record` that appear in an answer."""
    return [
        v for v in (record["id"], record["code"], record["name"], record["owner_id"]) if v in text
    ]


async def test_duplicate_candidates_another_team_holds_are_not_described(customers, org):
    theirs = await customers.create(
        org.rep_south, name="Harbour Tools Ltd", phone="021-7777 0001", email="buy@harbour.cn"
    )
    mine = await customers.create(org.rep_a, name="Harbour Tools", region="WEST")
    body = {"name": "Harbour Tools", "region": "west", "phone": "02177770001"}

    resp = await customers.post(API, json=body, as_=org.rep_a)
    assert resp.status_code == 409, resp.text
    assert _leaks(resp.text, theirs) == []
    candidates = resp.json()["candidates"]
    # Their own candidate in full, the other team's as one entry without any identifying field.
    assert candidates[0]["id"] == mine["id"] and candidates[0]["visible"] is True
    assert candidates[0]["matched_on"] == ["name"]
    assert candidates[1] == {
        "visible": False,
        "note": "a likely duplicate exists that you cannot see",
        "matched_on": ["phone"],
    }

    # The south team's manager is told which record it is.
    south = await customers.post(API, json={**body, "region": "EAST"}, as_=org.manager_south)
    assert south.status_code == 409
    assert [c["id"] for c in south.json()["candidates"]] == [theirs["id"]]
    # Confirmed, the rep creates it anyway.
    confirmed = await customers.post(
        API, json=body, params={"confirm_duplicates": "true"}, as_=org.rep_a
    )
    assert confirmed.status_code == 201


async def test_an_import_names_only_the_duplicates_the_caller_may_see(customers, org):
    theirs = await customers.create(org.rep_south, name="Quay Supplies", phone="13900000077")
    row = {"name": "Other Name", "region": "north", "phone": "139 0000 0077"}
    north = await customers.post(f"{API}/import", json={"rows": [row]}, as_=org.manager_north)
    assert north.status_code == 200, north.text
    (outcome,) = north.json()["results"]
    assert outcome["outcome"] == "error"
    assert "a likely duplicate exists that you cannot see (same phone)" in outcome["error"]
    assert _leaks(north.text, theirs) == []
    south = await customers.post(f"{API}/import", json={"rows": [row]}, as_=org.manager_south)
    assert theirs["code"] in south.json()["results"][0]["error"]


async def test_a_claim_on_a_customer_the_rep_cannot_see_is_a_404(customers, org):
    theirs = await customers.create(org.rep_south)
    teammate = await customers.create(org.rep_b)
    for customer in (theirs, teammate):
        resp = await customers.post(f"{API}/{customer['id']}/claim", as_=org.rep_a)
        assert resp.status_code == 404, resp.text
        # The id is the caller's own (in the path); nothing else of the record comes back.
        assert customer["code"] not in resp.text and customer["owner_id"] not in resp.text
        assert resp.json()["type"] == "/problems/not-found"
    mine = await customers.create(org.rep_a)
    own = await customers.post(f"{API}/{mine['id']}/claim", as_=org.rep_a)
    assert own.status_code == 409 and own.json()["type"] == "/problems/already-owned"
    # A pool customer another rep claimed first is theirs now: a 404 for the late one too.
    pooled = await customers.create(org.admin)
    assert (await customers.post(f"{API}/{pooled['id']}/claim", as_=org.rep_b)).status_code == 200
    late = await customers.post(f"{API}/{pooled['id']}/claim", as_=org.rep_south)
    assert late.status_code == 404


async def test_a_reused_external_ref_names_the_holder_only_to_who_may_see_it(customers, org):
    theirs = await customers.create(org.rep_a, source="erp", external_ref="C-1")
    body = {"name": "Someone", "region": "EAST", "source": "erp", "external_ref": "C-1"}
    hidden = await customers.post(API, json=body, as_=org.rep_south)
    assert hidden.status_code == 409, hidden.text
    assert "existing_id" not in hidden.json() and _leaks(hidden.text, theirs) == []
    shown = await customers.post(API, json=body, as_=org.manager_north)
    assert shown.status_code == 409 and shown.json()["existing_id"] == theirs["id"]

    # The same for an order's and a payment's external_ref.
    order_body = {"order_date": "2026-03-01", "amount": "10.00", "source": "erp"}
    first = await customers.post(
        f"{API}/{theirs['id']}/orders", json={**order_body, "external_ref": "O-1"}, as_=org.rep_a
    )
    assert first.status_code == 201, first.text
    paid = await customers.post(
        f"/api/v1/orders/{first.json()['id']}/payments",
        json={
            "amount": "1.00",
            "received_on": "2026-03-02",
            "source": "erp",
            "external_ref": "P-1",
        },
        as_=org.rep_a,
    )
    assert paid.status_code == 201, paid.text
    south_customer = await customers.create(org.rep_south)
    again = await customers.post(
        f"{API}/{south_customer['id']}/orders",
        json={**order_body, "external_ref": "O-1"},
        as_=org.rep_south,
    )
    assert again.status_code == 409, again.text
    assert "existing_id" not in again.json() and first.json()["id"] not in again.text
    own_order = await customers.post(
        f"{API}/{south_customer['id']}/orders", json=order_body, as_=org.rep_south
    )
    pay_again = await customers.post(
        f"/api/v1/orders/{own_order.json()['id']}/payments",
        json={
            "amount": "1.00",
            "received_on": "2026-03-02",
            "source": "erp",
            "external_ref": "P-1",
        },
        as_=org.rep_south,
    )
    assert pay_again.status_code == 409, pay_again.text
    assert "existing_id" not in pay_again.json() and paid.json()["id"] not in pay_again.text
    # An ERP key pushing orders reads every customer's orders: it is told which order it is.
    erp = make_principal("integration", kind="key", scopes=["orders:write"])
    keyed = await customers.post(
        f"{API}/{south_customer['id']}/orders",
        json={**order_body, "external_ref": "O-1"},
        as_=erp,
    )
    assert keyed.status_code == 409 and keyed.json()["existing_id"] == first.json()["id"]
