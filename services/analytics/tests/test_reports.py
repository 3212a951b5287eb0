"""The weekly team report and the periodic summary on the hand-built world of `conftest.py`,
grown here by what a week of team north also brought: a payment, a customer, a visit with
competitor news, a daily report, complaints, plans for the week after, a richer pipeline and
October's leads.

Week 2026-W46 (9 to 15 November) of team north: rep_a's visits V3 (effective, order) and V4
(effective), rep_b's V5 (not effective, with news); orders O3 (200) and O6 (120); payment P3
(50 on O3, the 11th); customer C8 created by rep_b on the 12th.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from servicekit.testing.tokens import make_principal

WEEKLY = "/api/v1/reports/weekly"
SUMMARY = "/api/v1/reports/summary"
WEEK = {"from": "2026-11-09", "to": "2026-11-16"}
METRICS = (
    "new_customers",
    "sales_amount",
    "collection_rate",
    "effective_visit_rate",
    "transaction_rate",
    "avg_sales_per_rep_per_week",
)


def D(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def case(world: Any, name: str, rep: str, raised_on: str, status: str, **more: Any) -> Any:
    """visits' `cases.events.case_facts`."""
    person = world.org.people[rep]
    return {
        "id": world[name],
        "rep_id": person.sub,
        "rep_name": rep,
        "team_id": person.team_id,
        "visit_id": None,
        "customer_id": world["C1"],
        "customer_code": "C-C1",
        "customer_name": "Customer C1",
        "region": "east",
        "level": "A",
        "customer_status": "active",
        "category": "quality",
        "severity": "high",
        "escalated": False,
        "status": status,
        "description": f"complaint {name}",
        "raised_by": person.sub,
        "raised_on": raised_on,
        "raised_at": f"{raised_on}T04:00:00+00:00",
        "reopen_count": 0,
        **more,
    }


def plan(world: Any, name: str, rep: str, day: str, status: str, items: int) -> Any:
    """visits' `plans.events.plan_facts`."""
    person = world.org.people[rep]
    return {
        "id": world[name],
        "rep_id": person.sub,
        "rep_name": rep,
        "team_id": person.team_id,
        "plan_date": day,
        "area": "east",
        "status": status,
        "version": 1,
        "item_count": items,
        "items": [
            {
                "id": world[f"{name}-{n}"],
                "customer_id": world["C1"],
                "customer_code": "C-C1",
                "purpose": "collection",
                "slot_start": None,
                "slot_end": None,
            }
            for n in range(items)
        ],
    }


def daily(world: Any, rep: str, day: str, status: str) -> Any:
    """visits' `daily.events.report_facts`."""
    person = world.org.people[rep]
    return {
        "id": world[f"report-{rep}-{day}"],
        "rep_id": person.sub,
        "rep_name": rep,
        "team_id": person.team_id,
        "report_date": day,
        "status": status,
        "attendance": "present",
        "mood": 4,
        "figures": {},
        "version": 1,
    }


