"""`make demo`: fill a running stack (`make run`) with a living archive, through the public API.

Creates two regional teams with a manager and four reps each, then has every rep create their
customers (with contacts and a location), place orders and record payments, exactly as the
apps would; then a month of each rep's field work (`fieldforce/demo_visits.py`: plans, visits,
daily reports, complaints), so the follow-up list and the reports' derived figures have data.
Every record carries a stable `external_ref` (source "demo"), so a second run finds what the
first made and adds nothing twice.

Environment: GATEWAY_URL (default http://127.0.0.1:8000), BOOTSTRAP_ADMIN_EMAIL /
BOOTSTRAP_ADMIN_PASSWORD (else the password `make run` keeps in .run/keys/admin_password),
DEMO_PASSWORD (the demo users' password; else generated once into .run/keys/demo_password),
DEMO_CUSTOMERS_PER_REP (default 40).
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import sys
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from fieldforce import demo_visits
from fieldforce.apps import ROOT

KEYS_DIR = ROOT / ".run" / "keys"
SOURCE = "demo"
TEAMS = {
    "EAST": ("Demo East", ["Shanghai", "Hangzhou", "Nanjing"]),
    "NORTH": ("Demo North", ["Beijing", "Tianjin", "Shenyang"]),
}
REPS_PER_TEAM = 4
# Rough city centres; a customer's point lands a few kilometres around its city's.
CITY_POINTS = {
    "Shanghai": (31.2304, 121.4737),
    "Hangzhou": (30.2741, 120.1551),
    "Nanjing": (32.0603, 118.7969),
    "Beijing": (39.9042, 116.4074),
    "Tianjin": (39.3434, 117.3616),
    "Shenyang": (41.8057, 123.4315),
}
INDUSTRIES = ["Printing", "Logistics", "Retail", "Education", "Healthcare", "Manufacturing"]
PRODUCTS = [
    ("Office paper A4 (box)", Decimal("32.50")),
    ("Toner cartridge", Decimal("89.00")),
    ("Filing cabinet", Decimal("460.00")),
    ("Desk chair", Decimal("720.00")),
    ("Maintenance contract (month)", Decimal("1500.00")),
]
COMPANY_WORDS = ["Golden", "River", "Star", "Harmony", "Pacific", "Summit", "Jade", "Bright"]
COMPANY_KINDS = ["Trading", "Industries", "Logistics", "Printing", "Foods", "Medical"]
CONCURRENCY = 6


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _secret_file(name: str) -> Path:
    return KEYS_DIR / name


def admin_credentials() -> tuple[str, str]:
    email = os.environ.get("BOOTSTRAP_ADMIN_EMAIL", "admin@example.com")
    password = os.environ.get("BOOTSTRAP_ADMIN_PASSWORD")
    if not password:
        path = _secret_file("admin_password")
        if not path.exists():
            raise SystemExit(
                "[demo] no admin password: set BOOTSTRAP_ADMIN_PASSWORD or start `make run` first"
            )
        password = path.read_text().strip()
    return email, password


def demo_password() -> str:
    given = os.environ.get("DEMO_PASSWORD")
    if given:
        return given
    path = _secret_file("demo_password")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


class ApiError(RuntimeError):
    """The public API answered something the demo cannot go on from."""


@dataclass
class Api:
    client: httpx.AsyncClient
    token: str = ""
    calls: int = 0

    async def request(
        self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(kw.pop("headers", {}))
        for attempt in range(6):
            resp = await self.client.request(method, path, headers=headers, **kw)
            self.calls += 1
            if resp.status_code == 429:
                # Rate limited: wait as told, then try again.
                await asyncio.sleep(float(resp.headers.get("retry-after", "1")) + attempt)
                continue
            if resp.status_code not in ok:
                raise ApiError(f"{method} {path} -> {resp.status_code}: {resp.text[:300]}")
            return resp
        raise ApiError(f"{method} {path}: still rate limited")

    async def login(self, email: str, password: str) -> None:
        resp = await self.request(
            "POST",
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
        self.token = resp.json()["access_token"]

    async def all_pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
            page = (await self.request("GET", path, params=query)).json()
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items


@dataclass
class Person:
    email: str
    name: str
    role: str
    team_id: str
    id: str = ""


@dataclass
class Totals:
    customers_created: int = 0
    customers_existing: int = 0
    orders_created: int = 0
    payments_created: int = 0
    contacts: int = 0
    failures: list[str] = field(default_factory=list)


async def ensure_team(api: Api, name: str, existing: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if name in existing:
        return existing[name]
    team = (await api.request("POST", "/api/v1/teams", json={"name": name})).json()
    say(f"created team {name}")
    return dict(team)


async def ensure_user(
    api: Api, person: Person, password: str, existing: dict[str, dict[str, Any]]
) -> Person:
    found = existing.get(person.email)
    if found is None:
        body = {
            "email": person.email,
            "name": person.name,
            "role": person.role,
            "team_id": person.team_id,
            "password": password,
        }
        found = (await api.request("POST", "/api/v1/users", json=body)).json()
        say(f"created {person.role} {person.email}")
    person.id = found["id"]
    return person


def plan_org() -> dict[str, tuple[Person, list[Person]]]:
    org: dict[str, tuple[Person, list[Person]]] = {}
    for region, (team_name, _) in TEAMS.items():
        slug = region.lower()
        manager = Person(f"demo.{slug}.manager@example.com", f"{team_name} Manager", "manager", "")
        reps = [
            Person(f"demo.{slug}.rep{i}@example.com", f"{team_name} Rep {i}", "rep", "")
            for i in range(1, REPS_PER_TEAM + 1)
        ]
        org[region] = (manager, reps)
    return org


def customer_body(region: str, rep_no: int, n: int, rng: random.Random) -> dict[str, Any]:
    _, cities = TEAMS[region]
    name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {region.title()}-{rep_no}-{n}"
    lat, lon = CITY_POINTS[rng.choice(cities)]
    body: dict[str, Any] = {
        "location": {
            "lat": round(lat + rng.uniform(-0.05, 0.05), 6),
            "lon": round(lon + rng.uniform(-0.05, 0.05), 6),
        },
        "name": name,
        "region": region,
        "level": rng.choices(["A", "B", "C"], weights=[1, 3, 6])[0],
        "industry": rng.choice(INDUSTRIES),
        "source": SOURCE,
        "external_ref": f"{region}-{rep_no}-{n}",
        "tags": rng.sample(["key-account", "new", "tender", "repeat", "referral"], k=2),
        "estimated_potential": str(Decimal(rng.randrange(20, 2000) * 1000)),
        "contacts": [
            {
                "name": f"Contact {n}-1",
                "title": "Purchasing manager",
                "phone": f"+86 13{rng.randrange(100000000, 999999999)}",
                "email": f"buyer{n}.{rep_no}.{region.lower()}@example.com",
                "is_decision_maker": True,
                "is_primary": True,
            }
        ],
    }
    # Data quality varies, as in a real archive: some records lack address, phone or email.
    if rng.random() < 0.8:
        body["address"] = f"{rng.randrange(1, 999)} {rng.choice(cities)} Road, {rng.choice(cities)}"
    if rng.random() < 0.85:
        body["phone"] = f"0{rng.randrange(10, 99)} {rng.randrange(1000_0000, 9999_9999)}"
    if rng.random() < 0.7:
        body["email"] = f"info{n}.{rep_no}@{region.lower()}-demo.example.com"
    if rng.random() < 0.4:
        body["contacts"].append({"name": f"Contact {n}-2", "title": "Finance"})
    return body


async def fill_rep(
    api: Api, region: str, rep_no: int, count: int, totals: Totals, gate: asyncio.Semaphore
) -> None:
    rng = random.Random(f"{region}-{rep_no}")  # same data on every run
    today = date.today()
    for n in range(1, count + 1):
        body = customer_body(region, rep_no, n, rng)
        orders = [
            (
                today - timedelta(days=rng.randrange(1, 540)),
                rng.sample(PRODUCTS, k=rng.randint(1, 3)),
            )
            for _ in range(rng.choice([0, 1, 1, 2, 3, 4]))
        ]
        async with gate:
            try:
                await _fill_customer(api, body, orders, rng, totals)
            except ApiError as exc:
                totals.failures.append(str(exc))


async def _fill_customer(
    api: Api,
    body: dict[str, Any],
    orders: list[tuple[date, list[tuple[str, Decimal]]]],
    rng: random.Random,
    totals: Totals,
) -> None:
    resp = await api.request(
        "POST",
        "/api/v1/customers",
        json=body,
        params={"confirm_duplicates": "true"},
        ok=(201, 409),
    )
    if resp.status_code == 409:
        existing_id = resp.json().get("existing_id")
        if not existing_id:
            raise ApiError(f"create {body['external_ref']}: {resp.text[:200]}")
        customer_id = existing_id
        totals.customers_existing += 1
    else:
        customer_id = resp.json()["id"]
        totals.customers_created += 1
        totals.contacts += len(body["contacts"])
    for k, (day, products) in enumerate(orders, start=1):
        lines = [
            {"product": p, "quantity": str(q), "unit_price": str(price)}
            for (p, price), q in ((pp, rng.randint(1, 20)) for pp in products)
        ]
        amount = sum(Decimal(ln["quantity"]) * Decimal(ln["unit_price"]) for ln in lines)
        order_body = {
            "order_date": day.isoformat(),
            "due_date": (day + timedelta(days=30)).isoformat(),
            "amount": str(amount),
            "gross_profit": str((amount * Decimal("0.25")).quantize(Decimal("0.01"))),
            "lines": lines,
            "source": SOURCE,
            "external_ref": f"{body['external_ref']}-O{k}",
        }
        placed = await api.request(
            "POST", f"/api/v1/customers/{customer_id}/orders", json=order_body
        )
        order = placed.json()
        if placed.status_code == 201:
            totals.orders_created += 1
        # Most orders are paid, some in part, some not yet: collections look real.
        share = rng.choice([Decimal("1"), Decimal("1"), Decimal("0.5"), Decimal("0")])
        to_pay = (amount * share).quantize(Decimal("0.01"))
        if to_pay > 0:
            paid = await api.request(
                "POST",
                f"/api/v1/orders/{order['id']}/payments",
                json={
                    "amount": str(to_pay),
                    "received_on": min(
                        day + timedelta(days=rng.randrange(3, 45)), date.today()
                    ).isoformat(),
                    "method": rng.choice(["bank transfer", "cash", "cheque"]),
                    "source": SOURCE,
                    "external_ref": f"{order_body['external_ref']}-P1",
                },
            )
            if paid.status_code == 201:
                totals.payments_created += 1


async def main() -> int:
    base = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000").rstrip("/")
    per_rep = int(os.environ.get("DEMO_CUSTOMERS_PER_REP", "40"))
    email, password = admin_credentials()
    users_password = demo_password()
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        try:
            await client.get("/healthz")
        except httpx.HTTPError:
            say(f"no gateway at {base}: start the stack with `make run` first")
            return 1
        admin = Api(client)
        await admin.login(email, password)
        say(f"signed in as {email} at {base}")

        teams = {t["name"]: t for t in await admin.all_pages("/api/v1/teams")}
        users = {u["email"]: u for u in await admin.all_pages("/api/v1/users")}
        org = plan_org()
        for region, (manager, reps) in org.items():
            team = await ensure_team(admin, TEAMS[region][0], teams)
            for person in (manager, *reps):
                person.team_id = team["id"]
                await ensure_user(admin, person, users_password, users)
            if team.get("manager_id") != manager.id:
                await admin.request(
                    "PATCH", f"/api/v1/teams/{team['id']}", json={"manager_id": manager.id}
                )

        totals = Totals()
        gate = asyncio.Semaphore(CONCURRENCY)
        jobs = []
        for region, (_, reps) in org.items():
            for rep_no, rep in enumerate(reps, start=1):
                api = Api(client)
                await api.login(rep.email, users_password)
                jobs.append(fill_rep(api, region, rep_no, per_rep, totals, gate))
        say(f"filling {len(jobs)} reps' books with {per_rep} customers each ...")
        await asyncio.gather(*jobs)
        visit_totals = await fill_visits(client, org, users_password, per_rep, gate)

    say(
        f"customers: {totals.customers_created} created, {totals.customers_existing} already "
        f"there; contacts {totals.contacts}; orders {totals.orders_created}; "
        f"payments {totals.payments_created}"
    )
    say(
        f"demo users sign in with the password in {_secret_file('demo_password')} "
        "(or DEMO_PASSWORD), e.g. demo.east.rep1@example.com"
    )
    for failure in totals.failures[:10]:
        say(f"failed: {failure}")
    for line in demo_visits.summary(visit_totals):
        say(line)
    return 1 if totals.failures or visit_totals.failures else 0


async def fill_visits(
    client: httpx.AsyncClient,
    org: dict[str, tuple[Person, list[Person]]],
    password: str,
    per_rep: int,
    gate: asyncio.Semaphore,
) -> demo_visits.VisitTotals:
    """A month of field work per rep (see `fieldforce.demo_visits`)."""
    totals = demo_visits.VisitTotals()
    say("logging a month of plans, visits and daily reports per rep ...")

    async def one(manager_api: Api, rep: Person, seed: str) -> None:
        api = Api(client)
        await api.login(rep.email, password)
        async with gate:
            try:
                known = await demo_visits.wait_for_read_model(api, per_rep)
                mine = await api.all_pages("/api/v1/customers", owner_id=rep.id)
                points = {c["id"]: c["location"] for c in mine if c.get("location")}
                await demo_visits.fill_month(api, manager_api, rep.id, known, points, totals, seed)
            except (ApiError, demo_visits.NotArrived) as exc:
                totals.failures.append(str(exc))

    jobs = []
    for region, (manager, reps) in org.items():
        manager_api = Api(client)
        await manager_api.login(manager.email, password)
        jobs += [one(manager_api, rep, f"{region}-{n}") for n, rep in enumerate(reps, start=1)]
    await asyncio.gather(*jobs)
    return totals


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
