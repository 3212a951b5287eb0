"""The duplicate check on PATCH and the duplicate pairs list, contacts in the history and in the
file as of a past time, and who reaches what in the archive's newer endpoints (orders,
payments, products, handovers, duplicates, lifecycle): a rep gets 404 on another rep's record,
a key without the scope 403."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"
ORDERS = "/api/v1/orders"
PAYMENTS = "/api/v1/payments"
PRODUCTS = "/api/v1/products"


async def test_a_patch_to_another_customers_phone_answers_409_with_the_candidates(customers, org):
    first = await customers.create(org.rep_a, name="Jade Printing", phone="021-5555 0001")
    second = await customers.create(org.rep_a, name="Blue Paper", email="buy@blue.example")
    url = f"{API}/{second['id']}"
    h = {"If-Match": '"1"'}

    taken = await customers.patch(url, json={"phone": "02155550001"}, headers=h, as_=org.rep_a)
    assert taken.status_code == 409, taken.text
    problem = taken.json()
    assert problem["type"] == "/problems/duplicates-found"
    assert [(c["id"], c["matched_on"]) for c in problem["candidates"]] == [(first["id"], ["phone"])]
    # Nothing changed; an edit that matches nobody, or the record's own values, goes through.
    assert (await customers.get(url, as_=org.rep_a)).json()["phone"] is None
    own = await customers.patch(
        url, json={"email": "BUY@blue.example", "address": "Road 1"}, headers=h, as_=org.rep_a
    )
    assert own.status_code == 200, own.text
    confirmed = await customers.patch(
        url,
        json={"phone": "02155550001"},
        params={"confirm_duplicates": "true"},
        headers={"If-Match": '"2"'},
        as_=org.rep_a,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["phone"] == "02155550001"


async def test_duplicate_pairs_are_listed_within_the_callers_visibility(customers, org):
    a1 = await customers.create(org.rep_a, name="Twin Ltd", phone="13900000001")
    a2 = await customers.create(org.rep_a, name="Other Twin", phone="139 0000 0001")
    await customers.create(org.rep_a, name="Alone", phone="13900000009")
    b1 = await customers.create(org.rep_b, name="Same Mail", email="x@same.example")
    b2 = await customers.create(org.rep_b, name="Mail Again", email="X@same.example")
    s1 = await customers.create(org.rep_south, name="South One", email="y@south.example")
    await customers.create(org.rep_south, name="South Two", email="y@south.example")

    async def pairs(principal: Any) -> set[tuple[frozenset[str], tuple[str, ...]]]:
        resp = await customers.get(f"{API}/duplicates", as_=principal)
        assert resp.status_code == 200, resp.text
        return {
            (frozenset(c["id"] for c in p["customers"]), tuple(p["matched_on"]))
            for p in resp.json()["items"]
        }

    assert await pairs(org.rep_a) == {(frozenset({a1["id"], a2["id"]}), ("phone",))}
    assert await pairs(org.rep_b) == {(frozenset({b1["id"], b2["id"]}), ("email",))}
    north = await pairs(org.manager_north)
    assert north == await pairs(org.rep_a) | await pairs(org.rep_b)
    everyone = await pairs(org.admin)
    assert len(everyone) == 3 and any(s1["id"] in ids for ids, _ in everyone)
    keyless = make_principal("integration", kind="key", scopes=["visits:read"])
    assert (await customers.get(f"{API}/duplicates", as_=keyless)).status_code == 403


async def test_contact_changes_are_in_the_history_and_the_past_file_shows_them_as_they_were(
    customers, org, clock
):
    c = await customers.create(org.rep_a, level="B")
    url = f"{API}/{c['id']}"
    clock.advance(hours=1)
    added = await customers.post(
        f"{url}/contacts", json={"name": "Li Wei", "title": "Buyer"}, as_=org.rep_a
    )
    assert added.status_code == 201, added.text
    contact = added.json()
    clock.advance(hours=1)
    with_buyer = clock.now()
    clock.advance(hours=1)
    changed = await customers.patch(
        f"{url}/contacts/{contact['id']}", json={"title": "Head of buying"}, as_=org.rep_a
    )
    assert changed.status_code == 200, changed.text
    clock.advance(hours=1)
    with_head = clock.now()
    clock.advance(hours=1)
    removed = await customers.delete(f"{url}/contacts/{contact['id']}", as_=org.rep_a)
    assert removed.status_code == 204

    history = (await customers.get(f"{url}/history", as_=org.rep_a)).json()["items"]
    contact_entries = [e for e in history if e["action"].startswith("contact_")]
    assert [e["action"] for e in contact_entries] == [
        "contact_removed",
        "contact_updated",
        "contact_added",
    ]
    removed_e, updated_e, added_e = contact_entries
    assert added_e["changes"]["contact"]["old"] is None
    assert added_e["changes"]["contact"]["new"]["name"] == "Li Wei"
    assert updated_e["changes"]["contact"]["old"]["title"] == "Buyer"
    assert updated_e["changes"]["contact"]["new"]["title"] == "Head of buying"
    assert removed_e["changes"]["contact"]["new"] is None
    assert all(e["actor_id"] == org.rep_a.sub for e in contact_entries)

    now_file = (await customers.get(url, as_=org.rep_a)).json()
    assert now_file["sections"]["contacts"] == []

    async def contacts_as_of(at: Any) -> list[tuple[str, str | None]]:
        resp = await customers.get(url, params={"as_of": at.isoformat()}, as_=org.rep_a)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # The same shape as the current file, with the level as it was.
        assert set(now_file) - {"etag"} <= set(body) | {"etag"}
        assert body["level_info"]["level"] == "B"
        return [(x["name"], x["title"]) for x in body["sections"]["contacts"]]

    assert await contacts_as_of(with_buyer) == [("Li Wei", "Buyer")]
    assert await contacts_as_of(with_head) == [("Li Wei", "Head of buying")]
    assert await contacts_as_of(with_buyer - timedelta(hours=1, seconds=1)) == []


async def test_a_rep_reaches_only_their_own_records_in_the_newer_endpoints(customers, org, clock):
    await customers.product(org.admin, "P-1", name="Paper", category="stock")
    mine = await customers.create(org.rep_a)
    theirs = await customers.create(org.rep_b)
    today = clock.now().date().isoformat()
    resp = await customers.post(
        f"{API}/{mine['id']}/orders",
        json={
            "order_date": today,
            "amount": "10.00",
            "lines": [{"sku": "P-1", "quantity": "1", "unit_price": "10.00"}],
        },
        as_=org.rep_a,
    )
    assert resp.status_code == 201, resp.text
    order = resp.json()
    resp = await customers.post(
        f"{ORDERS}/{order['id']}/payments",
        json={"amount": "4.00", "received_on": today},
        as_=org.rep_a,
    )
    assert resp.status_code == 201, resp.text
    payment = resp.json()
    o, p = f"{ORDERS}/{order['id']}", f"{PAYMENTS}/{payment['id']}"

    # Another rep: the order, its payments, the payment and every change to them are 404.
    rep_b = org.rep_b
    assert (await customers.get(o, as_=rep_b)).status_code == 404
    assert (await customers.get(f"{o}/payments", as_=rep_b)).status_code == 404
    assert (await customers.get(p, as_=rep_b)).status_code == 404
    amend = await customers.patch(
        o, json={"amount": "12.00"}, headers={"If-Match": '"1"'}, as_=rep_b
    )
    assert amend.status_code == 404
    assert (await customers.post(f"{o}/cancel", json={"reason": "x"}, as_=rep_b)).status_code == 404
    assert (
        await customers.post(f"{p}/reverse", json={"reason": "x"}, as_=rep_b)
    ).status_code == 404
    listed = await customers.get(ORDERS, as_=rep_b)
    assert listed.status_code == 200 and listed.json()["items"] == []
    by_customer = await customers.get(ORDERS, params={"customer_id": mine["id"]}, as_=rep_b)
    assert by_customer.json()["items"] == []
    # Its own manager and the owner see it; another team's manager does not.
    for who, status in ((org.rep_a, 200), (org.manager_north, 200), (org.manager_south, 404)):
        assert (await customers.get(o, as_=who)).status_code == status
    south = await customers.get(ORDERS, as_=org.manager_south)
    assert south.json()["items"] == []

    # Lifecycle: a rep does not declare a customer lost, another rep's one is not there at all.
    lost = f"{API}/{mine['id']}/lost"
    assert (await customers.post(lost, json={"reason": "price"}, as_=org.rep_a)).status_code == 403
    gone = await customers.post(f"{API}/{theirs['id']}/lost", json={"reason": "x"}, as_=org.rep_a)
    assert gone.status_code == 404
    # Handovers: a rep reads their own report only.
    report = f"{API}/handovers"
    own = await customers.get(report, params={"owner_id": org.rep_a.sub}, as_=org.rep_a)
    assert own.status_code == 200
    other = await customers.get(report, params={"owner_id": org.rep_b.sub}, as_=org.rep_a)
    assert other.status_code == 403
    # Products: everyone reads, only admins write.
    assert (await customers.get(PRODUCTS, as_=org.rep_a)).status_code == 200
    new = {"sku": "P-2", "name": "Ink"}
    assert (await customers.post(PRODUCTS, json=new, as_=org.rep_a)).status_code == 403
    assert (await customers.post(PRODUCTS, json=new, as_=org.manager_north)).status_code == 403


async def test_keys_need_the_scope_of_what_they_do(customers, org, clock):
    c = await customers.create(org.rep_a)
    today = clock.now().date().isoformat()
    resp = await customers.post(
        f"{API}/{c['id']}/orders", json={"order_date": today, "amount": "10.00"}, as_=org.rep_a
    )
    order = resp.json()

    def key(*scopes: str) -> Any:
        return make_principal("integration", kind="key", scopes=scopes)

    none = key("visits:read")
    for path in (
        ORDERS,
        f"{ORDERS}/{order['id']}",
        PRODUCTS,
        f"{API}/duplicates",
        f"{API}/handovers?owner_id={org.rep_a.sub}",
        f"{API}?status=dormant",
    ):
        resp = await customers.get(path, as_=none)
        assert resp.status_code == 403, (path, resp.status_code)
        assert resp.json()["type"].endswith("forbidden")

    # Orders are read with an orders scope: a customers key does not see the money.
    assert (await customers.get(ORDERS, as_=key("customers:read"))).status_code == 403
    reader = key("customers:read", "orders:read")
    seen = await customers.get(ORDERS, as_=reader)
    assert seen.status_code == 200, seen.text
    assert [o["id"] for o in seen.json()["items"]] == [order["id"]]
    assert (await customers.get(PRODUCTS, as_=reader)).status_code == 200
    # Reading is not changing: cancel, amend, a product, a past create all need write scopes.
    cancel = await customers.post(
        f"{ORDERS}/{order['id']}/cancel", json={"reason": "x"}, as_=reader
    )
    assert cancel.status_code == 403
    amend = await customers.patch(
        f"{ORDERS}/{order['id']}",
        json={"amount": "11.00"},
        headers={"If-Match": f'"{order["version"]}"'},
        as_=reader,
    )
    assert amend.status_code == 403
    product = await customers.post(PRODUCTS, json={"sku": "K", "name": "K"}, as_=reader)
    assert product.status_code == 403
    past = {"name": "Old", "region": "EAST", "created_at": "2020-01-01T00:00:00Z"}
    assert (await customers.post(API, json=past, as_=reader)).status_code == 403
    writer = key("customers:write")
    made = await customers.post(API, json=past, params={"confirm_duplicates": "true"}, as_=writer)
    assert made.status_code == 201, made.text
    assert made.json()["created_at"].startswith("2020-01-01")


async def test_bad_input_to_the_newer_endpoints_is_a_problem_naming_the_field(customers, org):
    c = await customers.create(org.rep_a)
    cases = [
        ("get", f"{API}/handovers", {}, None, org.manager_north, ["query", "owner_id"]),
        ("get", ORDERS, {"from": "yesterday"}, None, org.rep_a, ["query", "from"]),
        ("get", ORDERS, {"status": "lost"}, None, org.rep_a, ["query", "status"]),
        ("get", ORDERS, {"cursor": "not-a-cursor"}, None, org.rep_a, ["query", "cursor"]),
        ("get", PRODUCTS, {"limit": "0"}, None, org.rep_a, ["query", "limit"]),
        ("get", f"{API}/duplicates", {"limit": "999"}, None, org.rep_a, ["query", "limit"]),
        ("post", f"{API}/{c['id']}/lost", {}, {}, org.manager_north, ["body", "reason"]),
        ("post", PRODUCTS, {}, {"name": "No sku"}, org.admin, ["body", "sku"]),
        (
            "post",
            f"{API}/{c['id']}/orders",
            {},
            {"order_date": "2026-01-01", "amount": "-1"},
            org.rep_a,
            ["body", "amount"],
        ),
    ]
    for method, path, params, body, who, loc in cases:
        resp = await customers.request(method, path, params=params, json=body, as_=who)
        assert resp.status_code == 422, (path, params, resp.status_code, resp.text)
        problem = resp.json()
        assert resp.headers["content-type"].startswith("application/problem+json")
        # The field is named (a cursor the kit checks is named without where it came from).
        assert loc[-1] in [e["loc"][-1] for e in problem["errors"]], (path, problem)
