"""Insight alerts: each rule raises on a world built to trigger it and not on one just below
its threshold, as events arrive and in the daily pass; one live alert per rule and subject;
alerts resolve themselves when the condition ends; managers acknowledge or dismiss them; a rep
sees only their own; alert.raised and alert.resolved reach the feed.

The app's clock stands on Wednesday 2 December 2026: the last complete week is 2026-W48
(23-29 November, five working days), the last complete month November.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analytics.alerts import repository as alerts_repository
from analytics.alerts import service as alerts_service
from analytics.alerts.rules import Rule, SubjectKind
from analytics.alerts.service import Subjects
from analytics.config import Settings
from analytics.facts.models import CUSTOMERS
from analytics.kpis.measures import Context
from analytics.main import spec
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import ServiceClient, serve_service
from servicekit.testing.org import Org
from servicekit.testing.tokens import TokenMinter, make_principal

World: Any = None
customer: Any = None
order: Any = None
visit: Any = None
opportunity: Any = None

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
TODAY = NOW.date()
ALERTS = "/api/v1/alerts"


@pytest.fixture(autouse=True)
def _builders(payloads: Any) -> None:
    """The analytics conftest's payload builders, under their names."""
    globals().update(vars(payloads))


@pytest.fixture
async def svc(fresh_db: str, minter: TokenMinter, org: Org) -> AsyncIterator[ServiceClient]:
    async with serve_service(
        spec(), Settings, fresh_db, minter, org=org, clock=FakeClock(NOW)
    ) as s:
        yield s


def ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


async def announce(svc: ServiceClient, source: str, type_: str, data: dict[str, Any]) -> None:
    assert svc.feeds is not None
    svc.feeds.publish(type_, str(data.get("id")) if "id" in data else None, data, source=source)


async def sync(svc: ServiceClient) -> None:
    await svc.sync_feeds()


async def evaluate(svc: ServiceClient, org: Org) -> dict[str, Any]:
    resp = await svc.post(f"{ALERTS}/evaluate", as_=org.admin)
    assert resp.status_code == 200, resp.text
    return resp.json()["rules"]  # type: ignore[no-any-return]


async def alerts(svc: ServiceClient, who: Any, **params: str) -> list[dict[str, Any]]:
    resp = await svc.get(ALERTS, params={"limit": "200", **params}, as_=who)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]  # type: ignore[no-any-return]


def subjects(found: list[dict[str, Any]], rule: str) -> dict[str, dict[str, Any]]:
    return {a["subject_id"]: a for a in found if a["rule"] == rule}


async def new_customer(
    svc: ServiceClient, w: Any, name: str, rep: str, **facts: Any
) -> dict[str, Any]:
    data: dict[str, Any] = customer(w, name, rep, created_at="2026-01-05T01:00:00+00:00", **facts)
    await announce(svc, "customers", "customer.created", data)
    return data


async def orders_on(svc: ServiceClient, w: World, c: dict[str, Any], *days: str) -> None:
    for n, day in enumerate(days):
        await announce(
            svc,
            "customers",
            "order.placed",
            order(w, f"{c['code']}-{n}-{day}", c, day, "10.00", None),
        )


# --- churn risk --------------------------------------------------------------------------------


