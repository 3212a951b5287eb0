"""Change requests stay true to the customer they were made against: a decision checks that
the approver may still see and change the customer, an approval applies only while the
customer is at the request's base version, a move to another owner or team cancels the
request, and every step is an event in the feed."""

from __future__ import annotations

from typing import Any

from servicekit.testing.tokens import make_principal

API = "/api/v1/customers"
REQUESTS = f"{API}/change-requests"


async def _file(customers, rep, customer: dict[str, Any], **changes: Any) -> dict[str, Any]:
    resp = await customers.patch(
        f"{API}/{customer['id']}",
        json=changes,
        as_=rep,
        headers={"If-Match": f'"{customer["version"]}"'},
    )
    assert resp.status_code == 202, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def _read(customers, who, customer_id: str) -> dict[str, Any]:
    resp = await customers.get(f"{API}/{customer_id}", as_=who)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def _request_events(customers, request_id: str) -> list[Any]:
    return [e for e in await customers.events() if e.subject == request_id]


async def test_a_manager_cannot_approve_after_the_customer_moved_to_a_team_they_cannot_see(
    customers, org
):
    c = await customers.create(org.rep_a)
    level = await _file(customers, org.rep_a, c, level="A", reason="big deal")
    c2 = await customers.create(org.rep_a)
    owner = await _file(customers, org.rep_a, c2, owner_id=org.rep_b.sub)
    # The admin hands both customers to a rep of the south team.
    moved = await customers.post(
        f"{API}/transfers",
        json={"from_owner_id": org.rep_a.sub, "to_owner_id": org.rep_south.sub, "reason": "x"},
        as_=org.admin,
    )
    assert moved.status_code == 200, moved.text

    for request in (level, owner):
        refused = await customers.post(
            f"{REQUESTS}/{request['id']}/approve", json={}, as_=org.manager_north
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"] == "/problems/change-request-decided"
        assert "cancelled" in refused.json()["detail"]
        mine = await customers.get(f"{REQUESTS}/{request['id']}", as_=org.rep_a)
        assert mine.json()["status"] == "cancelled"
        assert mine.json()["decided_by"] == org.admin.sub
    # Neither customer was changed or pulled back into the north team.
    for customer in (c, c2):
        now = await _read(customers, org.admin, customer["id"])
        assert now["owner_id"] == org.rep_south.sub and now["team_id"] == org.team_south
        assert now["level"] == "C"
    assert (await customers.get(f"{API}/{c['id']}", as_=org.manager_north)).status_code == 404
    # The south manager does not inherit the north team's requests either.
    south = await customers.get(REQUESTS, as_=org.manager_south)
    assert south.json()["items"] == []

    types = [e.type for e in await _request_events(customers, level["id"])]
    assert types == ["change_request.filed", "change_request.cancelled"]
    cancelled = (await _request_events(customers, level["id"]))[-1].data
    assert cancelled["status"] == "cancelled" and cancelled["customer_id"] == c["id"]
    assert cancelled["customer_owner_id"] == org.rep_south.sub


async def test_a_rep_moving_teams_cancels_their_pending_requests(customers, org):
    c = await customers.create(org.rep_a)
    request = await _file(customers, org.rep_a, c, level="B")
    await customers.move_user(org.rep_a, org.team_south)
    refused = await customers.post(
        f"{REQUESTS}/{request['id']}/approve", json={}, as_=org.manager_north
    )
    assert refused.status_code == 409
    assert (await _read(customers, org.rep_a, c["id"]))["level"] == "C"
    # Filed again, with the rep's token still naming the old team, it goes to the customer's
    # team now: the south manager decides it, the north manager does not even see it.
    again = await _file(customers, org.rep_a, await _read(customers, org.rep_a, c["id"]), level="B")
    assert again["team_id"] == org.team_south
    hidden = await customers.post(
        f"{REQUESTS}/{again['id']}/approve", json={}, as_=org.manager_north
    )
    assert hidden.status_code == 404
    ok = await customers.post(f"{REQUESTS}/{again['id']}/approve", json={}, as_=org.manager_south)
    assert ok.status_code == 200, ok.text
    assert (await _read(customers, org.rep_a, c["id"]))["level"] == "B"


async def test_a_later_change_by_someone_else_is_not_overwritten_by_an_approval(customers, org):
    c = await customers.create(org.rep_a, industry="retail")
    request = await _file(customers, org.rep_a, c, level="A", industry="wholesale")
    assert request["base_version"] == 1
    # The manager corrects the industry directly meanwhile.
    direct = await customers.patch(
        f"{API}/{c['id']}",
        json={"industry": "logistics"},
        as_=org.manager_north,
        headers={"If-Match": '"1"'},
    )
    assert direct.status_code == 200 and direct.json()["version"] == 2
    stale = await customers.post(
        f"{REQUESTS}/{request['id']}/approve", json={}, as_=org.manager_north
    )
    assert stale.status_code == 409, stale.text
    problem = stale.json()
    assert problem["type"] == "/problems/customer-changed-since-request"
    assert problem["base_version"] == 1 and problem["current_version"] == 2
    now = await _read(customers, org.admin, c["id"])
    assert now["industry"] == "logistics" and now["level"] == "C" and now["version"] == 2
    # Still pending: it can be rejected (or withdrawn), then filed again.
    pending = await customers.get(f"{REQUESTS}/{request['id']}", as_=org.manager_north)
    assert pending.json()["status"] == "pending"
    rejected = await customers.post(
        f"{REQUESTS}/{request['id']}/reject", json={"comment": "stale"}, as_=org.manager_north
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    types = [e.type for e in await _request_events(customers, request["id"])]
    assert types == ["change_request.filed", "change_request.rejected"]


async def test_an_approval_at_the_base_version_applies_and_publishes_events(customers, org):
    c = await customers.create(org.rep_a)
    request = await _file(customers, org.rep_a, c, level="A", reason="framework deal")
    approved = await customers.post(
        f"{REQUESTS}/{request['id']}/approve", json={"comment": "ok"}, as_=org.manager_north
    )
    assert approved.status_code == 200, approved.text
    assert (await _read(customers, org.rep_a, c["id"]))["level"] == "A"
    events = await _request_events(customers, request["id"])
    assert [e.type for e in events] == ["change_request.filed", "change_request.approved"]
    filed, decided = (e.data for e in events)
    assert filed["status"] == "pending" and filed["changes"] == {"level": "A"}
    assert filed["requested_by"] == org.rep_a.sub and filed["team_id"] == org.team_north
    assert filed["reason"] == "framework deal" and filed["customer_code"] == c["code"]
    assert decided["status"] == "approved" and decided["decided_by"] == org.manager_north.sub
    assert decided["comment"] == "ok"
    # The customer's own events follow the approval.
    level = [e for e in await customers.events({"customer.level_changed"}) if e.subject == c["id"]]
    assert len(level) == 1


async def test_an_approved_owner_change_is_not_cancelled_by_its_own_move(customers, org):
    c = await customers.create(org.rep_a)
    owner = await _file(customers, org.rep_a, c, owner_id=org.rep_b.sub)
    other = await _file(customers, org.rep_a, c, level="B")
    approved = await customers.post(
        f"{REQUESTS}/{owner['id']}/approve", json={}, as_=org.manager_north
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert (await _read(customers, org.rep_b, c["id"]))["owner_id"] == org.rep_b.sub
    # The other request waited on the old owner: the move cancelled it.
    assert (await customers.get(f"{REQUESTS}/{other['id']}", as_=org.rep_a)).json()[
        "status"
    ] == "cancelled"


async def test_the_author_withdraws_a_pending_request_and_nobody_else_does(customers, org):
    c = await customers.create(org.rep_a)
    request = await _file(customers, org.rep_a, c, level="A")
    url = f"{REQUESTS}/{request['id']}/withdraw"
    assert (await customers.post(url, json={}, as_=org.rep_b)).status_code == 404
    assert (await customers.post(url, json={}, as_=org.manager_north)).status_code == 403
    key = make_principal("integration", kind="key", scopes=["customers:write"])
    assert (await customers.post(url, json={}, as_=key)).status_code == 403
    withdrawn = await customers.post(url, json={"comment": "wrong customer"}, as_=org.rep_a)
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert body["status"] == "withdrawn" and body["decided_by"] == org.rep_a.sub
    assert body["comment"] == "wrong customer"
    again = await customers.post(url, json={}, as_=org.rep_a)
    assert again.status_code == 409
    approve = await customers.post(
        f"{REQUESTS}/{request['id']}/approve", json={}, as_=org.manager_north
    )
    assert approve.status_code == 409
    listed = await customers.get(REQUESTS, params={"status": "withdrawn"}, as_=org.rep_a)
    assert [r["id"] for r in listed.json()["items"]] == [request["id"]]
    types = [e.type for e in await _request_events(customers, request["id"])]
    assert types == ["change_request.filed", "change_request.withdrawn"]
    assert (await _read(customers, org.rep_a, c["id"]))["level"] == "C"
