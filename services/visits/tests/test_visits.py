"""The visit log: logged or checked in then completed, about customers the rep may see, never
in the future, the check-in's distance kept and a far one flagged, a plan item fulfilled once,
only completed visits announced."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.auth import Principal
from visits.geo import haversine_m

API = "/api/v1/visits"
PLANS = "/api/v1/visit-plans"


def key(*scopes: str) -> Principal:
    return Principal(
        sub=str(uuid.uuid4()), kind="key", role="integration", scopes=frozenset(scopes)
    )


def visit(visits: Any, customer: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "customer_id": customer["id"],
        "channel": "in_person",
        "purpose": "order_taking",
        "check_in_at": visits.at(0, 9),
        "check_out_at": visits.at(0, 9, 40),
        **kw,
    }


async def test_a_logged_visit_is_recorded_and_announced_with_what_a_consumer_needs(visits, org):
    customer = await visits.add_customer(org.rep_a, level="A", region="EAST")
    resp = await visits.post(
        API,
        json=visit(
            visits,
            customer,
            check_in_location={**visits.HERE, "accuracy_m": 12.5},
            effective=True,
            order_taken=True,
            order_amount="1250.50",
            collected_amount="300",
            memo="Needs toner by Friday",
            next_step="send quote",
            next_visit_on=visits.day(7),
            expenses=[
                {"category": "taxi", "amount": "35.20"},
                {"category": "lunch", "amount": "40"},
            ],
            competitor_news="Rival cut prices 5%",
            customer_feedback="happy with delivery",
        ),
        as_=org.rep_a,
    )
    assert resp.status_code == 201, resp.text
    v = resp.json()
    assert resp.headers["location"] == f"{API}/{v['id']}" and resp.headers["etag"] == '"1"'
    assert v["status"] == "completed" and v["rep_id"] == org.rep_a.sub
    assert v["team_id"] == org.team_north and v["visit_date"] == visits.day(0)
    assert v["check_in_at"] == visits.at(0, 9) and v["check_out_at"] == visits.at(0, 9, 40)
    assert v["check_in_location"] == {**visits.HERE, "accuracy_m": 12.5}
    assert v["distance_m"] == 0.0 and v["far_from_customer"] is False
    assert v["order_amount"] == "1250.50" and v["collected_amount"] == "300.00"
    assert v["expenses_total"] == "75.20"
    # Money is answered at its scale, whatever scale it was sent with.
    assert v["expenses"] == [
        {"category": "taxi", "amount": "35.20"},
        {"category": "lunch", "amount": "40.00"},
    ]
    assert v["customer_code"] == customer["code"] and v["customer_status"] == "active"
    assert (await visits.get(f"{API}/{v['id']}", as_=org.rep_a)).json() == v
    # A list answers its rows as they are: the same fields, written the same way.
    listed = await visits.get(API, params={"rep_id": org.rep_a.sub}, as_=org.rep_a)
    assert listed.json() == {"items": [v], "next_cursor": None}
    assert listed.content.startswith(b'{"items":[' + resp.content)

    (event,) = await visits.events({"visit.completed"})
    data = event.data
    assert event.subject == v["id"]
    expected = {
        "id": v["id"],
        "customer_id": customer["id"],
        "customer_code": customer["code"],
        "customer_name": customer["name"],
        "customer_owner_id": org.rep_a.sub,
        "customer_team_id": org.team_north,
        "rep_id": org.rep_a.sub,
        "rep_name": org.rep_a.name,
        "team_id": org.team_north,
        "region": "EAST",
        "level": "A",
        "customer_status": "active",
        "purpose": "order_taking",
        "channel": "in_person",
        "effective": True,
        "order_taken": True,
        "order_amount": "1250.50",
        "collected_amount": "300.00",
        "expenses_total": "75.20",
        "check_in_at": visits.at(0, 9).replace("Z", "+00:00"),
        "check_out_at": visits.at(0, 9, 40).replace("Z", "+00:00"),
        "visit_date": visits.day(0),
        "memo": "Needs toner by Friday",
        "next_visit_on": visits.day(7),
        "distance_m": 0.0,
        "far_from_customer": False,
    }
    assert {k: data[k] for k in expected} == expected


async def test_a_far_check_in_is_flagged_not_refused(visits, org):
    placed = await visits.add_customer(org.rep_a)
    unplaced = await visits.add_customer(org.rep_a, location=None)
    far = await visits.ok(
        "POST", API, 201, json=visit(visits, placed, check_in_location=visits.FAR), as_=org.rep_a
    )
    assert far["far_from_customer"] is True and 1000 < far["distance_m"] < 1200
    # Computed in SQL by the insert, the same figure as the formula's (a PATCH uses that).
    here, there = visits.HERE, visits.FAR
    assert far["distance_m"] == round(
        haversine_m(there["lat"], there["lon"], here["lat"], here["lon"]), 1
    )
    # The answer is the visit as stored (no money: zero at the money's scale).
    assert far["order_amount"] == far["collected_amount"] == far["expenses_total"] == "0.00"
    assert (await visits.ok("GET", f"{API}/{far['id']}", as_=org.rep_a)) == far
    near = await visits.ok(
        "POST",
        API,
        201,
        json=visit(visits, placed, check_in_location={"lat": 31.2334, "lon": 121.4737}),
        as_=org.rep_a,
    )
    assert near["far_from_customer"] is False and 300 < near["distance_m"] < 400
    nowhere = await visits.ok(
        "POST", API, 201, json=visit(visits, unplaced, check_in_location=visits.FAR), as_=org.rep_a
    )
    assert nowhere["distance_m"] is None and nowhere["far_from_customer"] is False
    events = {e.data["id"]: e.data for e in await visits.events({"visit.completed"})}
    assert events[far["id"]]["far_from_customer"] is True
    assert events[far["id"]]["distance_m"] == far["distance_m"]


async def test_check_in_then_complete_or_cancel(visits, org):
    customer = await visits.add_customer(org.rep_a)
    body = visit(
        visits, customer, status="planned", check_out_at=None, check_in_location=visits.HERE
    )
    planned = await visits.ok("POST", API, 201, json=body, as_=org.rep_a)
    assert planned["status"] == "planned" and planned["check_out_at"] is None
    assert await visits.events() == []  # nothing counts until completed
    path = f"{API}/{planned['id']}"

    # Edit while planned: If-Match required and current.
    assert (await visits.patch(path, json={"memo": "x"}, as_=org.rep_a)).status_code == 428
    resp = await visits.patch(path, json={"memo": "x"}, headers={"If-Match": '"7"'}, as_=org.rep_a)
    assert resp.status_code == 412
    edited = await visits.ok(
        "PATCH", path, json={"memo": "first notes"}, headers={"If-Match": '"1"'}, as_=org.rep_a
    )
    assert edited["memo"] == "first notes" and edited["version"] == 2

    no_out = await visits.post(f"{path}/complete", json={"effective": True}, as_=org.rep_a)
    assert no_out.status_code == 422 and no_out.json()["errors"][0]["loc"] == ["check_out_at"]
    done = await visits.ok(
        "POST",
        f"{path}/complete",
        json={"check_out_at": visits.at(0, 10), "effective": True, "memo": "agreed next order"},
        as_=org.rep_a,
    )
    assert done["status"] == "completed" and done["effective"] is True
    assert done["memo"] == "agreed next order" and done["completed_at"] is not None
    (event,) = await visits.events({"visit.completed"})
    assert event.data["memo"] == "agreed next order" and event.data["effective"] is True

    # Final: no more edits, completion or cancellation.
    for method, sub, body2 in (
        ("POST", "/complete", {"check_out_at": visits.at(0, 11)}),
        ("POST", "/cancel", {"reason": "oops"}),
        ("PATCH", "", {"memo": "later"}),
    ):
        resp = await visits.request(
            method, path + sub, json=body2, headers={"If-Match": '"3"'}, as_=org.rep_a
        )
        assert resp.status_code == 409, (sub, resp.text)

    other = await visits.ok(
        "POST", API, 201, json={**body, "check_in_at": visits.at(0, 11)}, as_=org.rep_a
    )
    no_reason = await visits.post(f"{API}/{other['id']}/cancel", json={}, as_=org.rep_a)
    assert no_reason.status_code == 422
    cancelled = await visits.ok(
        "POST", f"{API}/{other['id']}/cancel", json={"reason": "customer closed"}, as_=org.rep_a
    )
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "customer closed"
    (gone,) = await visits.events({"visit.cancelled"})
    assert gone.data["id"] == other["id"] and gone.data["reason"] == "customer closed"
    assert gone.data["customer_id"] == customer["id"]


async def test_a_visit_fulfils_its_approved_plan_item_once(visits, org):
    customer = await visits.add_customer(org.rep_a)
    other = await visits.add_customer(org.rep_a)
    plan = await visits.ok(
        "POST",
        PLANS,
        201,
        json={
            "plan_date": visits.day(0),
            "items": [
                {
                    "customer_id": customer["id"],
                    "slot_start": visits.at(0, 9),
                    "slot_end": visits.at(0, 10),
                    "purpose": "order_taking",
                }
            ],
        },
        as_=org.rep_a,
    )
    item_id = plan["items"][0]["id"]
    body = visit(visits, customer, plan_item_id=item_id)
    # Not approved yet.
    resp = await visits.post(API, json=body, as_=org.rep_a)
    assert resp.status_code == 422 and "approved" in resp.json()["detail"]
    await visits.ok("POST", f"{PLANS}/{plan['id']}/submit", as_=org.rep_a)
    await visits.ok("POST", f"{PLANS}/{plan['id']}/approve", as_=org.manager_north)

    # Another rep cannot use it; another customer does not match it.
    rep_b_customer = await visits.add_customer(org.rep_b)
    resp = await visits.post(
        API, json=visit(visits, rep_b_customer, plan_item_id=item_id), as_=org.rep_b
    )
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"] == ["plan_item_id"]
    resp = await visits.post(API, json=visit(visits, other, plan_item_id=item_id), as_=org.rep_a)
    assert resp.status_code == 422

    first = await visits.ok("POST", API, 201, json=body, as_=org.rep_a)
    later = {**body, "check_in_at": visits.at(0, 11), "check_out_at": visits.at(0, 12)}
    second = await visits.post(API, json=later, as_=org.rep_a)
    assert second.status_code == 409 and second.json()["type"] == "/problems/plan-item-fulfilled"
    got = await visits.ok("GET", f"{PLANS}/{plan['id']}", as_=org.rep_a)
    assert got["items"][0]["visit_id"] == first["id"] and got["items"][0]["fulfilled"] is True
    (event,) = await visits.events({"visit.completed"})
    assert event.data["plan_item_id"] == item_id and event.data["plan_id"] == plan["id"]


async def test_a_cancelled_visit_frees_its_plan_item(visits, org):
    customer = await visits.add_customer(org.rep_a)
    plan = await visits.ok(
        "POST",
        PLANS,
        201,
        json={
            "plan_date": visits.day(0),
            "items": [
                {
                    "customer_id": customer["id"],
                    "slot_start": visits.at(0, 9),
                    "slot_end": visits.at(0, 10),
                    "purpose": "service",
                }
            ],
        },
        as_=org.rep_a,
    )
    await visits.ok("POST", f"{PLANS}/{plan['id']}/submit", as_=org.rep_a)
    await visits.ok("POST", f"{PLANS}/{plan['id']}/approve", as_=org.admin)
    item_id = plan["items"][0]["id"]
    body = visit(visits, customer, plan_item_id=item_id, status="planned", check_out_at=None)
    started = await visits.ok("POST", API, 201, json=body, as_=org.rep_a)
    await visits.ok(
        "POST", f"{API}/{started['id']}/cancel", json={"reason": "no one in"}, as_=org.rep_a
    )
    again = await visits.ok(
        "POST", API, 201, json=visit(visits, customer, plan_item_id=item_id), as_=org.rep_a
    )
    assert again["plan_item_id"] == item_id


async def test_bad_input_is_a_422_problem_and_writes_nothing(visits, org, clock):
    customer = await visits.add_customer(org.rep_a)
    theirs = await visits.add_customer(org.rep_b)
    future = clock.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    cases: list[tuple[dict[str, Any], str]] = [
        (visit(visits, customer, check_out_at=visits.at(0, 8)), "check_out_at"),
        (
            visit(visits, customer, check_in_at=visits.at(1, 9), check_out_at=visits.at(1, 10)),
            "check_in_at",
        ),
        (visit(visits, customer, check_out_at=visits.at(0, 23)), "check_out_at"),
        (visit(visits, customer, order_taken=True, order_amount="-1"), "order_amount"),
        (visit(visits, customer, collected_amount="-0.01"), "collected_amount"),
        (visit(visits, customer, collected_amount="1e40"), "collected_amount"),
        (visit(visits, customer, collected_amount=10**30), "collected_amount"),
        (visit(visits, customer, collected_amount="NaN"), "collected_amount"),
        # Money travels as decimal strings of cents, never as JSON numbers (read as floats).
        (visit(visits, customer, collected_amount=12.5), "collected_amount"),
        (visit(visits, customer, collected_amount="1.005"), "collected_amount"),
        (visit(visits, customer, expenses=[{"category": "taxi", "amount": 3}]), "amount"),
        (visit(visits, customer, order_taken=True), "order_amount"),
        (visit(visits, customer, order_amount="10"), "order_amount"),
        (visit(visits, customer, memo="bad\x00memo"), "memo"),
        (visit(visits, customer, next_visit_on="2026-02-30"), "next_visit_on"),
        (visit(visits, customer, next_visit_on="9999-12-31"), "next_visit_on"),
        (visit(visits, customer, check_in_at="2026-03-11T09:00:00"), "check_in_at"),
        (visit(visits, customer, check_in_at="yesterday"), "check_in_at"),
        (visit(visits, customer, check_in_location={"lat": 91, "lon": 0}), "lat"),
        (visit(visits, customer, check_in_location={"lat": 0, "lon": 181}), "lon"),
        (visit(visits, customer, expenses=[{"category": "", "amount": "1"}]), "category"),
        (visit(visits, customer, channel="pigeon"), "channel"),
        (visit(visits, customer, status="cancelled"), "status"),
        (visit(visits, theirs), "customer_id"),
        (visit(visits, {"id": str(uuid.uuid4())}), "customer_id"),
        ({**visit(visits, customer), "surprise": 1}, "surprise"),
        (visit(visits, customer, plan_item_id=str(uuid.uuid4())), "plan_item_id"),
    ]
    assert future  # the clock's now is the edge of the allowed
    for body, field in cases:
        resp = await visits.post(API, json=body, as_=org.rep_a)
        assert resp.status_code == 422, (field, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        locs = [e["loc"] for e in resp.json().get("errors", [])]
        assert any(field in [str(p) for p in loc] for loc in locs), (field, resp.json())
    head = (
        f'{{"customer_id": "{customer["id"]}", "channel": "phone", "purpose": "service", '
        '"check_in_at": "2026-03-11T01:00:00Z", '
    )
    for tail in (
        '"memo": "\\u0000"}',  # NUL escaped in JSON
        '"check_in_location": {"lat": 1, "lon": Infinity}}',
        '"check_in_location": {"lat": NaN, "lon": 1}}',
        '"collected_amount": 1e999}',
        '"collected_amount": 123456789012345678901234567890}',
    ):
        raw = await visits.client.post(
            API,
            content=(head + tail).encode(),
            headers={**visits.headers(org.rep_a), "content-type": "application/json"},
        )
        assert raw.status_code == 422, (tail, raw.text)
    assert (await visits.ok("GET", API, as_=org.rep_a))["items"] == []
    assert await visits.events() == []


async def test_who_sees_and_writes_which_visits(visits, org):
    customer = await visits.add_customer(org.rep_a)
    mine = await visits.ok("POST", API, 201, json=visit(visits, customer), as_=org.rep_a)
    planned = await visits.ok(
        "POST",
        API,
        201,
        json=visit(
            visits, customer, status="planned", check_out_at=None, check_in_at=visits.at(0, 11)
        ),
        as_=org.rep_a,
    )
    path = f"{API}/{mine['id']}"
    for outsider in (org.rep_b, org.rep_sub, org.rep_south, org.manager_south):
        assert (await visits.get(path, as_=outsider)).status_code == 404
    for insider in (org.manager_north, org.admin, key("visits:read")):
        assert (await visits.get(path, as_=insider)).status_code == 200
    assert (await visits.get(path, as_=key("customers:read"))).status_code == 403
    # The manager reads but does not write the rep's visits; a read-only key neither.
    done = {"check_out_at": visits.at(0, 11, 30)}
    ppath = f"{API}/{planned['id']}"
    assert (
        await visits.post(f"{ppath}/complete", json=done, as_=org.manager_north)
    ).status_code == 403
    assert (
        await visits.post(f"{ppath}/complete", json=done, as_=key("visits:read"))
    ).status_code == 403
    assert (await visits.post(f"{ppath}/complete", json=done, as_=org.rep_b)).status_code == 404

    # Lists follow the same rule.
    async def seen(principal: Principal, **params: Any) -> set[str]:
        page = await visits.ok("GET", API, params=params, as_=principal)
        return {v["id"] for v in page["items"]}

    both = {mine["id"], planned["id"]}
    assert await seen(org.rep_a) == both
    assert await seen(org.rep_b) == set()
    assert await seen(org.rep_b, rep_id=org.rep_a.sub) == set()
    assert await seen(org.manager_north) == both
    assert await seen(org.manager_south) == set()
    assert await seen(org.manager_north, rep_id=org.rep_a.sub, status="planned") == {planned["id"]}

    # Who logs for whom: an integration key names the rep; a manager cannot log for a rep.
    writer = key("visits:write")
    resp = await visits.post(API, json=visit(visits, customer), as_=writer)
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"] == ["rep_id"]
    logged = await visits.ok(
        "POST", API, 201, json=visit(visits, customer, rep_id=org.rep_a.sub), as_=writer
    )
    assert logged["rep_id"] == org.rep_a.sub and logged["team_id"] == org.team_north
    resp = await visits.post(
        API, json=visit(visits, customer, rep_id=org.rep_a.sub), as_=org.manager_north
    )
    assert resp.status_code == 422
    assert (
        await visits.post(API, json=visit(visits, customer), as_=key("visits:read"))
    ).status_code == 403


async def test_who_logs_visits_to_which_customers(visits, org):
    """The customer read model's rule decides whom a visit may be about: a rep their own and
    the pool's, a manager also their teams' (their own visit), an admin or a key every one;
    any other customer is the same 422 as one never heard of, and nothing is written."""
    mine = await visits.add_customer(org.rep_a)
    pool = await visits.add_customer(None)
    sub = await visits.add_customer(org.rep_sub)
    for who, customer in (
        (org.rep_a, mine),
        (org.rep_b, pool),
        (org.manager_north, mine),
        (org.manager_north, sub),
        (org.manager_south, pool),
        (org.admin, sub),
    ):
        logged = await visits.ok("POST", API, 201, json=visit(visits, customer), as_=who)
        assert logged["customer_code"] == customer["code"], (who.name, customer["code"])
    logged = await visits.ok(
        "POST", API, 201, json=visit(visits, sub, rep_id=org.rep_a.sub), as_=key("visits:write")
    )
    assert logged["rep_id"] == org.rep_a.sub
    written = len(await visits.events({"visit.completed"}))
    for who, customer in (
        (org.rep_b, mine),
        (org.rep_a, sub),
        (org.manager_south, mine),
        (org.rep_south, sub),
    ):
        resp = await visits.post(API, json=visit(visits, customer), as_=who)
        assert resp.status_code == 422, (who.name, customer["code"], resp.text)
        assert resp.json()["errors"][0]["loc"] == ["customer_id"]
    # Another fault besides: the customer's refusal still comes first, as it names nothing.
    both = visit(visits, mine, check_out_at=visits.at(0, 8))
    resp = await visits.post(API, json=both, as_=org.rep_b)
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"] == ["customer_id"]
    assert len(await visits.events({"visit.completed"})) == written


async def test_a_logged_visit_is_written_by_one_statement_alone(visits, org):
    """The visit, the customer's last contact and the event are one statement, sent without
    BEGIN and COMMIT; with an Idempotency-Key it joins the key's transaction."""
    from sqlalchemy import event

    customer = await visits.add_customer(org.rep_a)
    seen: list[tuple[str, bool]] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(
            (statement.split()[0].upper(), conn.connection.driver_connection.is_in_transaction())
        )

    engine = visits.app.state.db.engine.sync_engine
    event.listen(engine, "after_cursor_execute", record)
    try:
        await visits.ok("POST", API, 201, json=visit(visits, customer), as_=org.rep_a)
        alone, seen[:] = list(seen), []
        await visits.ok(
            "POST",
            API,
            201,
            json=visit(
                visits, customer, check_in_at=visits.at(0, 11), check_out_at=visits.at(0, 12)
            ),
            headers={"Idempotency-Key": "one-statement"},
            as_=org.rep_a,
        )
    finally:
        event.remove(engine, "after_cursor_execute", record)
    assert alone == [("WITH", False)]
    assert ("WITH", True) in seen
    assert len(await visits.events({"visit.completed"})) == 2
    assert visits.app.state.db.engine.pool.checkedout() == 0