async def grow(svc: Any, world: Any, p: Any) -> None:
    feeds = svc.feeds
    customer, payment, visit, lead, opportunity = (
        p.customer,
        p.payment,
        p.visit,
        p.lead,
        p.opportunity,
    )

    def say(source: str, type_: str, data: dict[str, Any], **more: Any) -> None:
        feeds.publish(type_, str(data["id"]), {**data, **more}, source=source)

    c2 = customer(world, "C2", "rep_a", created_at="2026-11-03T01:00:00+00:00")
    o3 = {
        "customer_id": c2["id"],
        "owner_id": c2["owner_id"],
        "team_id": c2["team_id"],
        "region": "east",
        "level": "B",
        "customer_code": "C-C2",
        "order_id": world["O3"],
        "order_date": "2026-11-10",
        "amount": "200.00",
    }
    feeds.publish(
        "payment.received",
        None,
        payment(world, "P3", o3, "2026-11-11", "50.00"),
        source="customers",
    )
    c8 = customer(world, "C8", "rep_b", created_at="2026-11-12T01:00:00+00:00")
    say("customers", "customer.created", c8)
    c4 = customer(world, "C4", "rep_b", level="A", region="west")
    v5 = visit(world, "V5", "rep_b", c4, "2026-11-13", effective=False, order_taken=False)
    say("visits", "visit.completed", {**v5, "competitor_news": "Acme cut prices by 10 %"})

    submitted = {
        **daily(world, "rep_a", "2026-11-11", "submitted"),
        "competitor_info": "Acme hires in the east",
        "customer_feedback": "C1 wants faster delivery",
        "lessons": None,
        "tomorrow_focus": None,
        "submitted_at": "2026-11-11T18:00:00+00:00",
        "resubmitted": False,
    }
    say("visits", "daily_report.submitted", submitted)
    # The sign-off repeats neither: they stay.
    say("visits", "daily_report.signed_off", daily(world, "rep_a", "2026-11-11", "signed_off"))
    say(
        "visits",
        "daily_report.submitted",
        {**submitted, "id": world["other-day"]},
        report_date="2026-11-02",
    )

    def raised_and_resolved(name: str, rep: str, raised_on: str, resolved_at: str) -> None:
        raised = case(world, name, rep, raised_on, "open")
        say("visits", "complaint.raised", raised)
        done = {**raised, "status": "resolved", "resolved_at": f"{resolved_at}T09:00:00+00:00"}
        say("visits", "complaint.resolved", done, resolution="replaced")

    raised_and_resolved("K1", "rep_a", "2026-11-10", "2026-11-12")
    raised_and_resolved("K2", "rep_b", "2026-11-03", "2026-11-11")
    say("visits", "complaint.raised", case(world, "K3", "rep_a", "2026-11-14", "open"))
    say("visits", "complaint.raised", case(world, "K4", "rep_south", "2026-11-10", "open"))

    say(
        "visits", "visit_plan.approved", plan(world, "next-b", "rep_b", "2026-11-17", "approved", 2)
    )
    say(
        "visits",
        "visit_plan.submitted",
        plan(world, "next-a", "rep_a", "2026-11-18", "submitted", 1),
    )
    say("visits", "visit_plan.approved", plan(world, "later", "rep_a", "2026-11-24", "approved", 1))

    # The pipeline of November beside October's (team north, all rep_a's).
    def move(name: str, created: str, left: str, to: str, at: str, **more: Any) -> None:
        opp = opportunity(world, name, "rep_a", created, to)
        say(
            "opportunities",
            "opportunity.stage_changed",
            opp,
            from_stage=left,
            to_stage=to,
            backward=False,
            at=f"{at}T01:00:00+00:00",
            **more,
        )

    move("OP3", "2026-11-02", "prospecting", "qualification", "2026-11-03")
    move("OP3", "2026-11-02", "qualification", "proposal", "2026-11-08")
    move("OP3", "2026-11-02", "proposal", "negotiation", "2026-11-20")
    move("OP4", "2026-11-02", "prospecting", "qualification", "2026-11-04")
    move("OP4", "2026-11-02", "qualification", "lost", "2026-11-09")
    move("OP5", "2026-11-02", "prospecting", "lost", "2026-11-05")
    move("OP6", "2026-10-02", "prospecting", "qualification", "2026-10-20")
    say("opportunities", "lead.received", lead(world, "L4", "rep_a", "2026-10-10", "assigned"))
    say(
        "opportunities",
        "lead.contacted",
        lead(world, "L4", "rep_a", "2026-10-10", "contacted"),
        at="2026-10-11T01:00:00+00:00",
    )
    say("opportunities", "lead.received", lead(world, "L5", "rep_a", "2026-10-12", "assigned"))
    await svc.sync_feeds()


async def target(svc: Any, org: Any, metric: str, scope: str, key: str, value: str) -> None:
    body = {"metric": metric, "period": "2026-11", "scope": scope, "scope_id": key, "value": value}
    resp = await svc.post("/api/v1/targets", json=body, as_=org.admin)
    assert resp.status_code == 201, resp.text


async def weekly(svc: Any, who: Any, team: Any, week: str = "2026-W46", **headers: str) -> Any:
    return await svc.get(
        WEEKLY, params={"team_id": str(team), "week": week}, headers=headers, as_=who
    )


async def kpi(svc: Any, org: Any, metric: str, scope: str, key: str, **period: str) -> Any:
    params = {"metric": metric, "scope": scope, "scope_id": key, **(period or WEEK)}
    resp = await svc.get("/api/v1/kpis", params=params, as_=org.admin)
    assert resp.status_code == 200, resp.text
    return resp.json()["figure"]


