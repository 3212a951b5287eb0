"""Daily sales reports: figures derived from the visit log (live, then frozen at submission),
typed fields from the rep, signed off or returned by the rep's manager, and the list of reps
who have not reported once the day's deadline has passed."""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.auth import Principal

API = "/api/v1/daily-reports"
VISITS = "/api/v1/visits"
PLANS = "/api/v1/visit-plans"


async def log(visits: Any, rep: Any, customer: dict[str, Any], hour: int, **kw: Any) -> Any:
    body = {
        "customer_id": customer["id"],
        "channel": "in_person",
        "purpose": "service",
        "check_in_at": visits.at(kw.pop("offset", 0), hour),
        "check_out_at": visits.at(0, hour, 30) if kw.get("status") != "planned" else None,
        **kw,
    }
    return await visits.ok("POST", VISITS, 201, json=body, as_=rep)


async def test_the_reports_figures_are_the_visit_logs(visits, org):
    c1 = await visits.add_customer(org.rep_a)
    c2 = await visits.add_customer(org.rep_a)
    plan = await visits.ok(
        "POST",
        PLANS,
        201,
        json={
            "plan_date": visits.day(0),
            "items": [
                {
                    "customer_id": c["id"],
                    "slot_start": visits.at(0, h),
                    "slot_end": visits.at(0, h + 1),
                    "purpose": "service",
                }
                for c, h in ((c1, 9), (c2, 11))
            ],
        },
        as_=org.rep_a,
    )
    await visits.ok("POST", f"{PLANS}/{plan['id']}/submit", as_=org.rep_a)
    await visits.ok("POST", f"{PLANS}/{plan['id']}/approve", as_=org.manager_north)
    await log(
        visits,
        org.rep_a,
        c1,
        9,
        effective=True,
        order_taken=True,
        order_amount="100.50",
        collected_amount="20",
        plan_item_id=plan["items"][0]["id"],
    )
    await log(visits, org.rep_a, c2, 13, effective=True, check_in_location=visits.FAR)
    await log(visits, org.rep_a, c2, 14, collected_amount="5.25")
    await log(visits, org.rep_a, c1, 15, status="planned")  # not completed: not counted
    cancelled = await log(visits, org.rep_a, c1, 16, status="planned")
    await visits.ok(
        "POST", f"{VISITS}/{cancelled['id']}/cancel", json={"reason": "x"}, as_=org.rep_a
    )
    await log(visits, org.rep_a, c1, 10, offset=-1, check_out_at=visits.at(-1, 11))  # yesterday
    other = await visits.add_customer(org.rep_b)
    await log(visits, org.rep_b, other, 9, effective=True)  # another rep

    expected = {
        "visits_completed": 3,
        "effective_visits": 2,
        "visits_with_order": 1,
        "order_amount": "100.50",
        "collected_amount": "25.25",
        "complaints_raised": 0,
        "far_check_ins": 1,
        "planned_items": 2,
        "fulfilled_items": 1,
        "plan_adherence": 0.5,
    }
    live = await visits.ok("GET", f"{API}/days/{visits.day(0)}", as_=org.rep_a)
    assert live["status"] == "not_submitted" and live["id"] is None
    assert live["figures"] == expected and live["figures_frozen"] is False
    assert (
        await visits.ok(
            "GET",
            f"{API}/days/{visits.day(0)}",
            params={"rep_id": org.rep_a.sub},
            as_=org.manager_north,
        )
    )["figures"] == expected

    resp = await visits.post(
        API,
        json={
            "report_date": visits.day(0),
            "attendance": "present",
            "competitor_info": "Rival opened a shop nearby",
            "customer_feedback": "prices too high",
            "lessons": "call before going",
            "tomorrow_focus": "collections",
            "mood": 4,
        },
        as_=org.rep_a,
    )
    assert resp.status_code == 201, resp.text
    report = resp.json()
    assert resp.headers["location"] == f"{API}/{report['id']}"
    assert report["status"] == "submitted" and report["figures"] == expected
    assert report["figures_frozen"] is True and report["mood"] == 4

    # Frozen: a visit logged afterwards does not change the submitted report.
    await log(visits, org.rep_a, c2, 17, effective=True)
    again = await visits.ok("GET", f"{API}/{report['id']}", as_=org.rep_a)
    assert again["figures"] == expected
    assert (await visits.ok("GET", f"{API}/days/{visits.day(0)}", as_=org.rep_a))["id"] == report[
        "id"
    ]

    (event,) = await visits.events({"daily_report.submitted"})
    assert event.subject == report["id"]
    data = event.data
    assert data["rep_id"] == org.rep_a.sub and data["team_id"] == org.team_north
    assert data["report_date"] == visits.day(0) and data["figures"] == expected
    assert data["mood"] == 4 and data["lessons"] == "call before going"
    assert data["resubmitted"] is False