async def test_churn_risk_on_a_regular_rhythm_that_stops_and_resolves_with_the_next_order(svc, org):
    w = World(org)
    # Every 30 days, then silence: 61 days since the last order is more than twice the usual
    # interval (raised); 60 days is not (just below); two orders are no rhythm yet.
    stopped = await new_customer(svc, w, "stopped", "rep_a")
    await orders_on(svc, w, stopped, ago(121), ago(91), ago(61))
    still = await new_customer(svc, w, "still", "rep_a")
    await orders_on(svc, w, still, ago(120), ago(90), ago(60))
    young = await new_customer(svc, w, "young", "rep_a")
    await orders_on(svc, w, young, ago(300), ago(200))
    await sync(svc)

    # Raised as the orders arrived, before any daily pass.
    found = subjects(await alerts(svc, org.admin), "churn_risk")
    assert set(found) == {stopped["id"]}
    alert = found[stopped["id"]]
    assert alert["subject_kind"] == "customer" and alert["status"] == "open"
    assert alert["rep_id"] == org.rep_a.sub and alert["customer_id"] == stopped["id"]
    assert alert["figures"]["days_since_last_order"] == 61
    assert alert["figures"]["usual_interval_days"] == 30
    assert alert["figures"]["orders"] == 3

    # The weekly report of the rep's team lists it among the week's abnormal customers; the
    # week before had none.
    async def weekly(week: str) -> dict[str, Any]:
        params = {"team_id": org.rep_a.team_id, "week": week}
        resp = await svc.get("/api/v1/reports/weekly", params=params, as_=org.admin)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    report = await weekly("2026-W49")
    assert [a["id"] for a in report["abnormal_customers"]] == [alert["id"]]
    assert report["abnormal_customers"][0]["figures"]["usual_interval_days"] == 30
    assert report["team"]["abnormal_customers"] == 1
    counts = {r["rep_id"]: r["abnormal_customers"] for r in report["reps"]}
    assert counts[org.rep_a.sub] == 1 and sum(counts.values()) == 1
    assert (await weekly("2026-W48"))["abnormal_customers"] == []
    async with svc.session() as session:
        before = await alerts_repository.alerts_raised_between(
            session, NOW - timedelta(days=9), NOW - timedelta(days=2)
        )
    assert before == []

    # The daily pass finds the same: no second alert.
    assert (await evaluate(svc, org))["churn_risk"] == {"raised": 0, "resolved": 0}
    assert len(subjects(await alerts(svc, org.admin), "churn_risk")) == 1

    # The customer orders again: the alert resolves itself.
    await orders_on(svc, w, stopped, ago(1))
    await sync(svc)
    resolved = subjects(await alerts(svc, org.admin, status="resolved"), "churn_risk")
    assert resolved[stopped["id"]]["id"] == alert["id"]
    assert resolved[stopped["id"]]["resolved_at"] is not None
    assert subjects(await alerts(svc, org.admin, status="open"), "churn_risk") == {}

    feed = [
        e
        for e in await svc.events({"alert.raised", "alert.resolved"})
        if e.data["rule"] == "churn_risk"
    ]
    assert [(e.type, e.subject) for e in feed] == [
        ("alert.raised", alert["id"]),
        ("alert.resolved", alert["id"]),
    ]
    assert feed[0].data["rule"] == "churn_risk" and feed[0].data["figures"]["orders"] == 3


# --- data quality ------------------------------------------------------------------------------


RULE = "incomplete_key_customer"


def iso(text: str) -> str:
    """An API time as the alert's events write it (microseconds always shown)."""
    return datetime.fromisoformat(text).astimezone(UTC).isoformat(timespec="microseconds")


async def test_an_a_level_customer_with_incomplete_data_below_the_floor(svc, org):
    w = World(org)
    low = await new_customer(svc, w, "low", "rep_a", level="A")
    at_floor = await new_customer(svc, w, "at_floor", "rep_a", level="A")
    weak = await new_customer(svc, w, "weak", "rep_a", level="B")
    for c, score in ((low, 40), (at_floor, 60), (weak, 10)):
        await announce(
            svc,
            "customers",
            "customer.data_incomplete",
            {**c, "score": score, "threshold": 70, "missing_required": ["phone"]},
        )
    await sync(svc)
    found = subjects(await alerts(svc, org.manager_north), "incomplete_key_customer")
    assert set(found) == {low["id"]}
    assert found[low["id"]]["figures"] == {"quality_score": 40, "floor": 60, "level": "A"}

    # No longer a key customer: the alert ends.
    await announce(svc, "customers", "customer.level_changed", {**low, "level": "B"})
    await sync(svc)
    assert subjects(await alerts(svc, org.admin, status="open"), "incomplete_key_customer") == {}

    # Still a key customer, its record filled in (the customers service says so): the alert
    # ends, and the feed says so with the alert as the API reads it.
    filled = await new_customer(svc, w, "filled", "rep_a", level="A")
    quality = {"threshold": 70, "missing_recommended": ["email"]}
    await announce(
        svc,
        "customers",
        "customer.data_incomplete",
        {**filled, **quality, "score": 50, "missing_required": ["address"]},
    )
    await sync(svc)
    (raised,) = subjects(await alerts(svc, org.admin, status="open"), RULE).values()
    assert raised["subject_id"] == filled["id"]
    await announce(
        svc,
        "customers",
        "customer.data_completed",
        {**filled, **quality, "score": 82, "missing_required": []},
    )
    await sync(svc)
    assert subjects(await alerts(svc, org.admin, status="open"), RULE) == {}
    resolved = subjects(await alerts(svc, org.admin, status="resolved"), RULE)[filled["id"]]
    assert resolved["id"] == raised["id"]
    feed = [e for e in await svc.events({"alert.resolved"}) if e.subject == raised["id"]]
    assert [e.data for e in feed] == [
        {
            **resolved,
            "raised_at": iso(resolved["raised_at"]),
            "resolved_at": iso(resolved["resolved_at"]),
        }
    ]


