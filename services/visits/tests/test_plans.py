"""Daily visit plans: drafted by the rep for customers they may see, slots on the day without
overlaps, submitted, decided only by a manager over the rep's team, frozen once approved."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.auth import Principal

API = "/api/v1/visit-plans"


def item(
    visits: Any, customer: dict[str, Any], start: int, end: int, purpose: str = "service", **kw: Any
) -> dict[str, Any]:
    return {
        "customer_id": customer["id"],
        "slot_start": visits.at(1, start),
        "slot_end": visits.at(1, end),
        "purpose": purpose,
        **kw,
    }


async def draft(visits: Any, rep: Principal, customers: list[Any], **kw: Any) -> Any:
    body = {
        "plan_date": visits.day(1),
        "area": "Pudong",
        "items": [item(visits, c, 9 + 2 * n, 10 + 2 * n) for n, c in enumerate(customers)],
        **kw,
    }
    return await visits.ok("POST", API, 201, json=body, as_=rep)


async def test_a_plan_is_drafted_submitted_approved_and_then_frozen(visits, org):
    c1 = await visits.add_customer(org.rep_a, level="A")
    c2 = await visits.add_customer(None)  # the pool: every rep may plan it
    resp = await visits.post(
        API,
        json={
            "plan_date": visits.day(1),
            "area": "Pudong",
            "items": [
                item(visits, c2, 14, 15, "new_development"),
                item(visits, c1, 9, 10, note="bring samples"),
            ],
        },
        as_=org.rep_a,
    )
    assert resp.status_code == 201, resp.text
    plan = resp.json()
    assert resp.headers["location"] == f"{API}/{plan['id']}"
    assert resp.headers["etag"] == '"1"'
    assert plan["status"] == "draft" and plan["rep_id"] == org.rep_a.sub
    assert plan["team_id"] == org.team_north and plan["plan_date"] == visits.day(1)
    # In slot order, with the customer as the read model knows it, times in UTC with Z.
    assert [i["customer_id"] for i in plan["items"]] == [c1["id"], c2["id"]]
    assert plan["items"][0]["customer_code"] == c1["code"]
    assert (
        plan["items"][0]["slot_start"] == visits.at(1, 9)
        and plan["items"][0]["note"] == "bring samples"
    )
    assert plan["items"][0]["visit_id"] is None and plan["items"][0]["fulfilled"] is False

    submitted = await visits.ok("POST", f"{API}/{plan['id']}/submit", as_=org.rep_a)
    assert submitted["status"] == "submitted" and submitted["submitted_at"].endswith("Z")

    # The rep cannot approve their own plan; a manager of another team does not see it.
    assert (await visits.post(f"{API}/{plan['id']}/approve", as_=org.rep_a)).status_code == 403
    assert (
        await visits.post(f"{API}/{plan['id']}/approve", as_=org.manager_south)
    ).status_code == 404
    approved = await visits.ok(
        "POST", f"{API}/{plan['id']}/approve", json={"comment": "good"}, as_=org.manager_north
    )
    assert approved["status"] == "approved" and approved["decided_by"] == org.manager_north.sub
    assert approved["comment"] == "good"

    # Frozen: no edit, no second decision, no resubmission.
    got = await visits.get(f"{API}/{plan['id']}", as_=org.rep_a)
    etag = got.headers["etag"]
    edit = await visits.patch(
        f"{API}/{plan['id']}", json={"area": "Puxi"}, headers={"If-Match": etag}, as_=org.rep_a
    )
    assert edit.status_code == 409, edit.text
    assert edit.json()["type"] == "/problems/plan-state"
    assert (await visits.post(f"{API}/{plan['id']}/submit", as_=org.rep_a)).status_code == 409
    again = await visits.post(f"{API}/{plan['id']}/return", json={"comment": "x"}, as_=org.admin)
    assert again.status_code == 409

    submitted_events = await visits.events({"visit_plan.submitted"})
    assert len(submitted_events) == 1
    data = submitted_events[0].data
    assert data["id"] == plan["id"] and data["rep_id"] == org.rep_a.sub
    assert data["team_id"] == org.team_north and data["plan_date"] == visits.day(1)
    assert data["supervisor_id"] == org.manager_north.sub and data["item_count"] == 2
    assert {i["customer_id"] for i in data["items"]} == {c1["id"], c2["id"]}
    (approved_event,) = await visits.events({"visit_plan.approved"})
    assert approved_event.data["decided_by"] == org.manager_north.sub
    assert approved_event.data["comment"] == "good" and approved_event.subject == plan["id"]


async def test_a_returned_plan_is_edited_and_resubmitted(visits, org):
    c1 = await visits.add_customer(org.rep_sub)
    c2 = await visits.add_customer(org.rep_sub)
    plan = await draft(visits, org.rep_sub, [c1])
    await visits.ok("POST", f"{API}/{plan['id']}/submit", as_=org.rep_sub)
    no_comment = await visits.post(f"{API}/{plan['id']}/return", json={}, as_=org.manager_north)
    assert no_comment.status_code == 422
    returned = await visits.ok(
        "POST",
        f"{API}/{plan['id']}/return",
        json={"comment": "add the second customer"},
        as_=org.manager_north,  # the sub-team's manager up the tree
    )
    assert returned["status"] == "returned" and returned["comment"] == "add the second customer"
    (event,) = await visits.events({"visit_plan.returned"})
    assert event.data["comment"] == "add the second customer"

    # Edit: If-Match is required, and must be current.
    path = f"{API}/{plan['id']}"
    body = {
        "items": [
            {**item(visits, c1, 9, 10), "id": plan["items"][0]["id"]},
            item(visits, c2, 11, 12),
        ]
    }
    assert (await visits.patch(path, json=body, as_=org.rep_sub)).status_code == 428
    stale = await visits.patch(path, json=body, headers={"If-Match": '"1"'}, as_=org.rep_sub)
    assert stale.status_code == 412
    resp = await visits.patch(
        path, json=body, headers={"If-Match": f'"{returned["version"]}"'}, as_=org.rep_sub
    )
    assert resp.status_code == 200, resp.text
    edited = resp.json()
    assert edited["items"][0]["id"] == plan["items"][0]["id"]  # kept its id
    assert len(edited["items"]) == 2 and edited["status"] == "returned"
    assert resp.headers["etag"] == f'"{edited["version"]}"'
    resubmitted = await visits.ok("POST", f"{path}/submit", as_=org.rep_sub)
    assert resubmitted["status"] == "submitted" and resubmitted["comment"] is None
    assert len(await visits.events({"visit_plan.submitted"})) == 2


async def test_only_the_rep_edits_their_plan_and_others_get_404(visits, org):
    c1 = await visits.add_customer(org.rep_a)
    plan = await draft(visits, org.rep_a, [c1])
    path = f"{API}/{plan['id']}"
    for outsider in (org.rep_b, org.rep_south, org.manager_south):
        assert (await visits.get(path, as_=outsider)).status_code == 404
        resp = await visits.patch(
            path, json={"area": "x"}, headers={"If-Match": '"1"'}, as_=outsider
        )
        assert resp.status_code == 404
    # The manager sees it but does not edit or submit it.
    assert (await visits.get(path, as_=org.manager_north)).status_code == 200
    resp = await visits.patch(
        path, json={"area": "x"}, headers={"If-Match": '"1"'}, as_=org.manager_north
    )
    assert resp.status_code == 403
    assert (await visits.post(f"{path}/submit", as_=org.manager_north)).status_code == 403
    # A plan that does not exist is the same 404.
    assert (await visits.get(f"{API}/{uuid.uuid4()}", as_=org.rep_a)).status_code == 404


async def test_bad_items_are_refused_and_nothing_is_written(visits, org):
    mine = await visits.add_customer(org.rep_a)
    theirs = await visits.add_customer(org.rep_b)
    unknown = {"id": str(uuid.uuid4())}
    cases: list[tuple[list[dict[str, Any]], list[Any] | None]] = [
        (
            [item(visits, mine, 9, 11), item(visits, mine, 10, 12)],
            ["body", "items", "1", "slot_start"],
        ),
        ([item(visits, mine, 11, 10)], ["items", "0", "slot_end"]),
        (
            [
                {
                    **item(visits, mine, 9, 10),
                    "slot_start": visits.at(2, 9),
                    "slot_end": visits.at(2, 10),
                }
            ],
            ["items", "0", "slot_start"],
        ),
        ([item(visits, theirs, 9, 10)], ["items", "0", "customer_id"]),
        ([item(visits, unknown, 9, 10)], ["items", "0", "customer_id"]),
        ([{**item(visits, mine, 9, 10), "purpose": "gossip"}], ["body", "items", 0, "purpose"]),
        ([{**item(visits, mine, 9, 10), "note": "a\x00b"}], ["body", "items", 0, "note"]),
        ([{**item(visits, mine, 9, 10), "slot_start": "2026-03-12T09:00:00"}], None),
        ([{**item(visits, mine, 9, 10), "id": str(uuid.uuid4())}], ["items", "0", "id"]),
    ]
    for items, loc in cases:
        resp = await visits.post(
            API, json={"plan_date": visits.day(1), "items": items}, as_=org.rep_a
        )
        assert resp.status_code == 422, (items, resp.text)
        problem = resp.json()
        assert resp.headers["content-type"] == "application/problem+json"
        if loc is not None:
            locs = [[str(p) for p in e["loc"]] for e in problem["errors"]]
            assert [str(p) for p in loc] in locs or [str(p) for p in loc][1:] in locs, problem
    # The two unknown customers give the same answer: another rep's is not told apart.
    a = await visits.post(
        API,
        json={"plan_date": visits.day(1), "items": [item(visits, theirs, 9, 10)]},
        as_=org.rep_a,
    )
    assert a.json()["type"] == "/problems/unknown-customer"
    assert "known to the visits service" in a.json()["detail"]
    for bad_date in ("2026-02-30", "0000-01-01", "99999-01-01", "2026-1-1x", 20260101):
        resp = await visits.post(API, json={"plan_date": bad_date}, as_=org.rep_a)
        assert resp.status_code == 422, (bad_date, resp.text)
    page = await visits.ok("GET", API, as_=org.rep_a)
    assert page == {"items": [], "next_cursor": None}
    assert await visits.events() == []


async def test_one_plan_per_rep_per_day(visits, org):
    c1 = await visits.add_customer(org.rep_a)
    first = await draft(visits, org.rep_a, [c1])
    resp = await visits.post(API, json={"plan_date": visits.day(1)}, as_=org.rep_a)
    assert resp.status_code == 409
    assert resp.json()["existing_id"] == first["id"]
    # Another day, or another rep the same day, is fine.
    await visits.ok("POST", API, 201, json={"plan_date": visits.day(2)}, as_=org.rep_a)
    await visits.ok("POST", API, 201, json={"plan_date": visits.day(1)}, as_=org.rep_b)


async def test_a_retried_create_makes_one_plan(visits, org):
    headers = {"Idempotency-Key": "plan-retry-1"}
    body = {"plan_date": visits.day(3), "area": "Jing'an"}
    first = await visits.post(API, json=body, headers=headers, as_=org.rep_a)
    second = await visits.post(API, json=body, headers=headers, as_=org.rep_a)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    page = await visits.ok("GET", API, as_=org.rep_a)
    assert len(page["items"]) == 1


async def test_the_approval_queue_and_who_sees_which_plans(visits, org):
    plans = {}
    for rep in (org.rep_a, org.rep_b, org.rep_sub, org.rep_south):
        customer = await visits.add_customer(rep)
        plan = await draft(visits, rep, [customer])
        plans[rep.sub] = plan
        if rep is not org.rep_b:
            await visits.ok("POST", f"{API}/{plan['id']}/submit", as_=rep)

    async def queue(principal: Principal, **params) -> set[str]:
        page = await visits.ok("GET", API, params=params, as_=principal)
        return {p["rep_id"] for p in page["items"]}

    north = {org.rep_a.sub, org.rep_sub.sub}
    assert await queue(org.manager_north, status="submitted") == north
    assert await queue(org.manager_south, status="submitted") == {org.rep_south.sub}
    assert await queue(org.admin, status="submitted") == north | {org.rep_south.sub}
    assert await queue(org.rep_a) == {org.rep_a.sub}
    assert await queue(org.rep_a, rep_id=org.rep_b.sub) == set()
    assert await queue(org.manager_north, rep_id=org.rep_sub.sub) == {org.rep_sub.sub}
    assert await queue(org.manager_north, **{"from": visits.day(2)}) == set()
    assert await queue(org.manager_north, to=visits.day(1), status="draft") == {org.rep_b.sub}

    # Pages: keyset cursors that walk the whole list.
    first = await visits.ok("GET", API, params={"limit": 2}, as_=org.admin)
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = await visits.ok(
        "GET", API, params={"limit": 2, "cursor": first["next_cursor"]}, as_=org.admin
    )
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    assert (await visits.get(API, params={"cursor": "nope"}, as_=org.admin)).status_code == 422
    assert (await visits.get(API, params={"limit": 10**20}, as_=org.admin)).status_code == 422

    # API keys: by scope.
    reader = Principal(
        sub=str(uuid.uuid4()), kind="key", role="integration", scopes=frozenset({"visits:read"})
    )
    nothing = Principal(
        sub=str(uuid.uuid4()), kind="key", role="integration", scopes=frozenset({"customers:read"})
    )
    assert len(await queue(reader)) == 4
    resp = await visits.get(API, as_=nothing)
    assert resp.status_code == 403 and "visits:read" in resp.json()["detail"]
    plan_id = plans[org.rep_a.sub]["id"]
    assert (await visits.get(f"{API}/{plan_id}", as_=nothing)).status_code == 403
    assert (await visits.post(f"{API}/{plan_id}/approve", as_=reader)).status_code == 403
    writer = Principal(
        sub=str(uuid.uuid4()), kind="key", role="integration", scopes=frozenset({"visits:write"})
    )
    assert (
        await visits.post(API, json={"plan_date": visits.day(5)}, as_=writer)
    ).status_code == 403
