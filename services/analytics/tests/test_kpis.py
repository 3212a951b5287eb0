"""Every KPI of DOMAIN.md on the hand-built world of `world.py`, its figures worked out by hand;
who may see which scope; replaying every feed from zero and applying the feeds twice give the
same figures; the dashboard from the rollups equals the one from the fact tables."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from analytics.config import Settings
from analytics.main import spec
from analytics.rollups import service as rollups
from servicekit.testing.harness import serve_service

NOV = {"from": "2026-11-01", "to": "2026-12-01"}
SCOPES = (
    ("company", None),
    ("team", "north"),
    ("team", "south"),
    ("rep", "rep_a"),
    ("rep", "rep_b"),
    ("rep", "rep_south"),
    ("region", "east"),
    ("region", "west"),
)


def scope_id(world: Any, kind: str, name: str | None) -> str | None:
    if kind == "rep" and name:
        return str(world.org.people[name].sub)
    if kind == "team" and name:
        return str(world.org.team_id(name))
    return name


async def dashboard(
    svc: Any,
    world: Any,
    kind: str,
    name: str | None,
    period: str = "2026-11",
    *,
    plain: bool = False,
) -> dict[str, Any]:
    params: dict[str, Any] = {"scope": kind, "period": period, "plain": plain}
    if (key := scope_id(world, kind, name)) is not None:
        params["scope_id"] = key
    resp = await svc.get("/api/v1/kpis/dashboard", params=params, as_=world.org.admin)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def f(body: dict[str, Any], metric: str) -> tuple[Any, Any, Any]:
    figure = body["figures"][metric]
    return figure["value"], figure["numerator"], figure["denominator"]


def D(text: str) -> Decimal:
    return Decimal(text)


def dec(value: Any) -> Any:
    return None if value is None else Decimal(str(value))


def same(
    figure: tuple[Any, Any, Any], value: str | int | None, num: Any = None, den: Any = None
) -> None:
    got = tuple(dec(x) for x in figure)
    want = tuple(dec(x) for x in (value, num, den))
    assert got == want, (got, want)


async def test_every_kpi_of_the_company_in_november(analytics, world):
    d = await dashboard(analytics, world, "company", None)
    same(f(d, "new_customers"), 3)  # C2, C4, C6; C3 is invalid
    same(f(d, "developed_customers"), 2)  # C2, C4
    same(f(d, "development_rate"), "0.6667", 2, 3)  # of C2, C4, C6
    same(f(d, "customer_share"), "1.0000", 5, 5)
    same(f(d, "repeat_purchase_rate"), "0.5000", 2, 4)  # C1, C5 of C1, C2, C4, C5
    # 4 visits over 4 reps x 21 working days
    same(f(d, "avg_daily_visits"), "0.05", 4, 84)
    same(f(d, "visits_per_customer"), "1.33", 4, 3)
    same(f(d, "effective_visit_rate"), "0.7500", 3, 4)
    same(f(d, "transaction_rate"), "0.5000", 2, 4)
    same(f(d, "plan_adherence"), "0.5000", 1, 2)
    # paid so far on November's orders: 300 in November, 150 in December
    same(f(d, "collection_rate"), "0.4018", "450.00", "1120.00")
    same(f(d, "sales_amount"), "1120.00")
    same(f(d, "gross_profit"), "260.00")
    same(f(d, "a_level_customers"), 2)
    same(f(d, "avg_sales_per_rep_per_week"), "65.33", "1120.00", "17.1429")
    same(f(d, "funnel"), "0.3333", 1, 3)
    funnel = d["figures"]["funnel"]["details"]
    assert [(s["step"], s["count"]) for s in funnel["steps"]] == [
        ("received", 3),
        ("contacted", 1),
        ("qualified", 1),
        ("won", 1),
    ]
    assert (funnel["invalid"], dec(funnel["invalid_rate"])) == (1, D("0.3333"))
    same(f(d, "redevelopment_success"), "1.0000", 1, 1)
    same(f(d, "avg_deal_size"), "1000.00", "1000.00", 1)
    same(f(d, "sales_cycle_days"), "15.00")
    same(f(d, "revenue_concentration"), "0.4464", "500.00", "1120.00")  # C4, the top 1 of 4
    stages = d["figures"]["stage_conversion"]["details"]["stages"]
    assert [
        (s["stage"], s["left_forward"], s["left"], dec(s["conversion_rate"])) for s in stages
    ] == [("qualification", 1, 2, D("0.5000"))]
    # October: C1's first order; December: a payment on a November order, no orders.
    assert d["previous_period"]["label"] == "2026-10"
    assert d["previous"]["sales_amount"]["value"] == "100.00"
    december = await dashboard(analytics, world, "company", None, "2026-12")
    same(f(december, "collection_rate"), None, "0.00", "0.00")  # zero denominator: null


async def test_a_reps_figures_follow_what_each_fact_carried(analytics, world):
    a = await dashboard(analytics, world, "rep", "rep_a")
    same(f(a, "new_customers"), 2)  # C2 and C4 were created by rep_a
    same(f(a, "developed_customers"), 1)  # C4's first order carried rep_b
    same(f(a, "sales_amount"), "620.00")
    same(f(a, "avg_daily_visits"), "0.19", 4, 21)
    same(f(a, "a_level_customers"), 2)  # C1 and C4, still rep_a's at November's end
    same(f(a, "customer_share"), "0.8000", 4, 5)  # of team north's active customers
    same(f(a, "repeat_purchase_rate"), "0.6667", 2, 3)
    b = await dashboard(analytics, world, "rep", "rep_b")
    same(f(b, "sales_amount"), "500.00")
    same(f(b, "developed_customers"), 1)
    south = await dashboard(analytics, world, "rep", "rep_south")
    for metric in (
        "development_rate",
        "repeat_purchase_rate",
        "effective_visit_rate",
        "visits_per_customer",
        "plan_adherence",
        "collection_rate",
        "redevelopment_success",
        "avg_deal_size",
        "revenue_concentration",
    ):
        assert south["figures"][metric]["value"] is None, metric
    same(f(south, "avg_daily_visits"), "0.00", 0, 21)
    west = await dashboard(analytics, world, "region", "west")
    same(f(west, "sales_amount"), "500.00")


async def test_a_rep_who_moves_team_leaves_their_past_with_the_old_team(analytics, world, org):
    north = await dashboard(analytics, world, "team", "north")
    same(f(north, "sales_amount"), "1120.00")
    same(f(north, "avg_sales_per_rep_per_week"), "87.11", "1120.00", "12.8571")
    await analytics.move_user(org.rep_b, str(org.team_id("south")))
    assert await dashboard(analytics, world, "team", "north") == north
    south = await dashboard(analytics, world, "team", "south")
    same(f(south, "sales_amount"), "0.00")


async def test_the_dashboard_equals_its_parts_and_the_plain_aggregate(analytics, world):
    for kind, name in SCOPES:
        rolled = await dashboard(analytics, world, kind, name)
        plain = await dashboard(analytics, world, kind, name, plain=True)
        assert rolled == plain, (kind, name)
        # Decimals travel as strings, counts as integers: never a JSON (binary) float.
        for figure in rolled["figures"].values():
            for part in ("value", "numerator", "denominator"):
                assert not isinstance(figure[part], float), (kind, name, figure)
        assert isinstance(rolled["figures"]["sales_amount"]["value"], str)
        key = scope_id(world, kind, name)
        for metric, figure in rolled["figures"].items():
            params = {"metric": metric, "scope": kind, **NOV}
            if key is not None:
                params["scope_id"] = key
            one = await analytics.get("/api/v1/kpis", params=params, as_=world.org.admin)
            assert one.status_code == 200, one.text
            assert one.json()["figure"] == figure, (kind, name, metric)


async def test_a_dashboard_reads_the_database_in_one_or_two_statements(analytics, world, org):
    """The scope's lookup (a rep, a team and its tree) and one statement for both periods,
    the scope above and the targets; the company: that statement alone."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The feeds' consumers read their cursors meanwhile.
        if "consumer_cursors" not in statement:
            statements.append(statement)

    engine = analytics.app.state.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        for kind, name, expected in (
            ("company", None, 1),
            ("team", "north", 2),
            ("rep", "rep_a", 2),
            ("rep", "rep_b", 2),
        ):
            for period in ("2026-11", "2026-10", "2026-W47", "2026-Q4"):
                statements.clear()
                await dashboard(analytics, world, kind, name, period)
                assert len(statements) == expected, (kind, name, period, statements)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)


