"""The product catalogue: admin writes, everyone reads, a sku is unique, CSV import, and order
lines that name products by sku."""

from __future__ import annotations

from servicekit.testing.tokens import make_principal

PRODUCTS = "/api/v1/products"
API = "/api/v1/customers"


async def test_admins_write_the_catalogue_everyone_reads_it(customers, org):
    made = await customers.post(
        PRODUCTS,
        json={"sku": "PA4", "name": "Paper A4", "category": "paper", "unit": "box"},
        as_=org.admin,
    )
    assert made.status_code == 201, made.text
    product = made.json()
    assert made.headers["location"] == f"{PRODUCTS}/{product['id']}"
    assert made.headers["etag"] == '"1"' and product["active"] is True

    for who in (org.manager_north, org.rep_a):
        denied = await customers.post(PRODUCTS, json={"sku": "X", "name": "X"}, as_=who)
        assert denied.status_code == 403
        listed = await customers.get(PRODUCTS, as_=who)
        assert [p["sku"] for p in listed.json()["items"]] == ["PA4"]
    reader = make_principal("integration", kind="key", scopes=["orders:write"])
    assert (await customers.get(f"{PRODUCTS}/{product['id']}", as_=reader)).status_code == 200
    stranger = make_principal("integration", kind="key", scopes=["leads:write"])
    assert (await customers.get(PRODUCTS, as_=stranger)).status_code == 403
    writer = make_principal("integration", kind="key", scopes=["products:write"])
    assert (
        await customers.post(PRODUCTS, json={"sku": "K1", "name": "By key"}, as_=writer)
    ).status_code == 201

    taken = await customers.post(PRODUCTS, json={"sku": "PA4", "name": "Again"}, as_=org.admin)
    assert taken.status_code == 409
    assert taken.json()["existing_id"] == product["id"]
    bad = await customers.post(PRODUCTS, json={"sku": "has space", "name": ""}, as_=org.admin)
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json()["errors"]} == {("body", "sku"), ("body", "name")}

    url = f"{PRODUCTS}/{product['id']}"
    assert (await customers.patch(url, json={"active": False}, as_=org.admin)).status_code == 428
    stale = await customers.patch(
        url, json={"active": False}, headers={"If-Match": '"7"'}, as_=org.admin
    )
    assert stale.status_code == 412
    changed = await customers.patch(
        url, json={"active": False}, headers={"If-Match": '"1"'}, as_=org.admin
    )
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert changed.headers["etag"] == '"2"'
    sku_change = await customers.patch(
        url, json={"sku": "NEW"}, headers={"If-Match": '"2"'}, as_=org.admin
    )
    assert sku_change.status_code == 422
    active = await customers.get(PRODUCTS, params={"active": "true"}, as_=org.rep_a)
    assert [p["sku"] for p in active.json()["items"]] == ["K1"]
    (updated,) = await customers.events({"product.updated"})
    assert updated.data["changes"] == {"active": {"old": True, "new": False}}
    assert updated.data["sku"] == "PA4"


async def test_the_catalogue_imports_a_csv_by_sku(customers, org):
    await customers.product(org.admin, "OLD", name="Old name", category="misc")
    csv = (
        "sku,name,category,unit,active\n"
        "OLD,New name,misc,,\n"
        "N1,Stapler,office,piece,true\n"
        "N2,Ink,office,bottle,false\n"
        ",No sku,office,,\n"
        "N1,Twice,office,,\n"
    )
    resp = await customers.post(
        f"{PRODUCTS}/import",
        content=csv.encode(),
        headers={"Content-Type": "text/csv"},
        as_=org.admin,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (2, 1, 0, 2)
    errors = {r["row"]: r["error"] for r in body["results"] if r["outcome"] == "error"}
    assert "sku" in errors[3] and "repeats row 1" in errors[4]
    listed = (await customers.get(PRODUCTS, as_=org.rep_a)).json()["items"]
    assert [(p["sku"], p["name"], p["active"]) for p in listed] == [
        ("N1", "Stapler", True),
        ("N2", "Ink", False),
        ("OLD", "New name", True),
    ]
    again = await customers.post(
        f"{PRODUCTS}/import",
        json={"rows": [{"sku": "N1", "name": "Stapler"}]},
        as_=org.admin,
    )
    assert again.json()["unchanged"] == 1
    denied = await customers.post(f"{PRODUCTS}/import", json={"rows": []}, as_=org.manager_north)
    assert denied.status_code == 403


async def test_order_lines_name_active_products_unless_free_text_is_allowed(customers, org):
    c = await customers.create(org.rep_a)
    await customers.product(org.admin, "PA4", name="Paper A4", category="paper")
    await customers.product(org.admin, "GONE", name="Retired", active=False)
    url = f"{API}/{c['id']}/orders"

    def order(*lines: dict[str, str]) -> dict[str, object]:
        return {"order_date": "2026-03-01", "amount": "30.00", "lines": list(lines)}

    refused = await customers.post(
        url,
        json=order(
            {"sku": "NOPE", "quantity": "1", "unit_price": "10.00"},
            {"sku": "GONE", "quantity": "1", "unit_price": "10.00"},
            {"product": "Free text", "quantity": "1", "unit_price": "10.00"},
        ),
        as_=org.rep_a,
    )
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert [e["loc"] for e in errors] == [
        ["lines", 0, "sku"],
        ["lines", 1, "sku"],
        ["lines", 2, "sku"],
    ]
    assert "unknown sku 'NOPE'" in errors[0]["msg"] and "inactive" in errors[1]["msg"]
    assert (await customers.get(f"{API}/{c['id']}/orders", as_=org.rep_a)).json()["items"] == []

    # The line keeps the product's name as it was: a later rename does not rewrite it.
    ok = await customers.post(
        url, json=order({"sku": "PA4", "quantity": "3", "unit_price": "10.00"}), as_=org.rep_a
    )
    assert ok.status_code == 201, ok.text
    product = (await customers.get("/api/v1/products", as_=org.admin)).json()["items"][1]
    assert product["sku"] == "PA4"
    await customers.patch(
        f"/api/v1/products/{product['id']}",
        json={"name": "Paper A4 (new)"},
        headers={"If-Match": '"1"'},
        as_=org.admin,
    )
    got = (await customers.get(f"/api/v1/orders/{ok.json()['id']}", as_=org.rep_a)).json()
    assert got["lines"][0]["product"] == "Paper A4" and got["lines"][0]["category"] == "paper"
    (placed,) = await customers.events({"order.placed"})
    assert placed.data["lines"][0]["sku"] == "PA4"

    # A company without a catalogue allows free-text lines.
    await customers.patch(f"{API}/settings", json={"free_text_order_lines": True}, as_=org.admin)
    free = await customers.post(
        url,
        json=order(
            {"product": "Hand-made thing", "quantity": "1", "unit_price": "20.00"},
            {"sku": "NOPE", "quantity": "1", "unit_price": "10.00"},
        ),
        as_=org.rep_a,
    )
    assert free.status_code == 201, free.text
    assert [(x["sku"], x["product"]) for x in free.json()["lines"]] == [
        (None, "Hand-made thing"),
        ("NOPE", "NOPE"),
    ]