async def test_an_events_rules_run_as_one_statement_and_see_a_changed_rule(svc, org):
    """The rules as stored are read once; each evaluation then runs as one statement that
    checks they did not change (and reads them again when they did). One subject's is that
    statement alone; several subjects' (an array of ids) follows the transaction's plan
    setting."""
    w = World(org)
    low = await new_customer(svc, w, "low", "rep_a", level="A")
    other = await new_customer(svc, w, "other", "rep_a", level="B")
    await announce(
        svc,
        "customers",
        "customer.data_incomplete",
        {**low, "score": 40, "threshold": 70, "missing_required": ["phone"]},
    )
    await sync(svc)
    assert set(subjects(await alerts(svc, org.admin, status="open"), RULE)) == {low["id"]}

    app: Any = svc.app
    evaluator, ctx = app.state.alerts, Context.of(app.state.settings, app.state.directory)
    touched = Subjects(customers={uuid.UUID(low["id"])})
    run: list[str] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        run.append(statement)

    async def evaluated() -> dict[str, Any]:
        async with svc.session() as session:
            await session.execute(sa.select(1))  # the session's own start, not counted
            run.clear()
            found: dict[str, Any] = await evaluator.evaluate(session, ctx, touched, now=NOW)
        return found

    async def floor(value: int, *, version: int) -> None:
        put = await svc.put(
            f"{ALERTS}/rules/{RULE}",
            json={"thresholds": {"floor": value}},
            headers={"If-Match": f'"{version}"'},
            as_=org.admin,
        )
        assert put.status_code == 200, put.text

    engine = app.state.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", executed)
    try:
        same = await evaluated()
        assert len(run) == 1  # the evaluation
        assert same == {
            RULE: {"raised": 0, "resolved": 0},
            "churn_risk": {"raised": 0, "resolved": 0},
        }
        # The company's floor lowered under the customer's score: the evaluation finds the
        # rules changed (nothing written), reads them and runs again; the alert ends.
        await floor(30, version=1)
        changed = await evaluated()
        assert len(run) == 3  # the stale evaluation, the rules, again
        assert changed[RULE] == {"raised": 0, "resolved": 1}
        assert (await evaluated())[RULE] == {"raised": 0, "resolved": 0} and len(run) == 1
        assert subjects(await alerts(svc, org.admin, status="open"), RULE) == {}

        # The floor back above the score, two customers touched: the alert is raised again.
        await floor(60, version=2)
        touched = Subjects(customers={uuid.UUID(low["id"]), uuid.UUID(other["id"])})
        both = await evaluated()
        assert len(run) == 4  # the plan setting, the stale evaluation, the rules, again
        assert both[RULE] == {"raised": 1, "resolved": 0}
        assert (await evaluated())[RULE] == {"raised": 0, "resolved": 0} and len(run) == 2
    finally:
        sa.event.remove(engine, "before_cursor_execute", executed)
    assert set(subjects(await alerts(svc, org.admin, status="open"), RULE)) == {low["id"]}


# --- stalled opportunities ---------------------------------------------------------------------