async def test_explain_lists_the_records_behind_a_figure(analytics, world, org):
    params = {"metric": "repeat_purchase_rate", "scope": "company", "explain": True, **NOV}
    body = (await analytics.get("/api/v1/kpis", params=params, as_=org.admin)).json()
    numerator = {i["id"] for i in body["explain"]["numerator"]["items"]}
    denominator = {i["id"] for i in body["explain"]["denominator"]["items"]}
    assert numerator == {world["C1"], world["C5"]}
    assert denominator == {world["C1"], world["C2"], world["C4"], world["C5"]}
    params = {
        "metric": "effective_visit_rate",
        "scope": "rep",
        "scope_id": org.rep_a.sub,
        "explain": True,
        "limit": 2,
        **NOV,
    }
    first = (await analytics.get("/api/v1/kpis", params=params, as_=org.rep_a)).json()
    assert len(first["explain"]["denominator"]["items"]) == 2
    rest = (
        await analytics.get(
            "/api/v1/kpis",
            params={**params, "denominator_cursor": first["explain"]["denominator"]["next_cursor"]},
            as_=org.rep_a,
        )
    ).json()
    ids = {i["id"] for i in first["explain"]["denominator"]["items"]} | {
        i["id"] for i in rest["explain"]["denominator"]["items"]
    }
    assert ids == {world[v] for v in ("V1", "V2", "V3", "V4")}


