"""`make demo`, second part (`python -m fieldforce.demo_leads`, after `fieldforce.demo`, whose
teams and users it works with): leads and the pipeline, through the public API.

An integration's API key (scope `leads:write`, its secret kept in .run/keys/demo_leads_key)
pushes a few hundred leads from several sources, received over the last 80 days, in bulk
(JSON and CSV); the assignment rules (region -> the demo team) hand the qualified ones to the
reps; admins record what each source cost per month. Then every rep contacts most of their
leads, converts some (the customer created through the customers service under the rep's own
authority, or an existing one picked when the customers service finds it), and walks the
opportunities through the stages: some won, some lost, some still moving, some stalled.
Steps taken in the past are recorded with when they happened (`at`), so the stalled list and
the cycle figures have a history to show.

Every lead carries a stable `external_id`, so a second run updates nothing twice; leads that
were converted before keep their state.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import random
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from fieldforce.demo import (
    TEAMS,
    Api,
    ApiError,
    Person,
    _secret_file,
    admin_credentials,
    demo_password,
    plan_org,
    say,
)

LEADS = "/api/v1/leads"
OPPORTUNITIES = "/api/v1/opportunities"
SOURCES = ("web_form", "trade_show", "referral", "telemarketing", "advertising", "partner")
LEADS_PER_SOURCE = 50
LEAD_DAYS = 80
OPEN_STAGES = ("prospecting", "needs_analysis", "solution", "quote_negotiation", "contract")
MONTHLY_COST = {"web_form": 3000, "trade_show": 25000, "advertising": 12000, "partner": 5000}
EVALUATION = {
    "need_urgency": ["high", "medium", "low"],
    "purchase_timing": ["within_1_month", "within_3_months", "within_6_months", "later"],
    "purchase_cycle": ["short", "medium", "long"],
    "decision_maker_identified": ["yes", "no"],
    "budget_confirmed": ["yes", "partial", "no"],
}
KEY_NAME = "Demo lead intake"


async def lead_key(admin: Api) -> str:
    """The integration's key: the one kept from an earlier run while it still works, else a
    new one (its secret is shown once and kept in .run/keys)."""
    path = _secret_file("demo_leads_key")
    if path.exists():
        secret = path.read_text().strip()
        probe = await admin.client.get(f"{LEADS}/sources", headers={"X-API-Key": secret})
        if probe.status_code == 200:
            return secret
    created = await admin.request(
        "POST", "/api/v1/api-keys", json={"name": KEY_NAME, "scopes": ["leads:write"]}
    )
    secret = str(created.json()["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secret)
    path.chmod(0o600)
    say(f"created the API key {KEY_NAME!r} (leads:write)")
    return secret


async def ensure_rules(admin: Api, teams: dict[str, str]) -> None:
    """Region -> the region's demo team: round robin in the east, least load in the north."""
    rules = (await admin.request("GET", f"{LEADS}/assignment-rules")).json()["items"]
    have = {(r["region"], r["team_id"]) for r in rules}
    for region, team_id in teams.items():
        if (region, team_id) in have:
            continue
        strategy = "round_robin" if region == "EAST" else "least_load"
        await admin.request(
            "POST",
            f"{LEADS}/assignment-rules",
            json={"region": region, "team_id": team_id, "strategy": strategy},
        )
        say(f"assignment rule: {region} -> {TEAMS[region][0]} ({strategy})")


