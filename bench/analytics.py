"""The analytics dashboard at scale: customers, completed visits and orders loaded by COPY into
the read models, the rollups rebuilt from them, then the dashboard of a rep, a team of 50 and
the company for one month; and the event lag through the whole stack.

- `dashboard-rep`, `dashboard-team`, `dashboard-company`: `GET /api/v1/kpis/dashboard` (every
  KPI of the month, the month before and the targets) straight to the service (an admin's
  internal token), one connection; goal p95 < 50 ms each. The baseline is the same dashboard
  answered from a plain aggregate over the fact tables (`plain=true`: the same figures, which
  the benchmark checks are equal), same run: the ratio is what the rollups buy. Printed
  beside it, steadier on a shared machine: the server's CPU per dashboard.
- `visit-to-dashboard` (the five apps as processes on a database of their own): the time
  from a probe rep's visit logged through the gateway (its 201) to that rep's dashboard,
  asked through the gateway, counting it, while wrk posts another rep's visits through the
  gateway at BENCH_ANALYTICS_WRITES per second (default 500); goal p95 < 1 s over
  BENCH_ANALYTICS_PROBES visits (default 100).

At BENCH_ANALYTICS_SCALE=1: 1,000,000 customers, 10,000,000 completed visits, 2,000,000 orders
(2,000 reps in 40 teams of 50, three years); the default 0.2 is a fifth of that (bench/README.md
says what ran and how long loading takes). The loaded tables' indexes are built after the COPY.
BENCH_ANALYTICS_ONLY=dashboard or =lag runs one of the two parts. BENCH_ANALYTICS_PLAIN_SAMPLES
sets how many plain aggregates each scope is timed over (default 20, the company's 5): at full
scale one takes tens of seconds.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import secrets
import statistics
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import asyncpg
import orjson

from analytics.rollups import service as rollups
from bench.harness import (
    LUA_PATHS,
    Comparison,
    Context,
    Server,
    Side,
    WrkResult,
    call,
    login,
)
from fieldforce.apps import APPS, BY_NAME
from fieldforce.stack import Stack, migrate_all
from servicekit.db import Database
from servicekit.testing.tokens import INTERNAL_TOKEN_HEADER, make_principal

ADMIN_EMAIL = "bench-admin@example.com"
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
        rebuilt = await _without_indexes(conn)
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
        for statement in rebuilt:
            await conn.execute(statement)
        print(f"  indexes built ({time.perf_counter() - started:.1f} s)", flush=True)
        started = time.perf_counter()
        await conn.execute("VACUUM ANALYZE")
        print(f"  analysed ({time.perf_counter() - started:.1f} s)", flush=True)
    finally:
        await conn.close()
    return world


# The fact tables loaded in bulk: their indexes are built once after the COPY (far faster than
# keeping them up to date row by row).
LOADED = ("customers", "customer_versions", "orders", "payments", "visits")


async def _without_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the loaded tables' indexes and primary keys; the statements that make them again."""
    constraints = await conn.fetch(
        "SELECT c.conrelid::regclass::text AS tbl, c.conname, pg_get_constraintdef(c.oid) AS def"
        " FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE n.nspname = 'analytics' AND c.contype IN ('p', 'u')"
        " AND c.conrelid::regclass::text = ANY($1::text[])",
        [f"analytics.{t}" for t in LOADED],
    )
    indexes = await conn.fetch(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = 'analytics'"
        " AND i.tablename = ANY($1::text[]) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
        " WHERE c.conname = i.indexname)",
        list(LOADED),
    )
    for row in indexes:
        await conn.execute('DROP INDEX analytics."' + row["indexname"] + '"')
    for row in constraints:
        await conn.execute(
            "ALTER TABLE " + row["tbl"] + ' DROP CONSTRAINT "' + row["conname"] + '"'
        )
    return [
        *(
            "ALTER TABLE " + row["tbl"] + ' ADD CONSTRAINT "' + row["conname"] + '" ' + row["def"]
            for row in constraints
        ),
        *(row["indexdef"] for row in indexes),
    ]


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