async def test_sign_off_return_and_resubmission(visits, org):
    customer = await visits.add_customer(org.rep_sub)
    report = await visits.ok("POST", API, 201, json={"report_date": visits.day(0)}, as_=org.rep_sub)
    path = f"{API}/{report['id']}"
    assert (await visits.post(f"{path}/sign-off", as_=org.rep_sub)).status_code == 403
    assert (await visits.post(f"{path}/sign-off", as_=org.manager_south)).status_code == 404
    assert (await visits.get(path, as_=org.rep_a)).status_code == 404
    returned = await visits.ok(
        "POST", f"{path}/return", json={"comment": "log your visits first"}, as_=org.manager_north
    )
    assert returned["status"] == "returned" and returned["comment"] == "log your visits first"
    assert returned["figures_frozen"] is False  # live again until submitted

    await log(visits, org.rep_sub, customer, 10, effective=True)
    # Only the rep changes it, If-Match required and current.
    body = {"lessons": "log as I go", "mood": 2}
    assert (await visits.patch(path, json=body, as_=org.rep_sub)).status_code == 428
    stale = await visits.patch(path, json=body, headers={"If-Match": '"1"'}, as_=org.rep_sub)
    assert stale.status_code == 412
    resp = await visits.patch(
        path, json=body, headers={"If-Match": f'"{returned["version"]}"'}, as_=org.manager_north
    )
    assert resp.status_code == 403
    edited = await visits.ok(
        "PATCH",
        path,
        json=body,
        headers={"If-Match": f'"{returned["version"]}"'},
        as_=org.rep_sub,
    )
    assert edited["lessons"] == "log as I go" and edited["mood"] == 2
    resubmitted = await visits.ok("POST", f"{path}/submit", as_=org.rep_sub)
    assert resubmitted["status"] == "submitted" and resubmitted["figures_frozen"] is True
    assert resubmitted["figures"]["visits_completed"] == 1
    signed = await visits.ok(
        "POST", f"{path}/sign-off", json={"comment": "better"}, as_=org.manager_north
    )
    assert signed["status"] == "signed_off" and signed["decided_by"] == org.manager_north.sub
    # Signed off is final.
    assert (
        await visits.post(f"{path}/return", json={"comment": "x"}, as_=org.admin)
    ).status_code == 409
    assert (await visits.post(f"{path}/submit", as_=org.rep_sub)).status_code == 409

    submitted = await visits.events({"daily_report.submitted"})
    assert [e.data["resubmitted"] for e in submitted] == [False, True]
    assert submitted[1].data["figures"]["visits_completed"] == 1
    (ret,) = await visits.events({"daily_report.returned"})
    assert ret.data["comment"] == "log your visits first"
    (off,) = await visits.events({"daily_report.signed_off"})
    assert off.data["comment"] == "better" and off.data["decided_by"] == org.manager_north.sub