async def test_an_opportunity_older_than_the_usual_cycle_is_stalled(svc, org):
    w = World(org)
    # No wins yet: the usual cycle is the default 90 days, stalled beyond 1.5 times that.
    old = opportunity(w, "old", "rep_b", ago(136), "proposal")
    fresh = opportunity(w, "fresh", "rep_b", ago(134), "proposal")
    for o in (old, fresh):
        await announce(svc, "opportunities", "opportunity.created", o)
    await sync(svc)
    found = subjects(await alerts(svc, org.rep_b), "stalled_opportunity")
    assert set(found) == {old["id"]}
    assert found[old["id"]]["figures"]["usual_cycle_days"] == 90
    # Whole days open at the start of today.
    assert found[old["id"]]["figures"]["days_open"] == 135
    # rep_a sees nothing of rep_b's.
    assert await alerts(svc, org.rep_a, rule="stalled_opportunity") == []

    won = {**old, "stage": "won", "won_at": NOW.isoformat(), "closed_at": NOW.isoformat()}
    await announce(
        svc,
        "opportunities",
        "opportunity.stage_changed",
        {**won, "from_stage": "proposal", "to_stage": "won", "backward": False},
    )
    await sync(svc)
    assert subjects(await alerts(svc, org.rep_b, status="open"), "stalled_opportunity") == {}


# --- low activity, with a team's own floor -----------------------------------------------------


async def test_low_daily_visits_over_last_week_and_a_teams_own_floor(svc, org):
    w = World(org)
    c = await new_customer(svc, w, "visited", "rep_a", level="B")
    week = [date(2026, 11, 23) + timedelta(days=d) for d in range(5)]
    # rep_a: 15 visits (3 a day: not below the floor of 3); rep_b: 14 (2.8: below).
    for rep, count in (("rep_a", 15), ("rep_b", 14)):
        for n in range(count):
            day = week[n % 5].isoformat()
            v = visit(w, f"{rep}-{n}", rep, c, day, effective=True, order_taken=False)
            await announce(svc, "visits", "visit.completed", v)
    await sync(svc)
    await evaluate(svc, org)
    found = subjects(await alerts(svc, org.admin, status="open"), "low_daily_visits")
    # rep_sub and rep_south made no visit at all; rep_a's alert (from the pass at start, when
    # nobody had visited anyone) resolved itself with their fifteenth visit.
    assert set(found) == {org.rep_b.sub, org.rep_sub.sub, org.rep_south.sub}
    figures = found[org.rep_b.sub]["figures"]
    assert figures["week"] == "2026-W48" and figures["working_days"] == 5

    # The figure is part 1's KPI for the same rep and week.
    kpi = await svc.get(
        "/api/v1/kpis",
        params={
            "metric": "avg_daily_visits",
            "scope": "rep",
            "scope_id": org.rep_b.sub,
            "from": "2026-11-23",
            "to": "2026-11-30",
        },
        as_=org.admin,
    )
    assert kpi.status_code == 200, kpi.text
    assert figures["avg_daily_visits"] == kpi.json()["figure"]["value"] == "2.80"

    # North's manager lowers the floor for north: rep_b is no longer below it; south keeps 3.
    rules = (await svc.get(f"{ALERTS}/rules", as_=org.manager_north)).json()
    assert {r["rule"] for r in rules if r["team_id"] is None} >= {"low_daily_visits"}
    put = await svc.put(
        f"{ALERTS}/rules/low_daily_visits",
        params={"team_id": org.rep_b.team_id},
        json={"thresholds": {"floor": "2.5"}},
        headers={"If-Match": '"1"'},
        as_=org.manager_north,
    )
    assert put.status_code == 200, put.text
    assert put.json()["thresholds"]["floor"] == "2.5"
    # The company's rule is the admins'.
    company = await svc.put(
        f"{ALERTS}/rules/low_daily_visits",
        json={"thresholds": {"floor": "1"}},
        headers={"If-Match": '"1"'},
        as_=org.manager_north,
    )
    assert company.status_code == 403
    bad = await svc.put(
        f"{ALERTS}/rules/low_daily_visits",
        json={"thresholds": {"floor": "-1"}},
        headers={"If-Match": '"1"'},
        as_=org.admin,
    )
    assert bad.status_code == 422 and "thresholds" in bad.text
    assert (await evaluate(svc, org))["low_daily_visits"]["resolved"] == 1
    found = subjects(await alerts(svc, org.admin, status="open"), "low_daily_visits")
    assert set(found) == {org.rep_sub.sub, org.rep_south.sub}


