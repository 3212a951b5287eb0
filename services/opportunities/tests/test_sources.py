"""Source effectiveness: per source the funnel, the revenue won, the days from lead to won,
and the cost per won where the source's monthly cost was recorded."""

from __future__ import annotations

from datetime import datetime, timedelta

from servicekit.testing.tokens import make_principal

LEADS = "/api/v1/leads"
SOURCES = "/api/v1/leads/sources"


def key(*scopes: str):
    return make_principal("integration", kind="key", scopes=scopes)


async def test_effectiveness_per_source_with_cost_per_won(opportunities, org, clock):
    svc = opportunities
    start = clock.now()
    month = start.strftime("%Y-%m")
    # trade_show: two won (after 10 and 20 days), one invalid; referral: one nurtured.
    won = []
    for amount in ("30000.00", "10000.00"):
        opportunity = await svc.opportunity(
            org.manager_north, org.rep_a, lead={"source": "trade_show"}
        )
        won.append((opportunity["id"], amount))
    spam = await svc.push(source="trade_show")
    await svc.ok(
        await svc.post(f"{LEADS}/{spam['id']}/invalidate", json={"reason": "spam"}, as_=org.admin)
    )
    await svc.push(source="referral", evaluation=svc.COLD)
    clock.advance(days=10)
    await svc.ok(await svc.move(won[0][0], org.rep_a, "won", amount=won[0][1]))
    clock.advance(days=10)
    await svc.ok(await svc.move(won[1][0], org.rep_a, "won", amount=won[1][1]))

    put = await svc.put(
        f"{SOURCES}/trade_show/costs/{month}", json={"amount": "8000.00"}, as_=org.admin
    )
    assert (await svc.ok(put))["month"] == month
    assert (
        await svc.put(
            f"{SOURCES}/trade_show/costs/{month}", json={"amount": "8000.00"}, as_=org.manager_north
        )
    ).status_code == 403
    assert (
        await svc.put(f"{SOURCES}/billboard/costs/{month}", json={"amount": "1"}, as_=org.admin)
    ).status_code == 404
    for bad_month in ("2024-13", "24-01", "2024-1"):
        assert (
            await svc.put(
                f"{SOURCES}/trade_show/costs/{bad_month}", json={"amount": "1"}, as_=org.admin
            )
        ).status_code == 422
    assert (
        await svc.put(f"{SOURCES}/trade_show/costs/{month}", json={"amount": "-1"}, as_=org.admin)
    ).status_code == 422

    period = {
        "from": (start - timedelta(days=1)).date().isoformat(),
        "to": (start + timedelta(days=1)).date().isoformat(),
    }
    figures = await svc.ok(await svc.get(f"{SOURCES}/effectiveness", params=period, as_=org.admin))
    by_source = {s["source"]: s for s in figures["sources"]}
    assert list(by_source)[:2] == ["web_form", "trade_show"]  # the settings' order
    show = by_source["trade_show"]
    assert (show["leads"], show["invalid"], show["qualified"], show["converted"], show["won"]) == (
        3,
        1,
        3,
        2,
        2,
    )
    assert show["invalid_rate"] == round(1 / 3, 4) and show["contacted"] == 2
    assert show["won_amount"] == "40000.00" and show["median_days_to_won"] == 15.0
    assert show["cost"] == "8000.00" and show["cost_per_won"] == "4000.00"
    referral = by_source["referral"]
    assert (referral["leads"], referral["qualified"], referral["won"]) == (1, 0, 0)
    assert referral["cost"] is None and referral["cost_per_won"] is None
    assert by_source["partner"]["leads"] == 0

    # A manager sees the figures of the leads they see, without the company-wide cost.
    south = await svc.ok(
        await svc.get(f"{SOURCES}/effectiveness", params=period, as_=org.manager_south)
    )
    assert {s["source"]: s["won"] for s in south["sources"]}["trade_show"] == 0
    assert {s["source"]: s["cost"] for s in south["sources"]}["trade_show"] is None
    assert (
        await svc.get(f"{SOURCES}/effectiveness", params=period, as_=org.rep_a)
    ).status_code == 403
    keyed = await svc.ok(
        await svc.get(f"{SOURCES}/effectiveness", params=period, as_=key("leads:read"))
    )
    assert {s["source"]: s["won"] for s in keyed["sources"]}["trade_show"] == 2
    assert (
        await svc.get(f"{SOURCES}/effectiveness", params=period, as_=key("leads:write"))
    ).status_code == 403
    costs = await svc.ok(await svc.get(f"{SOURCES}/costs", params=period, as_=org.manager_north))
    assert [(c["source"], c["amount"]) for c in costs["items"]] == [("trade_show", "8000.00")]

    for bad in (
        {"from": period["to"], "to": period["from"]},
        {"from": "2024-02-30", "to": "2024-03-01"},
        {"to": "2024-03-01"},
    ):
        assert (
            await svc.get(f"{SOURCES}/effectiveness", params=bad, as_=org.admin)
        ).status_code == 422
    later = {
        "from": (start + timedelta(days=40)).date().isoformat(),
        "to": (start + timedelta(days=50)).date().isoformat(),
    }
    empty = await svc.ok(await svc.get(f"{SOURCES}/effectiveness", params=later, as_=org.admin))
    assert all(s["leads"] == 0 for s in empty["sources"])
    listed = await svc.ok(await svc.get(SOURCES, as_=org.rep_a))
    assert "trade_show" in listed["items"]
    assert isinstance(datetime.fromisoformat(put.json()["updated_at"]), datetime)
