"""Access: a rep sees their own customers and the pool, a manager their teams (sub-teams
included) and the pool, an admin all; anything else is a 404 on every sub-resource."""

from __future__ import annotations

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
