"""The follow-up due list: active customers whose last effective visit is older than their
level's cadence, or never visited; A first, then the most overdue; the cadence as the
customers service's settings say."""

from __future__ import annotations

from typing import Any

API = "/api/v1/visits"
FOLLOW_UPS = f"{API}/follow-ups"


async def log(visits: Any, rep: Any, customer: dict[str, Any], days_ago: int, **kw: Any) -> None:
    body = {
        "customer_id": customer["id"],
        "channel": "phone",
        "purpose": "service",
        "check_in_at": visits.at(-days_ago, 9),
        "check_out_at": visits.at(-days_ago, 9, 20),
        "effective": True,
        **kw,
    }
    await visits.ok("POST", API, 201, json=body, as_=rep)


async def test_the_list_orders_by_level_then_lateness(visits, org):
    a_late = await visits.add_customer(org.rep_a, level="A", name="A late")
    await visits.add_customer(org.rep_a, level="A", name="A never")
    b_later = await visits.add_customer(org.rep_a, level="B", name="B later")
    b_fresh = await visits.add_customer(org.rep_a, level="B", name="B fresh")
    c_ineffective = await visits.add_customer(org.rep_a, level="C", name="C ineffective")
    await visits.add_customer(org.rep_a, level="A", status="invalid", name="invalid")
    await visits.add_customer(org.rep_b, level="A", name="rep b's")
    await log(visits, org.rep_a, a_late, 10)
    await log(visits, org.rep_a, a_late, 12)  # an older one changes nothing
    await log(visits, org.rep_a, b_later, 20)
    await log(visits, org.rep_a, b_later, 3, effective=False)  # not effective: not counted
    await log(visits, org.rep_a, b_fresh, 5)
    await log(visits, org.rep_a, c_ineffective, 40, effective=False)

    page = await visits.ok("GET", FOLLOW_UPS, as_=org.rep_a)
    names = [i["customer_name"] for i in page["items"]]
    assert names == ["A never", "A late", "B later", "C ineffective"]
    by_name = {i["customer_name"]: i for i in page["items"]}
    late = by_name["A late"]
    assert late["cadence_days"] == 7 and late["last_effective_on"] == visits.day(-10)
    assert late["due_on"] == visits.day(-3) and late["days_overdue"] == 3
    assert late["never_visited"] is False and late["customer_code"] == a_late["code"]
    assert by_name["A never"]["never_visited"] is True
    assert by_name["A never"]["due_on"] is None and by_name["A never"]["days_overdue"] is None
    later = by_name["B later"]
    assert later["days_overdue"] == 6 and later["last_effective_on"] == visits.day(-20)
    assert later["last_visit_at"] == visits.at(-3, 9)  # the last visit, effective or not
    ineffective = by_name["C ineffective"]
    assert ineffective["never_visited"] is False and ineffective["due_on"] is None

    # Looking ahead: what falls due within ten days.
    ahead = await visits.ok("GET", FOLLOW_UPS, params={"due_before": visits.day(10)}, as_=org.rep_a)
    assert "B fresh" in [i["customer_name"] for i in ahead["items"]]
    assert b_fresh["id"] in [i["customer_id"] for i in ahead["items"]]

    # The customers service changes the cadence: A every 12 days puts "A late" back in time.
    await visits.feed_event(
        "customers",
        "customer_settings.changed",
        cadence_days={"A": 12, "B": 14, "C": 30},
        version=2,
    )
    page = await visits.ok("GET", FOLLOW_UPS, as_=org.rep_a)
    assert [i["customer_name"] for i in page["items"]] == ["A never", "B later", "C ineffective"]

    # Pages walk the same order.
    first = await visits.ok("GET", FOLLOW_UPS, params={"limit": 2}, as_=org.rep_a)
    rest = await visits.ok(
        "GET", FOLLOW_UPS, params={"limit": 2, "cursor": first["next_cursor"]}, as_=org.rep_a
    )
    walked = [i["customer_name"] for i in first["items"] + rest["items"]]
    assert walked == ["A never", "B later", "C ineffective"] and rest["next_cursor"] is None


async def test_whose_list_each_one_sees(visits, org):
    mine = await visits.add_customer(org.rep_a, level="A")
    sub = await visits.add_customer(org.rep_sub, level="B")
    south = await visits.add_customer(org.rep_south, level="A")
    pool = await visits.add_customer(None, level="A")

    async def ids(principal: Any, **params: Any) -> set[str]:
        page = await visits.ok("GET", FOLLOW_UPS, params=params, as_=principal)
        return {i["customer_id"] for i in page["items"]}

    assert await ids(org.rep_a) == {mine["id"]}
    assert await ids(org.rep_sub) == {sub["id"]}
    assert await ids(org.manager_north) == {mine["id"], sub["id"]}
    assert await ids(org.manager_north, rep_id=org.rep_sub.sub) == {sub["id"]}
    assert await ids(org.manager_south) == {south["id"]}
    assert await ids(org.admin) == {mine["id"], sub["id"], south["id"], pool["id"]}
    # Another rep's list is not theirs to read.
    assert await ids(org.rep_b, rep_id=org.rep_a.sub) == set()
    assert await ids(org.manager_south, rep_id=org.rep_a.sub) == set()
    bad = await visits.get(FOLLOW_UPS, params={"due_before": "2026-13-01"}, as_=org.rep_a)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "due_before"]