async def test_bad_reports_are_refused(visits, org):
    for body, field in (
        ({"report_date": visits.day(1)}, "report_date"),
        ({"report_date": visits.day(0), "mood": 6}, "mood"),
        ({"report_date": visits.day(0), "mood": 10**40}, "mood"),
        ({"report_date": visits.day(0), "attendance": "beach"}, "attendance"),
        ({"report_date": visits.day(0), "lessons": "\x00"}, "lessons"),
        ({"report_date": "2026-02-29"}, "report_date"),
        ({}, "report_date"),
    ):
        resp = await visits.post(API, json=body, as_=org.rep_a)
        assert resp.status_code == 422, (body, resp.text)
        assert any(field in map(str, e["loc"]) for e in resp.json()["errors"]), resp.json()
    first = await visits.ok("POST", API, 201, json={"report_date": visits.day(0)}, as_=org.rep_a)
    dup = await visits.post(API, json={"report_date": visits.day(0)}, as_=org.rep_a)
    assert dup.status_code == 409 and dup.json()["existing_id"] == first["id"]
    key = Principal(
        sub=str(uuid.uuid4()), kind="key", role="integration", scopes=frozenset({"visits:write"})
    )
    assert (
        await visits.post(API, json={"report_date": visits.day(-1)}, as_=key)
    ).status_code == 403
    listed = await visits.ok("GET", API, as_=key)
    assert [r["id"] for r in listed["items"]] == [first["id"]]
    assert (await visits.ok("GET", API, as_=org.rep_b))["items"] == []
    assert len((await visits.ok("GET", API, as_=org.manager_north))["items"]) == 1
    assert (await visits.ok("GET", API, as_=org.manager_south))["items"] == []
    assert len(await visits.events({"daily_report.submitted"})) == 1


async def test_missing_reports_after_the_deadline(visits, org, clock):
    await visits.ok("POST", API, 201, json={"report_date": visits.day(0)}, as_=org.rep_a)
    returned = await visits.ok(
        "POST", API, 201, json={"report_date": visits.day(0)}, as_=org.rep_sub
    )
    await visits.ok(
        "POST", f"{API}/{returned['id']}/return", json={"comment": "redo"}, as_=org.manager_north
    )
    # 18:00 in Shanghai: the deadline (20:00) has not passed, nobody is missing yet.
    early = await visits.ok("GET", f"{API}/missing", as_=org.manager_north)
    assert early["items"] == [] and early["deadline_passed"] is False
    assert early["deadline"] == visits.at(0, 20) and early["working_day"] is True

    clock.advance(hours=2, seconds=1)
    late = await visits.ok("GET", f"{API}/missing", as_=org.manager_north)
    assert late["deadline_passed"] is True
    assert {(i["rep_id"], i["status"]) for i in late["items"]} == {
        (org.rep_b.sub, "missing"),
        (org.rep_sub.sub, "returned"),
    }
    assert {i["rep_name"] for i in late["items"]} == {"Rep B", "Rep Sub"}
    south = await visits.ok("GET", f"{API}/missing", as_=org.manager_south)
    assert [i["rep_id"] for i in south["items"]] == [org.rep_south.sub]
    everyone = await visits.ok(
        "GET", f"{API}/missing", params={"date": visits.day(0)}, as_=org.admin
    )
    assert len(everyone["items"]) == 3
    # Yesterday nobody reported; a Saturday is no working day.
    yesterday = await visits.ok(
        "GET", f"{API}/missing", params={"date": visits.day(-1)}, as_=org.manager_north
    )
    assert len(yesterday["items"]) == 3
    saturday = await visits.ok(
        "GET", f"{API}/missing", params={"date": visits.day(3)}, as_=org.manager_north
    )
    assert saturday["working_day"] is False and saturday["items"] == []
    assert (await visits.get(f"{API}/missing", as_=org.rep_a)).status_code == 403
    bad = await visits.get(f"{API}/missing", params={"date": "soon"}, as_=org.admin)
    assert bad.status_code == 422