# --- neglect while over-visiting ---------------------------------------------------------------


async def test_weak_customers_neglected_while_one_key_customer_is_over_visited(svc, org):
    w = World(org)
    for rep, key_visits in (("rep_a", 9), ("rep_b", 8)):
        key = await new_customer(svc, w, f"{rep}-key", rep, level="A")
        await new_customer(svc, w, f"{rep}-weak", rep, level="C", region="west")
        for n in range(key_visits):
            v = visit(w, f"{rep}-k{n}", rep, key, ago(n + 1), effective=True, order_taken=False)
            await announce(svc, "visits", "visit.completed", v)
    await sync(svc)
    # As the visits arrived: nine visits to one key customer in 30 days is over eight; eight
    # is not.
    found = subjects(await alerts(svc, org.manager_north), "neglect_over_visit")
    assert set(found) == {org.rep_a.sub}
    figures = found[org.rep_a.sub]["figures"]
    assert figures["over_visited"] == [{"customer_id": w["rep_a-key"], "visits": 9}]
    assert figures["neglected_customers"] == 1
    assert figures["neglected_sample"] == [w["rep_a-weak"]]
    assert figures["neglected_regions"] == ["west"]

    # The weak customer is visited: nothing is neglected any more.
    weak = customer(w, "rep_a-weak", "rep_a", level="C", region="west")
    v = visit(w, "rep_a-w", "rep_a", weak, ago(0), effective=True, order_taken=False)
    await announce(svc, "visits", "visit.completed", v)
    await sync(svc)
    assert subjects(await alerts(svc, org.admin, status="open"), "neglect_over_visit") == {}


