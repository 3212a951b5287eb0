"""Handover reports: the custody ledger seen by rep, for a period."""

from __future__ import annotations

API = "/api/v1/customers"
REPORT = f"{API}/handovers"


async def test_the_report_of_a_departed_rep_lists_every_customer_and_where_it_went(
    customers, org, clock
):
    start = clock.now()
    kept, moved, released = [
        await customers.create(org.rep_b, name=f"Held by B {i}") for i in range(3)
    ]
    clock.advance(days=1)
    transfer = await customers.post(
        f"{API}/transfers",
        json={
            "from_owner_id": org.rep_b.sub,
            "to_owner_id": org.rep_a.sub,
            "customer_ids": [moved["id"]],
            "reason": "rep A covers that street",
        },
        as_=org.manager_north,
    )
    assert transfer.status_code == 200, transfer.text
    clock.advance(days=1)
    assert (
        await customers.post(
            f"{API}/{released['id']}/release", json={"reason": "no longer buying"}, as_=org.rep_b
        )
    ).status_code == 200
    clock.advance(days=1)
    await customers.deactivate_user(org.rep_b)
    clock.advance(days=1)

    resp = await customers.get(
        REPORT,
        params={
            "owner_id": org.rep_b.sub,
            "from": start.isoformat(),
            "to": clock.now().isoformat(),
        },
        as_=org.manager_north,
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["summary"] == {"held": 3, "left": 3, "still_held": 0, "to_pool": 2, "to_reps": 1}
    by_customer = {i["customer_id"]: i for i in report["items"]}
    assert set(by_customer) == {kept["id"], moved["id"], released["id"]}
    went = by_customer[moved["id"]]
    assert (went["to_owner_id"], went["to_pool"], went["left_by"]) == (
        org.rep_a.sub,
        False,
        "transferred",
    )
    assert went["reason"] == "rep A covers that street" and went["by"] == org.manager_north.sub
    gave_back = by_customer[released["id"]]
    assert (gave_back["to_pool"], gave_back["left_by"], gave_back["by"]) == (
        True,
        "released",
        org.rep_b.sub,
    )
    handed = by_customer[kept["id"]]
    assert handed["to_pool"] is True and handed["left_by"] == "handover"
    assert handed["reason"].startswith("owner deactivated") and handed["by"] is None
    assert all(i["came_by"] == "created" and i["left"] for i in report["items"])

    # A window that ends before they came to rep B: nothing held.
    early = await customers.get(
        REPORT,
        params={"owner_id": org.rep_b.sub, "to": start.isoformat(timespec="microseconds")},
        as_=org.admin,
    )
    assert early.json()["summary"]["held"] == 0
    backwards = await customers.get(
        REPORT,
        params={"owner_id": org.rep_b.sub, "from": start.isoformat(), "to": start.isoformat()},
        as_=org.admin,
    )
    assert backwards.status_code == 422 and backwards.json()["errors"][0]["loc"] == ["to"]
    # Another team's manager sees none of it; a rep sees only their own report.
    other = await customers.get(REPORT, params={"owner_id": org.rep_b.sub}, as_=org.manager_south)
    assert other.json()["items"] == [] and other.json()["summary"]["held"] == 0
    assert (
        await customers.get(REPORT, params={"owner_id": org.rep_b.sub}, as_=org.rep_a)
    ).status_code == 403
    own = await customers.get(REPORT, params={"owner_id": org.rep_a.sub}, as_=org.rep_a)
    assert [i["customer_id"] for i in own.json()["items"]] == [moved["id"]]
    assert (
        own.json()["items"][0]["came_by"] == "transferred"
        and own.json()["items"][0]["left"] is False
    )
    paged = await customers.get(
        REPORT, params={"owner_id": org.rep_b.sub, "limit": "2"}, as_=org.admin
    )
    assert len(paged.json()["items"]) == 2 and paged.json()["next_cursor"]
    rest = await customers.get(
        REPORT,
        params={"owner_id": org.rep_b.sub, "cursor": paged.json()["next_cursor"]},
        as_=org.admin,
    )
    assert len(rest.json()["items"]) == 1