async def test_the_weekly_report_is_part_ones_figures_for_the_team_and_each_rep(
    analytics, world, org, payloads
):
    await grow(analytics, world, payloads)
    await target(analytics, org, "sales_amount", "team", str(org.team_north), "2000.00")
    await target(analytics, org, "sales_amount", "rep", org.rep_a.sub, "1000.00")
    resp = await weekly(analytics, org.manager_north, org.team_north)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["week"] == {"label": "2026-W46", "from": "2026-11-09", "to": "2026-11-16"}
    assert report["next_week"]["label"] == "2026-W47"

    team = report["team"]["figures"]
    for metric in METRICS:
        assert team[metric] == await kpi(analytics, org, metric, "team", str(org.team_north))
    # ... and by hand: O3 and O6; V3, V4 effective of V3, V4, V5; one order taken; C8.
    assert D(team["sales_amount"]["value"]) == Decimal("320.00")
    assert (
        team["effective_visit_rate"]["numerator"],
        team["effective_visit_rate"]["denominator"],
    ) == (2, 3)
    assert team["transaction_rate"]["numerator"] == 1
    assert team["new_customers"]["value"] == 1
    assert D(team["collections"]["value"]) == Decimal("50.00")

    reps = {r["rep_id"]: r for r in report["reps"]}
    assert set(reps) == {org.rep_a.sub, org.rep_b.sub, org.rep_sub.sub}
    for rep_id, row in reps.items():
        for metric in METRICS:
            assert row["figures"][metric] == await kpi(analytics, org, metric, "rep", rep_id), (
                rep_id,
                metric,
            )
    assert D(reps[org.rep_a.sub]["figures"]["sales_amount"]["value"]) == Decimal("320.00")
    assert D(reps[org.rep_a.sub]["figures"]["collections"]["value"]) == Decimal("50.00")
    assert reps[org.rep_b.sub]["figures"]["new_customers"]["value"] == 1

    # Target completion: November's targets against November up to the week's end.
    to_date = {"from": "2026-11-01", "to": "2026-11-16"}
    north_sales = await kpi(analytics, org, "sales_amount", "team", str(org.team_north), **to_date)
    assert D(north_sales["value"]) == Decimal("620.00")
    [progress] = report["team"]["target_completion"]
    assert progress["period"] == "2026-11" and progress["target_metric"] == "sales_amount"
    assert (D(progress["actual"]), D(progress["completion"])) == (
        Decimal("620.00"),
        Decimal("0.3100"),
    )
    [mine] = reps[org.rep_a.sub]["target_completion"]
    assert (D(mine["actual"]), D(mine["completion"])) == (Decimal("620.00"), Decimal("0.6200"))
    assert reps[org.rep_b.sub]["target_completion"] == []


async def test_the_weekly_report_lists_what_was_heard_complaints_and_next_weeks_plan(
    analytics, world, org, payloads
):
    await grow(analytics, world, payloads)
    report = (await weekly(analytics, org.manager_north, org.team_north)).json()
    news = {(r["source"], r["text"]) for r in report["competitor_news"]}
    assert news == {
        ("visit", "Acme cut prices by 10 %"),
        ("daily_report", "Acme hires in the east"),  # kept through the sign-off
    }
    assert [(r["source"], r["text"]) for r in report["customer_feedback"]] == [
        ("daily_report", "C1 wants faster delivery")
    ]
    complaints = report["complaints"]
    # K1 raised and resolved in the week, K2 resolved in it, K3 raised; K4 is team south's.
    assert [c["id"] for c in complaints["opened"]] == [world["K1"], world["K3"]]
    assert [c["id"] for c in complaints["resolved"]] == [world["K2"], world["K1"]]
    assert complaints["opened"][0]["description"] == "complaint K1"
    assert (report["team"]["complaints_opened"], report["team"]["complaints_resolved"]) == (2, 2)
    reps = {r["rep_id"]: r for r in report["reps"]}
    assert (
        reps[org.rep_a.sub]["complaints_opened"],
        reps[org.rep_b.sub]["complaints_resolved"],
    ) == (2, 1)
    # Only rep_b's approved plan falls in week 47 (rep_a's is not approved, the other later).
    assert [(i["rep_id"], i["day"]) for i in report["next_week_plan"]] == [
        (org.rep_b.sub, "2026-11-17"),
        (org.rep_b.sub, "2026-11-17"),
    ]
    assert report["next_week_plan"][0]["customer_name"] == "Customer C1"
    assert (
        reps[org.rep_b.sub]["next_week_plan_items"],
        report["team"]["next_week_plan_items"],
    ) == (2, 2)


