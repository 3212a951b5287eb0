"""Targets on the hand-built world: the reasonableness check against last year's actual, the
split of a target one level down summing to the parent to the cent, and who sets what."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from servicekit.testing.tokens import make_principal

TARGETS = "/api/v1/targets"


async def create(svc: Any, who: Any, **body: Any) -> dict[str, Any]:
    resp = await svc.post(TARGETS, json=body, as_=who)
    assert resp.status_code == 201, resp.text
    made: dict[str, Any] = resp.json()
    return made


async def split(svc: Any, who: Any, target: dict[str, Any], **body: Any) -> dict[str, Decimal]:
    resp = await svc.post(f"{TARGETS}/{target['id']}/decompose", json=body, as_=who)
    assert resp.status_code == 201, resp.text
    children = resp.json()["children"]
    by = "period" if body["into"] in ("quarters", "months") else "scope_id"
    values = {c[by]: Decimal(c["value"]) for c in children}
    assert sum(values.values()) == Decimal(target["value"])  # to the cent
    return values


async def test_a_target_three_times_last_years_actual_is_flagged_and_kept(analytics, world, org):
    # November 2026's company sales were 1120.00.
    wild = await create(
        analytics,
        org.admin,
        metric="sales_amount",
        period="2027-11",
        scope="company",
        value="3360.00",
    )
    assert [w["code"] for w in wild["warnings"]] == ["growth_above_factor"]
    assert Decimal(wild["warnings"][0]["last_year"]) == Decimal("1120.00")
    check = (await analytics.get(f"{TARGETS}/{wild['id']}/check", as_=org.admin)).json()
    assert check["last_year_period"] == "2026-11" and len(check["warnings"]) == 1
    assert (await analytics.get(f"{TARGETS}/{wild['id']}", as_=org.admin)).status_code == 200
    sane = await create(
        analytics,
        org.admin,
        metric="sales_amount",
        period="2027-11",
        scope="team",
        scope_id=str(org.team_north),
        value="1200.00",
    )
    assert sane["warnings"] == []
    low = await create(
        analytics,
        org.admin,
        metric="sales_amount",
        period="2027-11",
        scope="rep",
        scope_id=org.rep_a.sub,
        value="100.00",
    )
    assert [w["code"] for w in low["warnings"]] == ["below_last_year"]


async def test_decomposition_sums_to_the_parent(analytics, world, org):
    company = await create(
        analytics,
        org.admin,
        metric="collections",
        period="2027-11",
        scope="company",
        value="1000.00",
    )
    north, south = str(org.team_north), str(org.team_south)
    assert await split(analytics, org.admin, company, into="teams") == {
        north: Decimal("500.00"),
        south: Decimal("500.00"),
    }
    year = await create(
        analytics,
        org.admin,
        metric="visits",
        period="2027",
        scope="team",
        scope_id=north,
        value="100.00",
    )
    quarters = await split(analytics, org.admin, year, into="quarters")
    assert sorted(quarters.values()) == [Decimal("25.00")] * 4
    quarter = await create(
        analytics,
        org.admin,
        metric="collections",
        period="2027-Q1",
        scope="team",
        scope_id=north,
        value="100.00",
    )
    months = await split(analytics, org.admin, quarter, into="months")
    assert sorted(months.values()) == [Decimal("33.33"), Decimal("33.33"), Decimal("33.34")]
    weighted = await create(
        analytics,
        org.admin,
        metric="gross_profit",
        period="2027-Q1",
        scope="company",
        value="100.00",
    )
    assert await split(
        analytics,
        org.admin,
        weighted,
        into="teams",
        method="weights",
        weights={north: "2", south: "1"},
    ) == {north: Decimal("66.67"), south: Decimal("33.33")}
    # In proportion to last November's actuals of the team's own reps: rep_a 620, rep_b 500.
    team = await create(
        analytics,
        org.manager_north,
        metric="sales_amount",
        period="2027-11",
        scope="team",
        scope_id=north,
        value="2240.00",
    )
    assert await split(analytics, org.manager_north, team, into="reps", method="last_year") == {
        org.rep_a.sub: Decimal("1240.00"),
        org.rep_b.sub: Decimal("1000.00"),
    }
    # The dashboard shows the target's completion for its scope and period.
    board = await analytics.get(
        "/api/v1/kpis/dashboard",
        params={"scope": "team", "scope_id": north, "period": "2027-11"},
        as_=org.manager_north,
    )
    rows = board.json()["figures"]["target_completion"]["details"]["targets"]
    row = next(r for r in rows if r["target_id"] == team["id"])
    assert (row["target_metric"], row["target"], Decimal(row["completion"])) == (
        "sales_amount",
        "2240.00",
        Decimal(0),
    )


async def test_who_sets_and_reads_targets(analytics, world, org):
    body = {"metric": "visits", "period": "2027-01", "scope": "team", "value": "10.00"}
    south = {**body, "scope_id": str(org.team_south)}
    # A scope the caller does not see is not there for them; one they see but may not set: 403.
    assert (await analytics.post(TARGETS, json=south, as_=org.rep_south)).status_code == 404
    assert (await analytics.post(TARGETS, json=south, as_=org.manager_north)).status_code == 404
    mine = {**body, "scope": "rep", "scope_id": org.rep_south.sub}
    assert (await analytics.post(TARGETS, json=mine, as_=org.rep_south)).status_code == 403
    made = await create(analytics, org.manager_south, **south)
    assert (
        await analytics.get(f"{TARGETS}/{made['id']}", as_=org.manager_north)
    ).status_code == 404
    bad = await analytics.post(TARGETS, json={**south, "period": "2027-13"}, as_=org.admin)
    assert bad.status_code == 422 and "period" in bad.text
    # Keys read KPIs with the kpis:read scope only, and never set targets.
    reader = make_principal("integration", kind="key", scopes=["kpis:read"])
    other = make_principal("integration", kind="key", scopes=["customers:read"])
    params = {
        "metric": "sales_amount",
        "scope": "company",
        "from": "2026-11-01",
        "to": "2026-12-01",
    }
    assert (await analytics.get("/api/v1/kpis", params=params, as_=reader)).status_code == 200
    refused = await analytics.get("/api/v1/kpis", params=params, as_=other)
    assert refused.status_code == 403 and "kpis:read" in refused.text
    assert (await analytics.post(TARGETS, json=south, as_=reader)).status_code == 403


async def test_a_target_changes_only_at_the_version_last_read(analytics, world, org):
    made = await create(
        analytics, org.admin, metric="visits", period="2027-02", scope="company", value="40.00"
    )
    item = f"{TARGETS}/{made['id']}"
    current = await analytics.get(item, as_=org.admin)
    etag = current.headers["etag"]
    missing = await analytics.patch(item, json={"value": "50.00"}, as_=org.admin)
    assert missing.status_code == 428 and "If-Match" in missing.text
    changed = await analytics.patch(
        item, json={"value": "50.00"}, headers={"If-Match": etag}, as_=org.admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["value"] == "50.00" and changed.headers["etag"] != etag
    # A second writer still holding the old ETag changes nothing.
    stale = await analytics.patch(
        item, json={"value": "60.00"}, headers={"If-Match": etag}, as_=org.admin
    )
    assert stale.status_code == 412, stale.text
    assert (await analytics.get(item, as_=org.admin)).json()["value"] == "50.00"