def lead_rows(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    rows = []
    regions = list(TEAMS)
    for source in SOURCES:
        for n in range(1, LEADS_PER_SOURCE + 1):
            region = rng.choice(regions) if rng.random() < 0.9 else "WEST"  # no rule: the queue
            received = now - timedelta(days=rng.uniform(1, LEAD_DAYS))
            evaluation = {k: rng.choice(v) for k, v in EVALUATION.items() if rng.random() < 0.85}
            # Hot leads are likelier from referrals and trade shows.
            if source in ("referral", "trade_show") and rng.random() < 0.5:
                evaluation.update(need_urgency="high", budget_confirmed="yes")
            row: dict[str, Any] = {
                "source": source,
                "external_id": f"demo-{source}-{n}",
                "company": f"{rng.choice(['Apex', 'Lotus', 'Orient', 'Crystal', 'Phoenix'])} "
                f"{rng.choice(['Trading', 'Printing', 'Foods', 'Clinic', 'Logistics'])} "
                f"{source[:3].upper()}{n}",
                "contact_name": f"Contact {source} {n}",
                "phone": f"+86 15{rng.randrange(100000000, 999999999)}",
                "email": f"lead{n}.{source}@demo-leads.example.com",
                "region": region,
                "industry": rng.choice(["Printing", "Logistics", "Retail", "Healthcare"]),
                "need": rng.choice(["office supplies", "printers", "maintenance contract"]),
                "received_at": received.isoformat(),
                "evaluation": evaluation,
                "attributes": {"campaign": f"demo-{received:%Y-%m}"},
            }
            rows.append(row)
    return rows


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    """The same rows as a CSV file, as a marketing tool exports them."""
    keys = sorted({k for r in rows for k in r["evaluation"]})
    columns = [
        "source",
        "external_id",
        "company",
        "contact_name",
        "phone",
        "email",
        "region",
        "industry",
        "need",
        "received_at",
        *(f"evaluation.{k}" for k in keys),
        "attributes.campaign",
    ]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for r in rows:
        writer.writerow(
            [r[c] for c in columns[:10]]
            + [r["evaluation"].get(k, "") for k in keys]
            + [r["attributes"]["campaign"]]
        )
    return out.getvalue().encode()


async def push_leads(client: httpx.AsyncClient, secret: str, rows: list[dict[str, Any]]) -> None:
    half = len(rows) // 2
    headers = {"X-API-Key": secret}
    sent = await client.post(f"{LEADS}/bulk", json={"rows": rows[:half]}, headers=headers)
    csv_sent = await client.post(
        f"{LEADS}/bulk",
        content=as_csv(rows[half:]),
        headers={**headers, "Content-Type": "text/csv"},
    )
    for resp in (sent, csv_sent):
        if resp.status_code != 200:
            raise ApiError(f"bulk intake -> {resp.status_code}: {resp.text[:300]}")
    counts = {k: sent.json()[k] + csv_sent.json()[k] for k in ("created", "updated", "unchanged")}
    say(
        f"leads pushed with the API key (JSON and CSV): {counts['created']} new, "
        f"{counts['updated']} updated, {counts['unchanged']} unchanged"
    )


async def record_costs(admin: Api, now: datetime) -> None:
    months = {(now - timedelta(days=d)).strftime("%Y-%m") for d in range(0, LEAD_DAYS + 1, 15)}
    for source, amount in MONTHLY_COST.items():
        for month in sorted(months):
            await admin.request(
                "PUT",
                f"{LEADS}/sources/{source}/costs/{month}",
                json={"amount": f"{amount}.00", "note": "demo"},
            )


def _at(moment: datetime) -> str:
    return min(moment, datetime.now(UTC) - timedelta(minutes=1)).isoformat()


async def work_leads(api: Api, rep: Person, rng: random.Random, tally: dict[str, int]) -> None:
    """The rep's day-to-day: first contacts, conversions, and the pipeline's moves."""
    mine = await api.all_pages(LEADS, owner_id=rep.id)
    for lead in mine:
        if lead["status"] == "assigned" and rng.random() < 0.8:
            received = datetime.fromisoformat(lead["received_at"])
            contacted = received + timedelta(days=rng.uniform(0.2, 3))
            await api.request(
                "POST", f"{LEADS}/{lead['id']}/contacted", json={"at": _at(contacted)}
            )
            lead["status"], lead["contacted_at"] = "contacted", _at(contacted)
            tally["contacted"] += 1
        if lead["status"] == "contacted" and rng.random() < 0.55:
            await convert(api, lead, rng, tally)


async def convert(
    api: Api, lead: dict[str, Any], rng: random.Random, tally: dict[str, int]
) -> None:
    opened = datetime.fromisoformat(lead["contacted_at"]) + timedelta(days=rng.uniform(0.5, 4))
    body: dict[str, Any] = {
        "amount": f"{rng.randrange(5, 300) * 1000}.00",
        "expected_close_on": (date.today() + timedelta(days=rng.randrange(10, 120))).isoformat(),
        "at": _at(opened),
    }
    path = f"{LEADS}/{lead['id']}/convert"
    resp = await api.request("POST", path, json=body, ok=(201, 409))
    if resp.status_code == 409:
        problem = resp.json()
        candidates = problem.get("candidates") or []
        if not candidates:
            raise ApiError(f"convert {lead['external_id']}: {resp.text[:200]}")
        # The customers service knows the company already: take that customer.
        resp = await api.request("POST", path, json={**body, "customer_id": candidates[0]["id"]})
        tally["picked_customer"] += 1
    done = resp.json()
    tally["converted"] += 1
    tally["customers_created"] += int(done["customer_created"])
    await walk(api, done["opportunity"], opened, rng, tally)


async def walk(
    api: Api,
    opportunity: dict[str, Any],
    opened: datetime,
    rng: random.Random,
    tally: dict[str, int],
) -> None:
    """Through the stages at a realistic pace; it ends won, lost, still open, or stalled."""
    fate = rng.choices(["won", "lost", "open", "stalled"], weights=[3, 2, 3, 2])[0]
    stop = rng.randrange(1, len(OPEN_STAGES)) if fate in ("open", "stalled") else len(OPEN_STAGES)
    at = opened
    now = datetime.now(UTC)
    path = f"{OPPORTUNITIES}/{opportunity['id']}/stage"
    for stage in OPEN_STAGES[1:stop]:
        at += timedelta(days=rng.uniform(1, 6) if fate != "stalled" else rng.uniform(0.5, 2))
        if at >= now:
            return
        await api.request("POST", path, json={"stage": stage, "at": _at(at)})
    at += timedelta(days=rng.uniform(1, 8))
    if fate in ("open", "stalled") or at >= now:
        tally[fate] += 1
        return
    if fate == "won":
        await api.request(
            "POST", path, json={"stage": "won", "amount": opportunity["amount"], "at": _at(at)}
        )
    else:
        reason = rng.choice(["price", "went with a competitor", "no budget this year"])
        await api.request(
            "POST",
            path,
            json={"stage": "lost", "lost_reason": reason, "lost_to": "Acme", "at": _at(at)},
        )
    tally[fate] += 1


async def fill_pipeline(
    client: httpx.AsyncClient,
    admin: Api,
    org: dict[str, tuple[Person, list[Person]]],
    teams: dict[str, str],
    password: str,
) -> dict[str, int]:
    now = datetime.now(UTC)
    rng = random.Random("demo-leads")
    secret = await lead_key(admin)
    await ensure_rules(admin, teams)
    await push_leads(client, secret, lead_rows(rng, now))
    await record_costs(admin, now)
    tally = dict.fromkeys(
        (
            "contacted",
            "converted",
            "customers_created",
            "picked_customer",
            "won",
            "lost",
            "open",
            "stalled",
        ),
        0,
    )
    for _, reps in org.values():
        for rep in reps:
            api = Api(client)
            await api.login(rep.email, password)
            await work_leads(api, rep, random.Random(rep.email), tally)
    stalled = await admin.request("GET", f"{OPPORTUNITIES}/stalled", params={"limit": 200})
    say(
        f"pipeline: {tally['contacted']} leads contacted, {tally['converted']} converted "
        f"({tally['customers_created']} new customers, {tally['picked_customer']} existing "
        f"ones picked); opportunities won {tally['won']}, lost {tally['lost']}, open "
        f"{tally['open'] + tally['stalled']}; {len(stalled.json()['items'])} on the stalled list"
    )
    return tally


async def main() -> int:
    base = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/")
    email, password = admin_credentials()
    users_password = demo_password()
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        admin = Api(client)
        await admin.login(email, password)
        teams = {t["name"]: t["id"] for t in await admin.all_pages("/api/v1/teams")}
        users = {u["email"]: u["id"] for u in await admin.all_pages("/api/v1/users")}
        org = plan_org()
        team_ids: dict[str, str] = {}
        for region, (manager, reps) in org.items():
            name = TEAMS[region][0]
            if name not in teams or any(p.email not in users for p in (manager, *reps)):
                say("the demo organisation is missing: run `python -m fieldforce.demo` first")
                return 1
            team_ids[region] = teams[name]
            for person in (manager, *reps):
                person.id, person.team_id = users[person.email], teams[name]
        try:
            await fill_pipeline(client, admin, org, team_ids, users_password)
        except ApiError as exc:
            say(f"failed: {exc}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
