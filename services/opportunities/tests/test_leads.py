"""A lead's life after intake (contacted, by a visit too; invalidated; changed with If-Match)
and who sees which lead: a rep their own, a manager their teams' and the queue, an admin
every lead, a key by scope; anything else is 404."""

from __future__ import annotations

from datetime import timedelta

from servicekit.testing.tokens import make_principal

LEADS = "/api/v1/leads"


def key(*scopes: str):
    return make_principal("integration", kind="key", scopes=scopes)


async def test_the_assigned_rep_records_the_first_contact(opportunities, org, clock):
    svc = opportunities
    lead = await svc.assigned_lead(org.manager_north, org.rep_a)
    path = f"{LEADS}/{lead['id']}/contacted"
    assert (await svc.post(path, json={}, as_=org.rep_b)).status_code == 404
    assert (await svc.post(path, json={}, as_=org.manager_north)).status_code == 403
    future = (clock.now() + timedelta(hours=1)).isoformat()
    assert (await svc.post(path, json={"at": future}, as_=org.rep_a)).status_code == 422
    clock.advance(hours=5)
    contacted = await svc.ok(await svc.post(path, json={"note": "called"}, as_=org.rep_a))
    assert contacted["status"] == "contacted"
    assert contacted["contacted_at"] == clock.now().isoformat().replace("+00:00", "Z")
    # Recorded once: again, nothing changes.
    clock.advance(hours=1)
    again = await svc.ok(await svc.post(path, json={}, as_=org.rep_a))
    assert (
        again["contacted_at"] == contacted["contacted_at"]
        and again["version"] == contacted["version"]
    )
    (event,) = [e for e in await svc.events({"lead.contacted"}) if e.subject == lead["id"]]
    assert event.data["owner_id"] == org.rep_a.sub and event.data["by"] == org.rep_a.sub

    queued = await svc.push()
    refused = await svc.post(f"{LEADS}/{queued['id']}/contacted", json={}, as_=org.admin)
    assert refused.status_code == 403


async def test_a_completed_visit_to_the_leads_customer_is_its_first_contact(opportunities, org):
    svc = opportunities
    customer = await svc.customer(phone="13811112222")
    lead = await svc.assigned_lead(org.manager_north, org.rep_a, phone="13811112222")
    assert lead["customer_id"] == customer["id"]
    # Another rep's visit is not this lead's contact.
    await svc.feed_event(
        "visits", "visit.completed", id="v-1", customer_id=customer["id"], rep_id=org.rep_b.sub
    )
    assert (await svc.lead(lead["id"], as_=org.rep_a))["status"] == "assigned"
    await svc.feed_event(
        "visits",
        "visit.completed",
        id="v-2",
        customer_id=customer["id"],
        rep_id=org.rep_a.sub,
        completed_at="2030-01-01T10:00:00+00:00",
    )
    after = await svc.lead(lead["id"], as_=org.rep_a)
    assert after["status"] == "contacted" and after["contacted_at"] == "2030-01-01T10:00:00Z"
    (event,) = [e for e in await svc.events({"lead.contacted"}) if e.subject == lead["id"]]
    assert event.data["visit_id"] == "v-2"


async def test_an_invalid_lead_leaves_every_queue(opportunities, org):
    svc = opportunities
    lead = await svc.push()
    path = f"{LEADS}/{lead['id']}/invalidate"
    assert (await svc.post(path, json={"reason": "boredom"}, as_=org.admin)).status_code == 422
    assert (await svc.post(path, json={"reason": "spam"}, as_=org.rep_a)).status_code == 404
    invalid = await svc.ok(
        await svc.post(path, json={"reason": "spam", "note": "bot"}, as_=org.manager_south)
    )
    assert invalid["status"] == "invalid" and invalid["invalid_reason"] == "spam"
    assert invalid["invalidated_at"] is not None
    queue = await svc.ok(await svc.get(LEADS, params={"queue": "true"}, as_=org.admin))
    assert queue["items"] == []
    assert (await svc.post(path, json={"reason": "spam"}, as_=org.admin)).status_code == 409
    assign = await svc.post(
        f"{LEADS}/{lead['id']}/assign", json={"owner_id": org.rep_a.sub}, as_=org.admin
    )
    assert assign.status_code == 409
    (event,) = await svc.events({"lead.invalidated"})
    assert event.data["reason"] == "spam" and event.data["previous_status"] == "qualified"
    # Pushed again unchanged, it stays invalid; changed, the push is refused for that row.
    repush = {"source": "web_form", "external_id": lead["external_id"]}
    result = await svc.ok(await svc.bulk([repush, {**repush, "company": "Renamed"}]))
    assert [r["outcome"] for r in result["results"]] == ["unchanged", "error"]