async def test_a_reps_customers_are_read_from_the_owner_index_alone(svc, org):
    """Every column the rep's rules read of each customer is in `ix_customers_owner_id`: an
    event's evaluation reads a few index pages, not one table page per customer (a rep's
    customers lie one to a page in a large table)."""
    w = World(org)
    key = await new_customer(svc, w, "key", "rep_a", level="A")
    await new_customer(svc, w, "weak", "rep_a", level="C", region="west")
    for n in range(9):
        v = visit(w, f"k{n}", "rep_a", key, ago(n + 1), effective=True, order_taken=False)
        await announce(svc, "visits", "visit.completed", v)
    await sync(svc)
    app: Any = svc.app
    evaluator, ctx = app.state.alerts, Context.of(app.state.settings, app.state.directory)
    rep = uuid.UUID(org.rep_a.sub)

    def explained(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> Any:
        return "EXPLAIN (FORMAT JSON) " + statement, params

    engine = app.state.db.engine.sync_engine
    async with svc.session() as session:
        await session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        await session.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
        cfgs = await alerts_service.configs(session)
        plans = await evaluator.statements(session, ctx, cfgs, TODAY, Subjects(reps={rep}))
        hits = plans[Rule.neglect_over_visit]
        stmt = sa.select(sa.func.count()).select_from(hits.hits().subquery("hits"))
        params = alerts_repository.subject_params(SubjectKind.rep, [rep])
        sa.event.listen(engine, "before_cursor_execute", explained, retval=True)
        try:
            plan = (await session.execute(stmt, params)).scalar_one()
        finally:
            sa.event.remove(engine, "before_cursor_execute", explained)

    def nodes(node: dict[str, Any]) -> Any:
        yield node
        for child in node.get("Plans", ()):
            yield from nodes(child)

    reads = [n for n in nodes(plan[0]["Plan"]) if n.get("Alias") == "mine"]
    assert reads and all(
        n["Node Type"] == "Index Only Scan" and n["Index Name"] == "ix_customers_owner_id"
        for n in reads
    ), reads


async def test_a_weak_customers_last_visit_whatever_order_the_feeds_bring_it_in(svc, org):
    """A customer's last visit is kept on its row: a visit applied before its customer is
    known still counts, and a visit dated after the evaluation's day does not."""
    w = World(org)
    key = await new_customer(svc, w, "key", "rep_a", level="A")
    for n in range(9):
        v = visit(w, f"k{n}", "rep_a", key, ago(n + 1), effective=True, order_taken=False)
        await announce(svc, "visits", "visit.completed", v)
    early = customer(w, "early", "rep_a", level="C", region="east")
    late = customer(w, "late", "rep_a", level="B", region="east")
    # The visits feed runs ahead: "early" was visited two days ago, before analytics heard
    # of it; "late" 40 days ago and (dated) tomorrow.
    for name, c, day in (("e", early, ago(2)), ("l1", late, ago(40)), ("l2", late, ago(-1))):
        v = visit(w, name, "rep_a", c, day, effective=True, order_taken=False)
        await announce(svc, "visits", "visit.completed", v)
    await sync(svc)
    for c in (early, late):
        c["created_at"] = "2026-01-05T01:00:00+00:00"
        await announce(svc, "customers", "customer.created", c)
    await sync(svc)
    await evaluate(svc, org)

    found = subjects(await alerts(svc, org.admin, status="open"), "neglect_over_visit")
    figures = found[org.rep_a.sub]["figures"]
    assert figures["neglected_customers"] == 1
    assert figures["neglected_sample"] == [w["late"]]
    assert figures["neglected_regions"] == []
    async with svc.session() as s:
        days = dict(
            (
                await s.execute(
                    sa.select(CUSTOMERS.c.id, CUSTOMERS.c.last_visit_day).where(
                        CUSTOMERS.c.id.in_([uuid.UUID(w["early"]), uuid.UUID(w["late"])])
                    )
                )
            ).all()
        )
    assert days == {
        uuid.UUID(w["early"]): TODAY - timedelta(days=2),
        uuid.UUID(w["late"]): TODAY + timedelta(days=1),
    }


# --- a region's development rate ---------------------------------------------------------------


async def test_a_regions_development_rate_below_the_floor(svc, org):
    w = World(org)
    # Ten customers each in east and west, none with an order before November; in November
    # none of east's is developed (0 < 0.05), one of west's is (0.1).
    for region in ("EAST", "WEST"):
        for n in range(10):
            await new_customer(svc, w, f"{region}{n}", "rep_a", region=region)
    west0 = customer(w, "WEST0", "rep_a", region="WEST")
    await announce(
        svc, "customers", "order.placed", order(w, "W0", west0, "2026-11-10", "50.00", None)
    )
    await sync(svc)
    assert (await evaluate(svc, org))["low_development_rate"]["raised"] == 1
    found = subjects(await alerts(svc, org.admin), "low_development_rate")
    assert set(found) == {"EAST"}
    assert found["EAST"]["figures"] == {
        "development_rate": "0.0000",
        "developed_customers": 0,
        "candidates": 10,
        "floor": "0.05",
        "month": "2026-11",
    }
    # A region belongs to no team: its alert is the admins' (and keys').
    assert subjects(await alerts(svc, org.manager_north), "low_development_rate") == {}


# --- decisions, access, bad input --------------------------------------------------------------


async def _one_churn_alert(svc: ServiceClient, org: Org) -> dict[str, Any]:
    w = World(org)
    c = await new_customer(svc, w, "churning", "rep_a")
    await orders_on(svc, w, c, ago(100), ago(80), ago(60))
    await sync(svc)
    (alert,) = await alerts(svc, org.admin, rule="churn_risk")
    return alert


async def test_a_manager_acknowledges_or_dismisses_and_a_rep_sees_only_their_own(svc, org):
    alert = await _one_churn_alert(svc, org)
    path = f"{ALERTS}/{alert['id']}"

    # Who sees it: its rep, their manager, the admin, a key with kpis:read.
    reader = make_principal("integration", kind="key", scopes=["kpis:read"])
    other_key = make_principal("integration", kind="key", scopes=["customers:read"])
    for who in (org.rep_a, org.manager_north, org.admin, reader):
        resp = await svc.get(path, as_=who)
        assert resp.status_code == 200 and resp.headers["etag"] == '"1"'
    for who in (org.rep_b, org.manager_south):
        assert (await svc.get(path, as_=who)).status_code == 404
        assert await alerts(svc, who, rule="churn_risk") == []
    assert (await svc.get(ALERTS, as_=other_key)).status_code == 403
    mine = await alerts(svc, org.manager_north, rep_id=org.rep_a.sub, rule="churn_risk")
    assert [a["id"] for a in mine] == [alert["id"]]
    assert await alerts(svc, org.manager_north, rep_id=org.rep_b.sub, rule="churn_risk") == []
    assert (
        await svc.get(ALERTS, params={"team_id": org.team_south}, as_=org.manager_north)
    ).status_code == 404

    note = {"note": "spoke to the rep"}
    ack = f"{path}/acknowledge"
    # The rep it is about may not decide (403); another rep does not know of it (404).
    assert (
        await svc.post(ack, json=note, headers={"If-Match": '"1"'}, as_=org.rep_a)
    ).status_code == 403
    assert (
        await svc.post(ack, json=note, headers={"If-Match": '"1"'}, as_=org.rep_b)
    ).status_code == 404
    assert (await svc.post(ack, json=note, as_=org.manager_north)).status_code == 428
    assert (
        await svc.post(ack, json=note, headers={"If-Match": '"9"'}, as_=org.manager_north)
    ).status_code == 412
    empty = await svc.post(
        ack, json={"note": ""}, headers={"If-Match": '"1"'}, as_=org.manager_north
    )
    assert empty.status_code == 422 and "note" in empty.text
    done = await svc.post(ack, json=note, headers={"If-Match": '"1"'}, as_=org.manager_north)
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["status"], body["decision"], body["note"], body["decided_by"]) == (
        "acknowledged",
        "acknowledged",
        "spoke to the rep",
        org.manager_north.sub,
    )
    assert done.headers["etag"] == '"2"'

    dismissed = await svc.post(
        f"{path}/dismiss", json={"note": "seasonal"}, headers={"If-Match": '"2"'}, as_=org.admin
    )
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    # Dismissed while the condition holds: the daily pass raises no new one.
    assert (await evaluate(svc, org))["churn_risk"]["raised"] == 0
    assert [a["id"] for a in await alerts(svc, org.admin, rule="churn_risk")] == [alert["id"]]
    types = [e.type for e in await svc.events()]
    assert types.count("alert.acknowledged") == 1 and types.count("alert.dismissed") == 1