def _measured(
    server: Server, path: str, headers: dict[str, str], n: int
) -> tuple[list[float], float | None]:
    """Latencies of n answers (ms), and the server's CPU per answer (us)."""
    cpu = server.cpu_seconds()
    out = _timed(server, path, headers, n)
    cpu_after = server.cpu_seconds()
    return out, None if cpu is None or cpu_after is None else (cpu_after - cpu) * 1e6 / n


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def _side(name: str, times: list[float], cpu_us: float | None = None) -> Side:
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
            cpu_us_per_request=None if cpu_us is None else round(cpu_us, 1),
        )
    )
    return side


def _figures(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: answer[k] for k in ("figures", "previous")}


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1000:.2f} ms"


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
        times, cpu_us = _measured(server, path, headers, SAMPLES)
        plain_n = int(os.environ.get("BENCH_ANALYTICS_PLAIN_SAMPLES", "0")) or (
            20 if name != "company" else 5
        )
        plain_times, plain_cpu_us = _measured(server, path + "&plain=true", headers, plain_n)
        p95 = _pct(times, 95)
        verdict = "ok" if p95 < DASHBOARD_P95_MS else "MISSED"
        ratio = statistics.median(plain_times) / statistics.median(times)
        print(
            f"  dashboard-{name}: p50 {_pct(times, 50):.2f} ms  p95 {p95:.2f} ms  "
            f"p99 {_pct(times, 99):.2f} ms (goal p95 < {DASHBOARD_P95_MS:g} ms) {verdict}; "
            f"plain aggregate p50 {statistics.median(plain_times):.1f} ms: "
            f"{ratio:.1f}x slower; server CPU per dashboard {_us(cpu_us)} "
            f"(plain {_us(plain_cpu_us)})",
            flush=True,
        )
        comparison = Comparison(
            ctx.benchmark,
            f"dashboard-{name}",
            _side("rollups", times, cpu_us),
            _side("plain", plain_times, plain_cpu_us),
        )
        ctx.comparisons.append(comparison)


# --- the event lag: a visit logged through the gateway until the dashboard counts it ---------


def _stack(ctx: Context) -> tuple[Stack, str]:
    """The five apps as in production (each its own process), on a database of their own."""
    url = ctx.create_database("bench_analytics_lag")
    migrate_all(url)
    password = secrets.token_urlsafe(16)
    stack = Stack(
        database_url=url,
        ports=dict.fromkeys((a.name for a in APPS), 0),
        log_dir=ctx.workdir / "analytics-stack",
        env={
            "INTERNAL_TOKEN_PUBLIC_KEY": ctx.minter.public_pem,
            "GATEWAY_INTERNAL_TOKEN_PRIVATE_KEY": ctx.minter.private_pem,
            "GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
            "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "BOOTSTRAP_ADMIN_PASSWORD": password,
            "EVENTS_API_KEY": "ffk_" + secrets.token_urlsafe(32),
            # The writers and the probe are reps: counted as in production, never refused.
            "GATEWAY_RATE_LIMIT_REP": "1000000000/60",
            "GATEWAY_RATE_LIMIT_ADMIN": "1000000000/60",
            "GATEWAY_ACCESS_TOKEN_TTL_SECONDS": "86400",
        },
    )
    return stack, password


def _send(
    server: Server, method: str, path: str, headers: dict[str, str], body: Any
) -> tuple[int, Any]:
    json_headers = {**headers, "Content-Type": "application/json"}
    return call(server, method, path, json_headers, orjson.dumps(body))


def _ok(status: int, body: Any, what: str) -> Any:
    if status not in (200, 201):
        raise RuntimeError(f"{what} answered {status}: {str(body)[:300]}")
    return body


