"""The visits part of `make demo`: a month of each demo rep's field work, through the public API.

For every working day of the last four weeks: the rep's visit plan (submitted; the manager
approves most and returns a few, which the rep fixes and submits again), the visits that
fulfil it (a few checked in far from the customer, so the flag shows) and some unplanned
calls, the day's report with its derived figures (the manager signs most off; the last two
days are mostly left unreported, so the missing list has names), and now and then a complaint
or a market report. A quarter of each rep's customers get no visit, so the follow-up list
shows them. A rep whose month is already in the log is left as it is, so a second run adds
nothing twice.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fieldforce.demo import Api

DAYS = 28
PURPOSES = ["order_taking", "service", "collection", "market_research", "new_development"]
MEMOS = [
    "Walked the shop floor; they are low on toner.",
    "Buyer asked for a quote on 20 desk chairs.",
    "Collected last month's invoice; next order after the holiday.",
    "New purchasing manager; introduced our maintenance contract.",
    "Competitor offered 5% off paper; we hold on service.",
    "Complained about a late delivery; promised a follow-up call.",
    "Interested in the filing cabinets for the new office.",
]
COMPLAINTS = [
    ("delivery", "Two boxes arrived damaged"),
    ("billing", "Invoice charged twice"),
    ("quality", "Toner cartridges leak"),
]
MARKET = [
    ("pricing", "A competitor cut paper prices by 5 % in the district"),
    ("demand", "Several customers plan to move offices next quarter"),
]


class NotArrived(RuntimeError):
    """The visits service has not received the rep's customers over the customers feed."""


@dataclass
class VisitTotals:
    plans: int = 0
    visits: int = 0
    far: int = 0
    reports: int = 0
    cases: int = 0
    skipped_reps: int = 0
    failures: list[str] = field(default_factory=list)


def working_days(today: date) -> list[date]:
    days = [today - timedelta(days=n) for n in range(DAYS, -1, -1)]
    return [d for d in days if d.isoweekday() <= 5]


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), UTC).isoformat().replace("+00:00", "Z")


def offset(point: dict[str, float] | None, metres: float) -> dict[str, float] | None:
    """A point `metres` north of `point` (a check-in far from the customer)."""
    if point is None:
        return None
    return {"lat": point["lat"] + metres / 111_320, "lon": point["lon"]}


async def wait_for_read_model(api: Api, count: int) -> list[dict[str, Any]]:
    """The rep's customers as the visits service knows them (they arrive over the feed)."""
    for _ in range(60):
        items = await api.all_pages("/api/v1/visits/follow-ups", due_before="2099-12-31")
        if len(items) >= count:
            return items
        await asyncio.sleep(1)
    raise NotArrived("the visits service did not receive the customers in time")