async def test_bad_input_is_named_and_only_admins_evaluate(svc, org):
    for params, field in (
        ({"status": "closed"}, "status"),
        ({"rule": "nope"}, "rule"),
        ({"rep_id": "x"}, "rep_id"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
    ):
        resp = await svc.get(ALERTS, params=params, as_=org.admin)
        assert resp.status_code == 422, params
        assert resp.headers["content-type"] == "application/problem+json"
        assert field in resp.text
    assert (await svc.get(f"{ALERTS}/not-a-uuid", as_=org.admin)).status_code in (404, 422)
    assert (await svc.post(f"{ALERTS}/evaluate", as_=org.manager_north)).status_code == 403
    key = make_principal("integration", kind="key", scopes=["kpis:read"])
    assert (await svc.post(f"{ALERTS}/evaluate", as_=key)).status_code == 403
    unknown = await svc.put(
        f"{ALERTS}/rules/nope", json={}, headers={"If-Match": '"1"'}, as_=org.admin
    )
    assert unknown.status_code == 422


async def test_concurrent_evaluations_never_duplicate_an_alert(svc, org):
    alert = await _one_churn_alert(svc, org)
    results = await asyncio.gather(*[evaluate(svc, org) for _ in range(4)])
    assert sum(r["churn_risk"]["raised"] for r in results) == 0
    assert [a["id"] for a in await alerts(svc, org.admin, rule="churn_risk")] == [alert["id"]]