@dataclass
class _Rep:
    id: str
    headers: dict[str, str]
    customers: list[str]


def _rep(gateway: Server, admin: dict[str, str], team_id: str, name: str, n: int) -> _Rep:
    password = secrets.token_urlsafe(16)
    body = {
        "email": f"{name}@example.com",
        "name": name,
        "role": "rep",
        "password": password,
        "team_id": team_id,
    }
    user = _ok(*_send(gateway, "POST", "/api/v1/users", admin, body), "a new rep")
    headers = login(gateway, body["email"], password)
    customers = [
        _ok(
            *_send(
                gateway,
                "POST",
                "/api/v1/customers",
                headers,
                {"name": f"{name} customer {i}", "region": "east"},
            ),
            "a new customer",
        )["id"]
        for i in range(n)
    ]
    return _Rep(user["id"], headers, customers)


def _visit(customer_id: str, now: datetime, n: int) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "channel": "phone",
        "purpose": "service",
        "check_in_at": (now - timedelta(minutes=30, seconds=n % 600)).isoformat(),
        "check_out_at": (now - timedelta(minutes=10)).isoformat(),
        "effective": n % 3 != 0,
    }


def _visits_counted(gateway: Server, rep: _Rep, month: str) -> int:
    """The rep's visits of the month on their dashboard (-1: analytics does not know the rep
    yet, the identity feed has not brought them)."""
    path = f"/api/v1/kpis/dashboard?scope=rep&scope_id={rep.id}&period={month}"
    status, answer = call(gateway, "GET", path, rep.headers)
    if status == 404:
        return -1
    return int(_ok(status, answer, "the dashboard")["figures"]["avg_daily_visits"]["numerator"])


def _writer(ctx: Context, gateway: Server, rep: _Rep, rate: float, seconds: float) -> Any:
    """wrk posting the writer rep's visits through the gateway at `rate` per second."""
    now = datetime.now(UTC)
    bodies = [
        orjson.dumps(_visit(rep.customers[n % len(rep.customers)], now, n)).decode()
        for n in range(2_000)
    ]
    paths = ctx.write_lines("analytics-lag-paths.txt", ["/api/v1/visits"] * len(bodies))
    body_file = ctx.write_lines("analytics-lag-bodies.txt", bodies)
    threads = max(1, ctx.load.threads)
    cmd = [ctx.wrk_bin, "-t", str(threads), "-c", str(max(threads, ctx.load.connections))]
    cmd += ["-d", f"{max(1, round(seconds))}s", "--latency", "-s", str(LUA_PATHS)]
    cmd += ["--timeout", "10s", "-H", "Content-Type: application/json"]
    for name, value in rep.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(gateway.url)
    env = {
        **os.environ,
        "BENCH_PATHS": str(paths),
        "BENCH_BODIES": str(body_file),
        "BENCH_METHOD": "POST",
        "BENCH_PACE_MS": f"{1000.0 * threads / rate:.6f}",
    }
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _log_tail(path: Path) -> str:
    """The last lines of an app's log other than its access log."""
    lines = [line for line in path.read_text().splitlines() if "servicekit.access" not in line]
    return "\n".join(lines[-15:])


def _consumers(stack: Stack) -> str:
    """The analytics consumers' gauges, as its /metrics shows them."""
    with urllib.request.urlopen(stack.running["analytics"].url + "/metrics") as resp:  # noqa: S310
        text = resp.read().decode()
    return "; ".join(
        line
        for line in text.splitlines()
        if line.startswith(("consumer_behind_events", "consumer_newest_applied_age"))
    )