async def test_who_sees_which_figures(analytics, world, org):
    async def status(who: Any, kind: str, key: str | None) -> int:
        params = {"metric": "sales_amount", "scope": kind, **NOV}
        if key is not None:
            params["scope_id"] = key
        return int((await analytics.get("/api/v1/kpis", params=params, as_=who)).status_code)

    assert await status(org.rep_a, "rep", org.rep_a.sub) == 200
    assert await status(org.rep_a, "rep", org.rep_b.sub) == 404
    assert await status(org.rep_a, "team", str(org.team_north)) == 404
    assert await status(org.rep_a, "company", None) == 404
    assert await status(org.manager_north, "team", str(org.team_north)) == 200
    assert await status(org.manager_north, "team", str(org.team_north_sub)) == 200
    assert await status(org.manager_north, "rep", org.rep_sub.sub) == 200
    assert await status(org.manager_north, "team", str(org.team_south)) == 404
    assert await status(org.manager_north, "rep", org.rep_south.sub) == 404
    assert await status(org.manager_north, "company", None) == 404
    assert await status(org.admin, "company", None) == 200
    bad = await analytics.get(
        "/api/v1/kpis", params={"metric": "nope", "scope": "company", **NOV}, as_=org.admin
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"][-1] == "metric"


async def test_replaying_every_feed_from_zero_gives_the_same_figures(
    analytics, world, databases, fieldforce_template, minter
):
    before = {s: await dashboard(analytics, world, *s) for s in SCOPES}
    # Every feed applied a second time over what is there: nothing changes.
    for source in ("customers", "visits", "opportunities"):
        await analytics.app.state.feeds[source].reset()
        await analytics.sync_feed(source)
    assert {s: await dashboard(analytics, world, *s) for s in SCOPES} == before
    # Every feed from zero into an empty schema.
    url = await databases.acreate(template=fieldforce_template)
    try:
        async with serve_service(spec(), Settings, url, minter) as again:
            assert again.feeds is not None and analytics.feeds is not None
            again.feeds.items = copy.deepcopy(analytics.feeds.items)
            again.org = world.org
            await again.sync_feeds()
            for s in SCOPES:
                assert await dashboard(again, world, *s) == before[s], s
                assert await dashboard(again, world, *s, plain=True) == before[s], s
    finally:
        await databases.adrop(url)


async def test_groups_add_up_to_the_whole(analytics, world, org):
    async def groups(by: str, **params: Any) -> dict[str, Decimal]:
        query = {"metric": "sales_amount", "group_by": by, **NOV, **params}
        resp = await analytics.get("/api/v1/kpis", params=query, as_=org.manager_north)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        found = {g["key"]: Decimal(g["figure"]["value"]) for g in body["groups"]}
        assert sum(found.values()) == Decimal(body["figure"]["value"])
        return found

    north = {"scope": "team", "scope_id": str(org.team_north)}
    assert await groups("rep", **north) == {
        org.rep_a.sub: Decimal("620.00"),
        org.rep_b.sub: Decimal("500.00"),
        org.rep_sub.sub: Decimal("0.00"),
    }
    weeks = await groups("week", **north)
    # Sunday the 1st and Monday the 30th are weeks cut by the month.
    assert list(weeks) == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
        "2026-11-23",
        "2026-11-30",
    ]
    assert weeks["2026-11-09"] == Decimal("320.00")
    days = await groups("day", **north)
    assert len(days) == 30 and days["2026-11-20"] == Decimal("500.00")


async def test_a_rebuild_from_the_fact_tables_gives_the_same_rollups(analytics, world, rollup_rows):
    """What the benchmark loads by COPY is made into rollups by the rebuild: the same rows as
    the feeds applied event by event, hence the same dashboards."""
    before = {s: await dashboard(analytics, world, *s) for s in SCOPES}
    applied = await rollup_rows()
    assert applied["period_team_counts"] and applied["period_counts"]
    async with analytics.session() as s:
        await rollups.rebuild(s, analytics.app.state.settings.active_window_days)
    assert await rollup_rows() == applied
    assert {s: await dashboard(analytics, world, *s) for s in SCOPES} == before