async def test_a_reps_month_in_pages_newest_first(visits, org, clock):
    customer = await visits.add_customer(org.rep_a)
    clock.advance(days=40)
    for offset in range(0, 35, 3):
        await visits.ok(
            "POST",
            API,
            201,
            json=visit(
                visits,
                customer,
                check_in_at=visits.at(offset, 9),
                check_out_at=visits.at(offset, 10),
            ),
            as_=org.rep_a,
        )
    params = {"rep_id": org.rep_a.sub, "from": visits.day(1), "to": visits.day(30), "limit": 4}
    first = await visits.ok("GET", API, params=params, as_=org.manager_north)
    dates = [v["visit_date"] for v in first["items"]]
    assert dates == [visits.day(30), visits.day(27), visits.day(24), visits.day(21)]
    walked = list(dates)
    cursor = first["next_cursor"]
    while cursor:
        page = await visits.ok(
            "GET", API, params={**params, "cursor": cursor}, as_=org.manager_north
        )
        walked += [v["visit_date"] for v in page["items"]]
        cursor = page["next_cursor"]
    assert walked == [visits.day(d) for d in range(30, 0, -3)]


async def test_the_customer_status_at_the_time_goes_with_the_visit(visits, org):
    customer = await visits.add_customer(org.rep_a)
    await visits.ok("POST", API, 201, json=visit(visits, customer), as_=org.rep_a)
    # The customers service marks it dormant (issue 13's status, carried as the feed says).
    await visits.add_customer(
        org.rep_a,
        event="customer.updated",
        customer_id=uuid.UUID(customer["id"]),
        **{k: v for k, v in customer.items() if k not in ("id", "status", "version")},
        status="dormant",
        version=2,
    )
    await visits.ok(
        "POST",
        API,
        201,
        json=visit(visits, customer, check_in_at=visits.at(0, 11), check_out_at=visits.at(0, 12)),
        as_=org.rep_a,
    )
    statuses = [e.data["customer_status"] for e in await visits.events({"visit.completed"})]
    assert statuses == ["active", "dormant"]


async def test_a_retried_log_makes_one_visit(visits, org):
    customer = await visits.add_customer(org.rep_a)
    headers = {"Idempotency-Key": "visit-1"}
    first = await visits.post(API, json=visit(visits, customer), headers=headers, as_=org.rep_a)
    again = await visits.post(API, json=visit(visits, customer), headers=headers, as_=org.rep_a)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert len(await visits.events({"visit.completed"})) == 1
    changed = await visits.post(
        API, json=visit(visits, customer, memo="other"), headers=headers, as_=org.rep_a
    )
    assert changed.status_code == 422