def measure_lag(ctx: Context) -> None:
    rate = float(os.environ.get("BENCH_ANALYTICS_WRITES", "500"))
    probes = int(os.environ.get("BENCH_ANALYTICS_PROBES", "100"))
    stack, password = _stack(ctx)
    try:
        stack.start()
        stack.wait_ready(timeout=120)
        # `call` and `login` need only the address (the stack starts and stops the process).
        gateway = cast(Server, SimpleNamespace(name="gateway", url=stack.running["gateway"].url))
        admin = login(gateway, ADMIN_EMAIL, password)
        team = _ok(*_send(gateway, "POST", "/api/v1/teams", admin, {"name": "Lag"}), "a team")
        writer = _rep(gateway, admin, team["id"], "writer", 20)
        probe = _rep(gateway, admin, team["id"], "probe", 5)
        month = datetime.now(UTC).strftime("%Y-%m")

        def logged(rep: _Rep, n: int) -> bool:
            body = _visit(rep.customers[n % len(rep.customers)], datetime.now(UTC), n)
            status, _ = _send(gateway, "POST", "/api/v1/visits", rep.headers, body)
            return status == 201

        # The visits service knows the customers once the customers feed brought them.
        deadline = time.monotonic() + 60
        while not (logged(writer, 0) and logged(probe, 0)):
            if time.monotonic() > deadline:
                raise RuntimeError("the visits service never learnt the bench's customers")
            time.sleep(0.5)
        while _visits_counted(gateway, probe, month) < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("analytics never counted the probe's first visit")
            time.sleep(0.1)
        seconds = probes * 1.5 + 10
        load = _writer(ctx, gateway, writer, rate, seconds)
        lags: list[float] = []
        try:
            time.sleep(2)  # the load up to speed
            for n in range(1, probes + 1):
                counted = _visits_counted(gateway, probe, month)
                if not logged(probe, n):
                    raise RuntimeError("the probe's visit was refused")
                started = time.perf_counter()
                while _visits_counted(gateway, probe, month) <= counted:
                    if time.perf_counter() - started > 60:
                        raise RuntimeError(
                            "the dashboard never counted the probe's visit; analytics' feeds: "
                            + _consumers(stack)
                            + "\n"
                            + _log_tail(stack.running["analytics"].log_path)
                        )
                    time.sleep(0.05)
                lags.append(time.perf_counter() - started)
                time.sleep(0.5)
        except BaseException:
            load.kill()  # ours, started above
            raise
        finally:
            out, err = load.communicate(timeout=seconds + 60)
        if load.returncode != 0:
            raise RuntimeError(f"wrk failed ({load.returncode}): {err}{out}")
        result = WrkResult.parse(out)
        p95 = _pct(lags, 95)
        verdict = "ok" if p95 < LAG_P95_S else "MISSED"
        print(
            f"  visit-to-dashboard: p50 {_pct(lags, 50):.3f} s  p95 {p95:.3f} s  max "
            f"{max(lags):.3f} s (goal p95 < {LAG_P95_S:g} s) {verdict}; background visits "
            f"through the gateway {result.rps:.0f}/s of {rate:.0f}/s asked, p99 "
            f"{result.p99_ms:.1f} ms, errors {result.errors or 0}",
            flush=True,
        )
    finally:
        stack.stop()


def run(ctx: Context) -> None:
    if os.environ.get("BENCH_ANALYTICS_ONLY") == "lag":
        measure_lag(ctx)
        return
    scale = float(os.environ.get("BENCH_ANALYTICS_SCALE", "0.2"))
    url = ctx.create_database("bench_analytics")
    migrate_all(url, (BY_NAME["analytics"],))
    world = asyncio.run(load(url, scale))
    seconds = asyncio.run(rebuild(url))
    print(f"  rollups rebuilt from the facts ({seconds:.1f} s)", flush=True)
    server = ctx.start_service("analytics", url, {"ANALYTICS_STATEMENT_TIMEOUT_MS": "600000"})
    measure_dashboards(ctx, server, world)
    if os.environ.get("BENCH_ANALYTICS_ONLY") != "dashboard":
        ctx.stop_servers()
        measure_lag(ctx)


__all__ = ["orjson", "run"]