async def test_the_weekly_report_as_csv_is_its_per_rep_table(analytics, world, org, payloads):
    await grow(analytics, world, payloads)
    report = (await weekly(analytics, org.manager_north, org.team_north)).json()
    resp = await weekly(analytics, org.manager_north, org.team_north, accept="text/csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["rep_id"] for r in rows] == [r["rep_id"] for r in report["reps"]]
    a = next(r for r in rows if r["rep_id"] == org.rep_a.sub)
    assert (a["sales_amount"], a["collections"], a["effective_visit_rate"]) == (
        "320.00",
        "50.00",
        "1.0000",
    )
    assert (a["complaints_opened"], a["next_week_plan_items"]) == ("2", "0")
    json_first = await weekly(
        analytics, org.manager_north, org.team_north, accept="application/json, text/csv"
    )
    assert json_first.headers["content-type"].startswith("application/json")


async def test_who_sees_which_weekly_report(analytics, world, org):
    assert (await weekly(analytics, org.manager_north, org.team_north)).status_code == 200
    assert (await weekly(analytics, org.manager_north, org.team_north_sub)).status_code == 200
    assert (await weekly(analytics, org.admin, org.team_south)).status_code == 200
    # As for the KPIs: a rep sees their own figures, not a team's (theirs or another).
    assert (await weekly(analytics, org.rep_a, org.team_north)).status_code == 404
    assert (await weekly(analytics, org.rep_south, org.team_north)).status_code == 404
    assert (await weekly(analytics, org.manager_north, org.team_south)).status_code == 404
    assert (
        await weekly(analytics, org.manager_north, org.team_south, accept="text/csv")
    ).status_code == 404
    reader = make_principal("integration", kind="key", scopes=["kpis:read"])
    other = make_principal("integration", kind="key", scopes=["customers:read"])
    assert (await weekly(analytics, reader, org.team_north)).status_code == 200
    refused = await weekly(analytics, other, org.team_north)
    assert refused.status_code == 403 and "kpis:read" in refused.json()["detail"]
    rep_a_summary = await analytics.get(
        SUMMARY,
        params={
            "scope": "rep",
            "scope_id": org.rep_a.sub,
            "from": "2026-11-01",
            "to": "2026-12-01",
        },
        as_=org.rep_a,
    )
    assert rep_a_summary.status_code == 200
    for who, key in ((org.rep_a, org.rep_b.sub), (org.manager_south, org.rep_a.sub)):
        params = {"scope": "rep", "scope_id": key, "from": "2026-11-01", "to": "2026-12-01"}
        assert (await analytics.get(SUMMARY, params=params, as_=who)).status_code == 404


async def test_the_summary_funnel_stages_and_bottleneck_beside_october_and_target(
    analytics, world, org, payloads
):
    await grow(analytics, world, payloads)
    await target(analytics, org, "new_customers", "team", str(org.team_north), "8")
    params = {
        "scope": "team",
        "scope_id": str(org.team_north),
        "from": "2026-11-01",
        "to": "2026-12-01",
    }
    resp = await analytics.get(SUMMARY, params=params, as_=org.manager_north)
    assert resp.status_code == 200, resp.text
    s = resp.json()
    assert s["period"]["label"] == "2026-11" and s["previous_period"]["label"] == "2026-10"

    def row(c: dict[str, Any]) -> tuple[Any, ...]:
        return (D(c["value"]), D(c["previous"]), D(c["change"]), c["change_unit"])

    # Leads: November 3 received, 1 contacted, 1 qualified, 1 won, 1 invalid;
    # October 2 received, 1 contacted, none further.
    steps = {st["step"]: st for st in s["funnel"]["steps"]}
    assert row(steps["received"]["count"]) == (3, 2, Decimal("50.00"), "per_cent")
    assert steps["received"]["conversion_rate"] is None
    assert row(steps["contacted"]["conversion_rate"]) == (
        Decimal("0.3333"),
        Decimal("0.5000"),
        Decimal("-16.67"),
        "points",
    )
    assert row(steps["qualified"]["conversion_rate"]) == (
        Decimal("1.0000"),
        Decimal("0.0000"),
        Decimal("100.00"),
        "points",
    )
    assert row(steps["won"]["conversion_rate"]) == (Decimal("1.0000"), None, None, "points")
    assert row(s["funnel"]["invalid_rate"]) == (
        Decimal("0.3333"),
        Decimal("0.0000"),
        Decimal("33.33"),
        "points",
    )
    # Stages left in November: prospecting 2 of 3 forward, qualification 2 of 4 (OP1 won,
    # OP3 on; OP2, OP4 lost), proposal 1 of 1. October: prospecting 1 of 1.
    stages = {st["stage"]: st for st in s["stage_conversion"]["stages"]}
    assert {k: (v["left_forward"], v["left"]) for k, v in stages.items()} == {
        "prospecting": (2, 3),
        "qualification": (2, 4),
        "proposal": (1, 1),
    }
    assert row(stages["prospecting"]["conversion_rate"]) == (
        Decimal("0.6667"),
        Decimal("1.0000"),
        Decimal("-33.33"),
        "points",
    )
    assert s["stage_conversion"]["bottleneck"] == "qualification"

    figures = s["figures"]
    assert row(figures["sales_amount"]) == (
        Decimal("1120.00"),
        Decimal("100.00"),
        Decimal("1020.00"),
        "per_cent",
    )
    # C2, C4, C6 and C8 in November, C1 in October; the target of 8.
    new = figures["new_customers"]
    assert row(new) == (4, 1, Decimal("300.00"), "per_cent")
    assert (D(new["target"]), D(new["target_completion"])) == (Decimal("8"), Decimal("0.5000"))
    assert row(figures["sales_cycle_days"]) == (Decimal("15.00"), None, None, "per_cent")
    assert figures["avg_deal_size"]["value"] == "1000.00"
    assert "target" not in figures["sales_amount"]
    assert [t["target_metric"] for t in s["targets"]] == ["new_customers"]
    for name in ("funnel", "revenue_concentration", "sales_cycle_days"):
        one = await kpi(
            analytics,
            org,
            name,
            "team",
            str(org.team_north),
            **{"from": "2026-11-01", "to": "2026-12-01"},
        )
        if name == "funnel":
            assert one["details"]["invalid_rate"] == s["funnel"]["invalid_rate"]["value"]
        else:
            assert one["value"] == figures[name]["value"]


async def test_a_summary_over_any_range_compares_with_the_range_before(
    analytics, world, org, payloads
):
    await grow(analytics, world, payloads)
    params = {"scope": "company", "from": "2026-11-06", "to": "2026-11-16"}
    s = (await analytics.get(SUMMARY, params=params, as_=org.admin)).json()
    assert s["previous_period"] == {
        "label": "2026-10-27..2026-11-06",
        "from": "2026-10-27",
        "to": "2026-11-06",
    }
    # O3 200, O6 120 (the 10th, 14th) against O2 300 (the 5th).
    assert s["figures"]["sales_amount"]["value"] == "320.00"
    assert s["figures"]["sales_amount"]["previous"] == "300.00"
    assert s["figures"]["sales_amount"]["change"] == "6.67"


async def test_bad_input_is_a_problem_naming_the_field(analytics, world, org):
    async def loc(path: str, **params: str) -> Any:
        resp = await analytics.get(path, params=params, as_=org.admin)
        assert resp.status_code == 422, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        return resp.json()["errors"][0]["loc"][-1]

    team = str(org.team_north)
    for week in ("2026-47", "2026-W60", "2026-11", "W47", ""):
        assert await loc(WEEKLY, team_id=team, week=week) == "week"
    assert await loc(WEEKLY, team_id="nope", week="2026-W46") == "team_id"
    period = {"from": "2026-11-01", "to": "2026-11-01"}
    assert await loc(SUMMARY, scope="company", **period) == "to"
    assert await loc(SUMMARY, scope="company", **{"from": "2026-11-02", "to": "2026-11-01"}) == "to"
    assert (
        await loc(SUMMARY, scope="galaxy", **{"from": "2026-11-01", "to": "2026-12-01"}) == "scope"
    )
    assert (
        await loc(SUMMARY, scope="team", scope_id="x", **{"from": "2026-11-01", "to": "2026-12-01"})
        == "scope_id"
    )
    assert await loc(SUMMARY, scope="company", **{"from": "1 Nov", "to": "2026-12-01"}) == "from"
    unknown = await analytics.get(
        WEEKLY,
        params={"team_id": "00000000-0000-4000-8000-000000000000", "week": "2026-W46"},
        as_=org.admin,
    )
    assert unknown.status_code == 404