async def fill_month(
    rep_api: Api,
    manager_api: Api,
    rep_id: str,
    customers: list[dict[str, Any]],
    points: dict[str, dict[str, float]],
    totals: VisitTotals,
    seed: str,
) -> None:
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    days = working_days(today)
    logged = await rep_api.request(
        "GET", "/api/v1/visits", params={"rep_id": rep_id, "from": str(days[0]), "limit": 1}
    )
    if logged.json()["items"]:
        totals.skipped_reps += 1
        return
    # A quarter of the book is left alone this month: the follow-up list has names to show.
    customers = customers[: max(1, len(customers) * 3 // 4)]
    for day in days:
        # Today only up to an hour ago: visits are never in the future.
        last_hour = min(17, datetime.now(UTC).hour - 1) if day == today else 17
        if last_hour < 9:
            continue
        picked = rng.sample(customers, k=min(len(customers), rng.randint(3, 5)))
        hours = sorted(rng.sample(range(9, last_hour + 1), k=min(len(picked), last_hour - 8)))
        picked = picked[: len(hours)]
        items = [
            {
                "customer_id": c["customer_id"],
                "slot_start": at(day, h),
                "slot_end": at(day, h, 45),
                "purpose": rng.choice(PURPOSES),
            }
            for c, h in zip(picked, hours, strict=True)
        ]
        plan = (
            await rep_api.request(
                "POST", "/api/v1/visit-plans", json={"plan_date": str(day), "items": items}
            )
        ).json()
        totals.plans += 1
        await rep_api.request("POST", f"/api/v1/visit-plans/{plan['id']}/submit")
        path = f"/api/v1/visit-plans/{plan['id']}"
        if rng.random() < 0.1:
            await manager_api.request(
                "POST", f"{path}/return", json={"comment": "Add a C-level customer, please"}
            )
            await rep_api.request("POST", f"{path}/submit")
        await manager_api.request("POST", f"{path}/approve", json={"comment": "OK"})
        for item in plan["items"]:
            if rng.random() < 0.15:
                continue  # not every planned visit happens
            await _visit(rep_api, rng, totals, day, item, points)
        for _ in range(rng.randint(0, 2)):
            extra = rng.choice(customers)
            slot = {"customer_id": extra["customer_id"], "purpose": "service",
                    "slot_start": at(day, last_hour)}  # fmt: skip
            await _visit(rep_api, rng, totals, day, slot, points, phone=True)
        if rng.random() < 0.12:
            await _case(rep_api, rng, totals, rng.choice(customers))
        if day < today - timedelta(days=2) or (day != today and rng.random() < 0.3):
            await _report(rep_api, manager_api, rng, totals, day)


async def _visit(
    api: Api,
    rng: random.Random,
    totals: VisitTotals,
    day: date,
    item: dict[str, Any],
    points: dict[str, dict[str, float]],
    *,
    phone: bool = False,
) -> None:
    start = datetime.fromisoformat(item["slot_start"].replace("Z", "+00:00"))
    effective = rng.random() < 0.7
    order = effective and rng.random() < 0.35
    body: dict[str, Any] = {
        "customer_id": item["customer_id"],
        "channel": "phone" if phone else rng.choice(["in_person", "in_person", "online"]),
        "purpose": item["purpose"],
        "check_in_at": start.isoformat().replace("+00:00", "Z"),
        "check_out_at": (start + timedelta(minutes=rng.randint(10, 40))).isoformat(),
        "effective": effective,
        "order_taken": order,
        "memo": rng.choice(MEMOS),
        "next_visit_on": str(day + timedelta(days=rng.choice([7, 14, 30]))),
    }
    if not phone and "id" in item:
        body["plan_item_id"] = item["id"]
    if order:
        body["order_amount"] = str(rng.randrange(300, 20_000))
    if rng.random() < 0.3:
        body["collected_amount"] = str(rng.randrange(100, 5_000))
    if body["channel"] == "in_person":
        far = rng.random() < 0.08
        point = offset(points.get(item["customer_id"]), 2_000 if far else rng.uniform(5, 120))
        if point is not None:
            body["check_in_location"] = {**point, "accuracy_m": rng.choice([8, 15, 30])}
            totals.far += far
        body["expenses"] = [{"category": "transport", "amount": str(rng.randrange(10, 80))}]
    await api.request("POST", "/api/v1/visits", json=body)
    totals.visits += 1


async def _report(
    rep_api: Api, manager_api: Api, rng: random.Random, totals: VisitTotals, day: date
) -> None:
    report = (
        await rep_api.request(
            "POST",
            "/api/v1/daily-reports",
            json={
                "report_date": str(day),
                "attendance": "present",
                "competitor_info": rng.choice(["", "Rival visited two of my customers"]) or None,
                "customer_feedback": "Delivery times are appreciated",
                "lessons": rng.choice(["Call ahead before visiting", "Bring the price list"]),
                "tomorrow_focus": rng.choice(["Collections", "New customers", "Quotes"]),
                "mood": rng.randint(2, 5),
            },
            ok=(201, 409),
        )
    ).json()
    totals.reports += 1
    if "id" in report and rng.random() < 0.85:
        await manager_api.request(
            "POST",
            f"/api/v1/daily-reports/{report['id']}/sign-off",
            json={"comment": "Thanks"},
        )


async def _case(
    api: Api, rng: random.Random, totals: VisitTotals, customer: dict[str, Any]
) -> None:
    if rng.random() < 0.6:
        category, description = rng.choice(COMPLAINTS)
        case = (
            await api.request(
                "POST",
                "/api/v1/complaints",
                json={
                    "customer_id": customer["customer_id"],
                    "category": category,
                    "severity": rng.choice(["low", "medium", "high", "critical"]),
                    "description": description,
                },
            )
        ).json()
        if rng.random() < 0.6:
            await api.request(
                "POST",
                f"/api/v1/complaints/{case['id']}/resolve",
                json={"resolution": "Replaced and apologised"},
            )
    else:
        category, description = rng.choice(MARKET)
        await api.request(
            "POST",
            "/api/v1/market-reports",
            json={"category": category, "severity": "medium", "description": description},
        )
    totals.cases += 1


def summary(totals: VisitTotals) -> list[str]:
    return [
        f"visits: {totals.plans} plans, {totals.visits} visits ({totals.far} far from the "
        f"customer), {totals.reports} daily reports, {totals.cases} complaints and market "
        f"reports; {totals.skipped_reps} reps already had their month",
        *(f"failed: {failure}" for failure in totals.failures[:10]),
    ]
