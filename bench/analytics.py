"""The analytics dashboard at scale: customers, completed visits and orders loaded by COPY into
the read models, the rollups rebuilt from them, then the dashboard of a rep, a team of 50 and
the company for one month.

- `dashboard-rep`, `dashboard-team`, `dashboard-company`: `GET /api/v1/kpis/dashboard` (every
  KPI of the month, the month before and the targets) straight to the service (an admin's
  internal token), one connection; goal p95 < 50 ms each. The baseline is the same dashboard
  answered from a plain aggregate over the fact tables (`plain=true`: the same figures, which
  the benchmark checks are equal), same run: the ratio is what the rollups buy.
- `visit-to-dashboard` (with the whole stack: gateway, customers, visits, analytics): the time
  from a visit logged through the gateway to the rep's dashboard counting it, while a
  background load writes through the gateway; goal p95 < 1 s.

At BENCH_ANALYTICS_SCALE=1: 1,000,000 customers, 10,000,000 completed visits, 2,000,000 orders
(2,000 reps in 40 teams of 50, three years); the default 0.2 is a fifth of that (bench/README.md
says what ran). BENCH_ANALYTICS_WRITES (default 500) is the background writes per second,
BENCH_ANALYTICS_PROBES (default 100) the visits whose lag is measured.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from analytics.rollups import service as rollups
from bench.harness import Comparison, Context, Server, Side, WrkResult, call
from fieldforce.apps import BY_NAME
from fieldforce.stack import migrate_all
from servicekit.db import Database
from servicekit.testing.tokens import INTERNAL_TOKEN_HEADER, make_principal

DASHBOARD_P95_MS = 50.0
LAG_P95_S = 1.0
TEAM_SIZE = 50
REGIONS = tuple(f"R{n:02d}" for n in range(10))
START, END = date(2024, 1, 1), date(2026, 12, 1)
MONTH = "2026-11"
CHUNK = 100_000
SAMPLES = 100  # dashboards per side and scope (the plain side: fewer, it is slow)


def _rid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


@dataclass
class World:
    teams: list[uuid.UUID]
    reps: list[tuple[uuid.UUID, int]]  # (rep, team index)
    # per customer: (id, created day, owner index, owner index after the change, change day)
    customers: list[tuple[uuid.UUID, date, int, int, date | None]] = field(default_factory=list)

    def owner_on(self, customer: tuple[uuid.UUID, date, int, int, date | None], day: date) -> int:
        _, _, first, later, change = customer
        return later if change is not None and day >= change else first


def _day(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randrange(max(1, (last - first).days)))


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: list[Any]) -> None:
    await conn.copy_records_to_table(table, schema_name="analytics", columns=columns, records=rows)


async def load(url: str, scale: float) -> World:
    rng = random.Random(7)
    teams_n = max(2, round(40 * scale))
    world = World([_rid(rng) for _ in range(teams_n)], [])
    world.reps = [(_rid(rng), t) for t in range(teams_n) for _ in range(TEAM_SIZE)]
    customers_n, visits_n, orders_n = round(1e6 * scale), round(1e7 * scale), round(2e6 * scale)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await _copy(
            conn,
            "directory_teams",
            ["id", "name", "updated_at"],
            [(t, f"Team {i}", now) for i, t in enumerate(world.teams)],
        )
        await _copy(
            conn,
            "directory_users",
            ["id", "team_id", "role", "active", "name", "updated_at"],
            [
                (r, world.teams[t], "rep", True, f"Rep {i}", now)
                for i, (r, t) in enumerate(world.reps)
            ],
        )
        await _copy(
            conn,
            "memberships",
            ["id", "user_id", "team_id", "role"],
            [(_rid(rng), r, world.teams[t], "rep") for r, t in world.reps],
        )
        customers, versions = [], []
        for n in range(customers_n):
            cid = _rid(rng)
            owner = rng.randrange(len(world.reps))
            created = _day(rng, START, END - timedelta(days=30))
            change = None
            later = owner
            if n % 20 == 0:  # 5 % change hands once
                change = _day(rng, created + timedelta(days=1), END)
                later = rng.randrange(len(world.reps))
            world.customers.append((cid, created, owner, later, change))
            status = "invalid" if n % 100 == 0 else "active"
            level = "AABBBCCCCC"[n % 10]
            region = REGIONS[world.reps[owner][1] % len(REGIONS)]
            at = datetime.combine(created, datetime.min.time(), UTC) + timedelta(hours=9)
            rep, team = world.reps[owner][0], world.teams[world.reps[owner][1]]
            versions.append((_rid(rng), cid, at, created, rep, team, region, level, "active"))
            now_rep, now_team = world.reps[later][0], world.teams[world.reps[later][1]]
            if change is not None:
                moved = datetime.combine(change, datetime.min.time(), UTC) + timedelta(hours=12)
                versions.append(
                    (_rid(rng), cid, moved, change, now_rep, now_team, region, level, "active")
                )
            customers.append(
                (
                    cid, f"C{n:07d}", f"Customer {n}", now_rep, now_team, region, level, status,
                    at, created, rep, team, region, now,
                )
            )  # fmt: skip
        await _copy(
            conn,
            "customers",
            [
                "id", "code", "name", "owner_id", "team_id", "region", "level", "status",
                "created_at", "created_day", "created_owner_id", "created_team_id",
                "created_region", "updated_at",
            ],
            customers,
        )  # fmt: skip
        await _copy(
            conn,
            "customer_versions",
            [
                "event_id", "customer_id", "at", "day", "owner_id", "team_id", "region", "level",
                "status",
            ],
            versions,
        )  # fmt: skip
        print(f"  {customers_n} customers ({time.perf_counter() - started:.1f} s)", flush=True)

        started = time.perf_counter()
        orders, payments = [], []
        for _ in range(orders_n):
            customer = world.customers[rng.randrange(customers_n)]
            day = _day(rng, customer[1], END)
            owner = world.owner_on(customer, day)
            rep, team = world.reps[owner][0], world.teams[world.reps[owner][1]]
            region = REGIONS[world.reps[customer[2]][1] % len(REGIONS)]
            amount = Decimal(rng.randrange(10_000, 5_000_000)) / 100
            paid = Decimal(0)
            oid = _rid(rng)
            if rng.random() < 0.7:
                paid = amount if rng.random() < 0.8 else (amount / 2).quantize(Decimal("0.01"))
                received = min(day + timedelta(days=rng.randrange(60)), END - timedelta(days=1))
                payments.append((_rid(rng), oid, customer[0], received, rep, team, region, paid))
            orders.append((oid, customer[0], day, rep, team, region, amount, amount / 5, paid))
            if len(orders) == CHUNK:
                await _copy(conn, "orders", ORDER_COLUMNS, orders)
                orders = []
        await _copy(conn, "orders", ORDER_COLUMNS, orders)
        await _copy(conn, "payments", PAYMENT_COLUMNS, payments)
        print(f"  {orders_n} orders ({time.perf_counter() - started:.1f} s)", flush=True)

        started = time.perf_counter()
        for chunk in _visits(world, rng, visits_n):
            await _copy(conn, "visits", VISIT_COLUMNS, chunk)
        print(f"  {visits_n} completed visits ({time.perf_counter() - started:.1f} s)", flush=True)
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        print(f"  analysed ({time.perf_counter() - started:.1f} s)", flush=True)
    finally:
        await conn.close()
    return world


ORDER_COLUMNS = [
    "id", "customer_id", "day", "owner_id", "team_id", "region", "amount", "gross_profit",
    "paid_amount",
]  # fmt: skip
PAYMENT_COLUMNS = [
    "id",
    "order_id",
    "customer_id",
    "day",
    "owner_id",
    "team_id",
    "region",
    "amount",
]
VISIT_COLUMNS = [
    "id", "rep_id", "team_id", "customer_id", "region", "level", "customer_status", "purpose",
    "channel", "day", "check_in_at", "effective", "order_taken", "order_amount",
    "collected_amount",
]  # fmt: skip


def _visits(world: World, rng: random.Random, count: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for _ in range(count):
        customer = world.customers[rng.randrange(len(world.customers))]
        day = _day(rng, customer[1], END)
        owner = world.owner_on(customer, day)
        rep, team = world.reps[owner][0], world.teams[world.reps[owner][1]]
        order = rng.random() < 0.3
        chunk.append(
            (
                _rid(rng), rep, team, customer[0],
                REGIONS[world.reps[customer[2]][1] % len(REGIONS)], "B",
                "dormant" if rng.random() < 0.03 else "active", "service", "in_person", day,
                datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10),
                rng.random() < 0.6, order, Decimal(rng.randrange(100, 50_000)) if order else 0, 0,
            )
        )  # fmt: skip
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def rebuild(url: str) -> float:
    db = Database(url, app_name="analytics", schema="analytics", statement_timeout_ms=0)
    await db.connect()
    try:
        started = time.perf_counter()
        async with db.session() as session:
            await rollups.rebuild(session, 365)
        async with db.session() as session:
            await session.connection()
        seconds = time.perf_counter() - started
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        return seconds
    finally:
        await db.close()


def _timed(server: Server, path: str, headers: dict[str, str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        status, body = call(server, "GET", path, headers, timeout=600)
        out.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {str(body)[:300]}")
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def _side(name: str, times: list[float]) -> Side:
    side = Side(name)
    total = sum(times) / 1000
    side.rounds.append(
        WrkResult(
            requests=len(times),
            duration_s=round(total, 3),
            rps=round(len(times) / total, 1),
            p50_ms=_pct(times, 50),
            p90_ms=_pct(times, 90),
            p99_ms=_pct(times, 99),
            max_ms=max(times),
            mean_ms=round(statistics.fmean(times), 3),
            errors={},
        )
    )
    return side


def _figures(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: answer[k] for k in ("figures", "previous")}


def measure_dashboards(ctx: Context, server: Server, world: World) -> None:
    admin = make_principal("admin")
    headers = {INTERNAL_TOKEN_HEADER: ctx.minter.token(admin, "analytics", ttl_seconds=36_000)}
    rep = world.reps[0][0]
    scopes = {
        "rep": f"scope=rep&scope_id={rep}",
        "team": f"scope=team&scope_id={world.teams[0]}",
        "company": "scope=company",
    }
    for name, query in scopes.items():
        path = f"/api/v1/kpis/dashboard?{query}&period={MONTH}"
        status, fast = call(server, "GET", path, headers, timeout=600)
        status_plain, plain = call(server, "GET", path + "&plain=true", headers, timeout=600)
        if status != 200 or status_plain != 200:
            raise RuntimeError(f"{name}: {status} {str(fast)[:300]} / {status_plain}")
        if _figures(fast) != _figures(plain):
            diff = [
                k
                for k in fast["figures"]
                if fast["figures"][k] != plain["figures"][k]
                or fast["previous"][k] != plain["previous"][k]
            ]
            raise RuntimeError(f"{name}: the rollups and the plain aggregate differ on {diff}")
        times = _timed(server, path, headers, SAMPLES)
        plain_n = 20 if name != "company" else 5
        plain_times = _timed(server, path + "&plain=true", headers, plain_n)
        p95 = _pct(times, 95)
        verdict = "ok" if p95 < DASHBOARD_P95_MS else "MISSED"
        ratio = statistics.median(plain_times) / statistics.median(times)
        print(
            f"  dashboard-{name}: p50 {_pct(times, 50):.2f} ms  p95 {p95:.2f} ms  "
            f"p99 {_pct(times, 99):.2f} ms (goal p95 < {DASHBOARD_P95_MS:g} ms) {verdict}; "
            f"plain aggregate p50 {statistics.median(plain_times):.1f} ms: "
            f"{ratio:.1f}x slower",
            flush=True,
        )
        comparison = Comparison(
            ctx.benchmark, f"dashboard-{name}", _side("rollups", times), _side("plain", plain_times)
        )
        ctx.comparisons.append(comparison)


def run(ctx: Context) -> None:
    scale = float(os.environ.get("BENCH_ANALYTICS_SCALE", "0.2"))
    url = ctx.create_database("bench_analytics")
    migrate_all(url, (BY_NAME["analytics"],))
    world = asyncio.run(load(url, scale))
    seconds = asyncio.run(rebuild(url))
    print(f"  rollups rebuilt from the facts ({seconds:.1f} s)", flush=True)
    server = ctx.start_server(
        "analytics",
        "analytics.main:create_app",
        factory=True,
        env={
            "DATABASE_URL": url,
            "INTERNAL_TOKEN_PUBLIC_KEY": ctx.minter.public_pem,
            "ANALYTICS_STATEMENT_TIMEOUT_MS": "600000",
        },
        ready_path="/readyz",
    )
    measure_dashboards(ctx, server, world)


__all__ = ["orjson", "run"]