async def test_a_change_needs_the_current_etag(opportunities, org):
    svc = opportunities
    lead = await svc.assigned_lead(org.manager_north, org.rep_a)
    path = f"{LEADS}/{lead['id']}"
    first = await svc.get(path, as_=org.rep_a)
    body = {"contact_name": "Zhang San", "attributes": {"crm": "x"}}
    assert (await svc.patch(path, json=body, as_=org.rep_a)).status_code == 428
    changed = await svc.patch(
        path, json=body, headers={"If-Match": first.headers["etag"]}, as_=org.rep_a
    )
    assert (await svc.ok(changed))["contact_name"] == "Zhang San"
    stale = await svc.patch(
        path, json={"need": "x"}, headers={"If-Match": first.headers["etag"]}, as_=org.rep_a
    )
    assert stale.status_code == 412
    other = await svc.patch(path, json=body, headers={"If-Match": "*"}, as_=org.rep_b)
    assert other.status_code == 404
    for bad in (
        {"evaluation": None},
        {"phone": "call me"},
        {"need": "x\x00"},
        {"next_touch_on": "2024-01-01"},
    ):
        resp = await svc.patch(path, json=bad, headers={"If-Match": "*"}, as_=org.rep_a)
        assert resp.status_code == 422, (bad, resp.text)
    updated = [e for e in await svc.events({"lead.updated"}) if e.subject == lead["id"]]
    assert [e.data["changed_fields"] for e in updated] == [["contact_name", "attributes"]]


async def test_who_sees_which_lead(opportunities, org):
    svc = opportunities
    a = await svc.assigned_lead(org.manager_north, org.rep_a)
    sub = await svc.assigned_lead(org.manager_north, org.rep_sub)
    south = await svc.assigned_lead(org.manager_south, org.rep_south)
    queued = await svc.push()
    nurtured = await svc.push(evaluation=svc.COLD)
    everything = {a["id"], sub["id"], south["id"], queued["id"], nurtured["id"]}
    sees = {
        org.rep_a: {a["id"]},
        org.rep_b: set(),
        org.rep_sub: {sub["id"]},
        org.rep_south: {south["id"]},
        org.manager_north: {a["id"], sub["id"], queued["id"], nurtured["id"]},
        org.manager_south: {south["id"], queued["id"], nurtured["id"]},
        org.admin: everything,
        key("leads:read"): everything,
    }
    for who, visible in sees.items():
        page = await svc.ok(await svc.get(LEADS, params={"limit": "200"}, as_=who))
        assert {i["id"] for i in page["items"]} == visible, who.name
        for lead_id in everything:
            status = (await svc.get(f"{LEADS}/{lead_id}", as_=who)).status_code
            assert status == (200 if lead_id in visible else 404), (who.name, lead_id)
    for scopes in (("leads:write",), ("opportunities:read",), ()):
        assert (await svc.get(LEADS, as_=key(*scopes))).status_code == 403
        assert (await svc.get(f"{LEADS}/{a['id']}", as_=key(*scopes))).status_code == 403
    # A page of the manager's own filter, and a foreign cursor.
    mine = await svc.ok(
        await svc.get(
            LEADS, params={"owner_id": org.rep_a.sub, "limit": "1"}, as_=org.manager_north
        )
    )
    assert [i["id"] for i in mine["items"]] == [a["id"]]
    assert (await svc.get(LEADS, params={"cursor": "nope"}, as_=org.admin)).status_code == 422
