"""The visits service at scale: 200 reps, 100,000 customers in its read model, 1,000,000
completed visits loaded by COPY; everything through the real gateway (a rep's real login).

Four measurements:

- `post-visit`: `POST /api/v1/visits` (a rep logs a completed visit: validation, then one
  statement: the customer's read-model row under the access rule, the check-in distance, the
  insert, the customer's last contact, the outbox event) through the gateway vs a raw
  Starlette + asyncpg INSERT of the same row into the same table, same run, closed loop.
  Goal: >= 0.30 of raw's req/s. Then one more round of each side prints the CPU per POST of
  every process (gateway, visits service, PostgreSQL, wrk; raw server, PostgreSQL, wrk) and
  the ratio those figures allow on two cores, also with a visits service costing nothing.
- `follow-ups`: `GET /api/v1/visits/follow-ups?rep_id=` of the rep holding 2,000 customers
  (the first page: A first, then the most overdue), one connection (unloaded); p99 < 50 ms.
- `daily-report`: `GET /api/v1/daily-reports/days/{day}?rep_id=`, a day's report with its
  figures derived live from the log (~50 visits that day), unloaded; p99 < 30 ms.
- `month-of-visits`: `GET /api/v1/visits?rep_id=&from=&to=` (one month, the first page of 50,
  newest first), unloaded; p99 < 20 ms.

The unloaded reads have their raw SQL as the baseline (the same statement's shape on a bare
Starlette + asyncpg server), for scale. BENCH_VISITS_VISITS (default 1,000,000) and
BENCH_VISITS_CUSTOMERS (default 100,000) size it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import resource
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.gateway import start_behind_gateway
from bench.harness import Context, RequestSet, Server, call, login, tree_cpu_seconds
from bench.raw_app import pool_lifespan
from fieldforce.apps import BY_NAME, GATEWAY
from fieldforce.stack import migrate_all
from servicekit.ids import new_id, ordered_uuids

POST_GOAL = 0.30
FOLLOW_UPS_P99_MS = 50.0
DAILY_REPORT_P99_MS = 30.0
MONTH_P99_MS = 20.0
REPS = 200
TEAMS = 20
BIG_BOOK = 2_000  # customers of the measured rep
REGIONS = ("EAST", "WEST", "NORTH", "SOUTH")
CHUNK = 50_000
PASSWORD = "bench-" + secrets.token_urlsafe(12)
REP_EMAIL = "bench-rep@example.com"
DAYS = 365
CUSTOMER_COLUMNS = (
    "id", "code", "name", "region", "level", "status", "owner_id", "team_id", "lat", "lon",
    "version", "updated_at",
)  # fmt: skip
VISIT_COLUMNS = (
    "id", "rep_id", "team_id", "customer_id", "channel", "purpose", "status", "check_in_at",
    "check_out_at", "visit_date", "effective", "order_taken", "order_amount",
    "collected_amount", "memo", "customer_status", "customer_level", "customer_region",
    "completed_at", "version", "created_at", "updated_at",
)  # fmt: skip


@dataclasses.dataclass
class Org:
    teams: list[uuid.UUID]
    reps: list[tuple[uuid.UUID, uuid.UUID]]  # (rep, team); reps[0] is the measured rep
    customers: list[tuple[uuid.UUID, int]] = dataclasses.field(default_factory=list)  # (id, rep)


# --- data ------------------------------------------------------------------------------------


def owner_of(n: int) -> int:
    """Rep index of customer n: the first BIG_BOOK customers are the measured rep's."""
    return 0 if n < BIG_BOOK else 1 + (n - BIG_BOOK) % (REPS - 1)


async def load(url: str, org: Org, customers: int, visits: int) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        # The directory as the identity feed would have filled it.
        await conn.executemany(
            "INSERT INTO visits.directory_teams (id, name, updated_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (id) DO NOTHING",
            [(t, f"Team {i}", now) for i, t in enumerate(org.teams)],
        )
        await conn.executemany(
            "INSERT INTO visits.directory_users (id, team_id, role, active, name, updated_at) "
            "VALUES ($1, $2, 'rep', true, $3, $4) ON CONFLICT (id) DO NOTHING",
            [(r, t, f"Rep {i}", now) for i, (r, t) in enumerate(org.reps)],
        )
        rows = []
        for n in range(customers):
            rep, team = org.reps[owner_of(n)]
            cid = uuid.UUID(int=rng.getrandbits(128))
            org.customers.append((cid, owner_of(n)))
            rows.append(
                (
                    cid, f"{REGIONS[n % 4]}-{n:06d}", f"Customer {n}", REGIONS[n % 4], "ABC"[n % 3],
                    "active", rep, team, 31.0 + rng.random(), 121.0 + rng.random(), 1, now,
                )
            )  # fmt: skip
        await conn.copy_records_to_table(
            "customers", schema_name="visits", columns=CUSTOMER_COLUMNS, records=rows
        )
        print(f"  {customers} customers in the read model ({time.perf_counter() - started:.1f} s)")
        started = time.perf_counter()
        ids = iter(ordered_uuids(visits))
        for chunk in _visit_chunks(org, visits, ids, rng, now):
            await conn.copy_records_to_table(
                "visits", schema_name="visits", columns=VISIT_COLUMNS, records=chunk
            )
        print(f"  {visits} completed visits by COPY ({time.perf_counter() - started:.1f} s)")
        started = time.perf_counter()
        await conn.execute(
            """
            INSERT INTO visits.last_contacts
                (customer_id, last_visit_id, last_visit_at, last_effective_at, last_effective_on)
            SELECT DISTINCT ON (customer_id) customer_id, id, check_in_at,
                   max(check_in_at) FILTER (WHERE effective) OVER w,
                   max(visit_date) FILTER (WHERE effective) OVER w
            FROM visits.visits WHERE status = 'completed'
            WINDOW w AS (PARTITION BY customer_id)
            ORDER BY customer_id, check_in_at DESC
            """
        )
        await conn.execute("ANALYZE visits.visits")
        await conn.execute("ANALYZE visits.customers")
        await conn.execute("ANALYZE visits.last_contacts")
        print(f"  last contacts derived, tables analysed ({time.perf_counter() - started:.1f} s)")
    finally:
        await conn.close()


def _visit_chunks(
    org: Org, count: int, ids: Iterator[uuid.UUID], rng: random.Random, now: datetime
) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for _ in range(count):
        cid, rep_no = org.customers[rng.randrange(len(org.customers))]
        rep, team = org.reps[rep_no]
        check_in = now - timedelta(days=1 + rng.random() * DAYS)
        effective = rng.random() < 0.6
        order = rng.random() < 0.3
        chunk.append(
            (
                next(ids), rep, team, cid, "in_person", "service", "completed", check_in,
                check_in + timedelta(minutes=30), check_in.date(), effective, order,
                Decimal(rng.randrange(100, 50_000)) if order else Decimal(0), Decimal(0),
                "bench visit", "active", "B", "EAST", check_in, 1, check_in, check_in,
            )
        )  # fmt: skip
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- the raw baselines: Starlette + asyncpg, no auth, no kit ---------------------------------

INSERT_VISIT = (
    "INSERT INTO visits.visits (id, rep_id, team_id, customer_id, channel, purpose, status, "
    "check_in_at, check_out_at, visit_date, check_in_lat, check_in_lon, check_in_accuracy_m, "
    "effective, memo, customer_status, customer_level, customer_region, completed_at, version, "
    "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'completed', $7, $8, $9, $10, $11, "
    "$12, $13, $14, 'active', 'B', 'EAST', now(), 1, now(), now()) RETURNING *"
)
# The page's size is bound, as SQLAlchemy binds the project's: with LIMIT 51 written in,
# PostgreSQL's generic plan of the prepared statement (from its sixth run on) reads the whole
# month and sorts it (bench/README.md, 2026-12-03).
MONTH = (
    "SELECT * FROM visits.visits WHERE rep_id = $1 AND check_in_at >= $2 AND check_in_at < $3 "
    "ORDER BY check_in_at DESC, id DESC LIMIT $4"
)


def raw_app() -> Starlette:
    rep = uuid.UUID(os.environ["BENCH_REP_ID"])
    team = uuid.UUID(os.environ["BENCH_TEAM_ID"])

    async def post_visit(request: Request) -> Response:
        body = orjson.loads(await request.body())
        check_in = datetime.fromisoformat(body["check_in_at"])
        row = await request.app.state.pool.fetchrow(
            INSERT_VISIT,
            new_id(),
            rep,
            team,
            uuid.UUID(body["customer_id"]),
            body["channel"],
            body["purpose"],
            check_in,
            datetime.fromisoformat(body["check_out_at"]),
            check_in.date(),
            body["check_in_location"]["lat"],
            body["check_in_location"]["lon"],
            body["check_in_location"]["accuracy_m"],
            body["effective"],
            body["memo"],
        )
        return Response(orjson.dumps(dict(row), default=str), 201, media_type="application/json")

    async def month(request: Request) -> Response:
        start = datetime.fromisoformat(request.query_params["from"] + "T00:00:00+00:00")
        end = datetime.fromisoformat(request.query_params["to"] + "T00:00:00+00:00")
        rows = await request.app.state.pool.fetch(
            MONTH, uuid.UUID(request.query_params["rep_id"]), start, end + timedelta(days=1), 51
        )
        items = [dict(r) for r in rows[:50]]
        return Response(orjson.dumps({"items": items}, default=str), media_type="application/json")

    return Starlette(
        routes=[Route("/api/v1/visits", post_visit, methods=["POST"]), Route("/month", month)],
        lifespan=pool_lifespan,
    )


# --- the project side --------------------------------------------------------------------------


def _json(server: Server, method: str, path: str, headers: dict[str, str], body: Any) -> Any:
    status, answer = call(
        server,
        method,
        path,
        {**headers, "Content-Type": "application/json"},
        orjson.dumps(body),
    )
    if status not in (200, 201):
        raise RuntimeError(f"{method} {path} answered {status}: {str(answer)[:300]}")
    return answer


def the_rep(gateway: Server, admin: dict[str, str]) -> tuple[dict[str, str], uuid.UUID, uuid.UUID]:
    """A real rep in a real team, signed in through the gateway: (bearer header, id, team)."""
    team = _json(gateway, "POST", "/api/v1/teams", admin, {"name": "Bench team"})
    rep = _json(
        gateway,
        "POST",
        "/api/v1/users",
        admin,
        {
            "email": REP_EMAIL,
            "name": "Bench Rep",
            "role": "rep",
            "team_id": team["id"],
            "password": PASSWORD,
        },
    )
    return login(gateway, REP_EMAIL, PASSWORD), uuid.UUID(rep["id"]), uuid.UUID(team["id"])


def _unloaded(ctx: Context) -> Any:
    return dataclasses.replace(ctx.load, connections=1, threads=1)


def _verdict(name: str, p99: float, goal: float) -> None:
    verdict = "ok" if p99 < goal else "MISSED"
    print(f"  {name}: p99 {p99:.2f} ms (goal < {goal:g} ms) {verdict}", flush=True)


def _children_cpu() -> float:
    """CPU of this process's finished children so far (wrk, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_round(
    ctx: Context, target: Server, requests: RequestSet, processes: dict[str, int | None]
) -> tuple[float, dict[str, float]]:
    """One more round on `target`: its req/s and the CPU per request (us) of each of
    `processes` (name -> pid, with its descendants) and of wrk."""
    before = {name: tree_cpu_seconds(pid) if pid else None for name, pid in processes.items()}
    wrk_before = _children_cpu()
    result = ctx.wrk(target, requests, ctx.load.duration)
    per: dict[str, float] = {"wrk": (_children_cpu() - wrk_before) * 1e6 / result.requests}
    for name, pid in processes.items():
        after, start = (tree_cpu_seconds(pid) if pid else None), before[name]
        if after is not None and start is not None:
            per[name] = (after - start) * 1e6 / result.requests
    return result.rps, per


def _pid(server: Server) -> int | None:
    return None if server.proc is None else server.proc.pid


def _bound(per: dict[str, float], cores: int = 2) -> float:
    """The req/s the CPU per request allows: no process beyond one core, all within `cores`."""
    return min(1e6 / max(per.values()), cores * 1e6 / sum(per.values()))


def _cpu_split(
    ctx: Context,
    service: Server,
    gateway: Server,
    raw: Server,
    requests: tuple[RequestSet, RequestSet],
) -> None:
    """Where a POST's CPU goes on each side (one more round each, /proc of every process),
    and the ratio those figures allow on two cores: as measured, and with a visits service
    that cost nothing (the gateway, PostgreSQL and wrk alone: the floor's bound)."""
    postgres = ctx.postgres.pid()
    project_rps, project = _cpu_round(
        ctx,
        gateway,
        requests[0],
        {"gateway": _pid(gateway), "visits": _pid(service), "postgres": postgres},
    )
    raw_rps, baseline = _cpu_round(ctx, raw, requests[1], {"raw": _pid(raw), "postgres": postgres})
    for side, rps, per in (("project", project_rps, project), ("raw", raw_rps, baseline)):
        split = ", ".join(f"{name} {us:.0f}" for name, us in per.items())
        print(f"  post-visit CPU per POST, {side} ({rps:.1f} req/s): {split} us", flush=True)
    if {"gateway", "visits", "postgres"} <= project.keys() and {"raw", "postgres"} <= (
        baseline.keys()
    ):
        allowed = _bound(baseline)
        floor = {k: v for k, v in project.items() if k != "visits"}
        print(
            f"  post-visit: the ratio the CPU allows on 2 cores {_bound(project) / allowed:.3f}, "
            f"with a visits service costing nothing {_bound(floor) / allowed:.3f} "
            f"(goal {POST_GOAL})",
            flush=True,
        )


def run(ctx: Context) -> None:
    customers = int(os.environ.get("BENCH_VISITS_CUSTOMERS", "100000"))
    visits = int(os.environ.get("BENCH_VISITS_VISITS", "1000000"))
    url = ctx.create_database("bench_visits")
    migrate_all(url, (GATEWAY, BY_NAME["visits"]))
    service, gateway, admin = start_behind_gateway(
        ctx,
        url,
        app="visits",
        service_name="visits",
        # The measured rep's calls: counted as in production, never refused.
        gateway_env={"GATEWAY_RATE_LIMIT_REP": "1000000000/60"},
    )
    rep_headers, rep_id, team_id = the_rep(gateway, admin)
    rng = random.Random(3)
    teams = [team_id, *(uuid.UUID(int=rng.getrandbits(128)) for _ in range(TEAMS - 1))]
    org = Org(
        teams,
        [(rep_id, team_id)]
        + [(uuid.UUID(int=rng.getrandbits(128)), teams[i % TEAMS]) for i in range(1, REPS)],
    )
    asyncio.run(load(url, org, customers, visits))
    raw = ctx.start_server(
        "raw",
        "bench.visits:raw_app",
        factory=True,
        env={"DATABASE_URL": url, "BENCH_REP_ID": str(rep_id), "BENCH_TEAM_ID": str(team_id)},
        ready_path="/month?rep_id=" + str(rep_id) + "&from=2000-01-01&to=2000-01-31",
    )

    # 1. POST a visit: the rep's own customers, check-ins an hour ago, different bodies.
    mine = [cid for cid, rep_no in org.customers if rep_no == 0]
    now = datetime.now(UTC)
    bodies = [
        orjson.dumps(
            {
                "customer_id": str(mine[n % len(mine)]),
                "channel": "in_person",
                "purpose": "service",
                "check_in_at": (now - timedelta(minutes=90 - n % 60)).isoformat(),
                "check_out_at": (now - timedelta(minutes=60 - n % 60)).isoformat(),
                "check_in_location": {"lat": 31.5, "lon": 121.5, "accuracy_m": 15},
                "effective": n % 3 != 0,
                "memo": f"Bench visit {n}: talked about the next order",
            }
        ).decode()
        for n in range(2_000)
    ]
    paths = ctx.write_lines("visits-post-paths.txt", ["/api/v1/visits"] * len(bodies))
    body_file = ctx.write_lines("visits-post-bodies.txt", bodies)
    json_headers = {"Content-Type": "application/json"}
    posts = RequestSet(
        paths, headers={**rep_headers, **json_headers}, method="POST", bodies_file=body_file
    )
    raw_posts = RequestSet(paths, headers=json_headers, method="POST", bodies_file=body_file)
    ctx.compare(
        "post-visit", project=gateway, baseline=raw, requests=posts, goal=POST_GOAL,
        baseline_requests=raw_posts,
    )  # fmt: skip
    _cpu_split(ctx, service, gateway, raw, (posts, raw_posts))

    loaded = ctx.load
    ctx.load = _unloaded(ctx)
    try:
        # 2. The follow-up list of the rep holding 2,000 customers.
        follow = ctx.write_lines(
            "visits-follow-ups.txt", [f"/api/v1/visits/follow-ups?rep_id={rep_id}"]
        )
        status, page = call(
            gateway, "GET", f"/api/v1/visits/follow-ups?rep_id={rep_id}", rep_headers
        )
        if status != 200 or len(page["items"]) != 50:
            raise RuntimeError(f"follow-ups answered {status}: {str(page)[:300]}")
        # The baseline of the unloaded reads, for scale: a month's page by raw SQL (months
        # before the POSTs above, which all landed in the last two hours).
        months = [_month_path(rep_id, now.date() - timedelta(days=30 * k)) for k in range(1, 11)]
        raw_month = RequestSet(ctx.write_lines("visits-raw-months.txt", [_raw(m) for m in months]))
        result = ctx.compare(
            "follow-ups", project=gateway, baseline=raw,
            requests=RequestSet(follow, headers=rep_headers), baseline_requests=raw_month,
        )  # fmt: skip
        _verdict("follow-ups", result.project.median("p99_ms"), FOLLOW_UPS_P99_MS)

        # 3. A day's report with its live figures (a different day per request).
        days = [
            f"/api/v1/daily-reports/days/{now.date() - timedelta(days=d)}?rep_id={rep_id}"
            for d in range(2, 60)
        ]
        status, report = call(gateway, "GET", days[0], rep_headers)
        if status != 200 or report["figures"]["visits_completed"] < 1:
            raise RuntimeError(f"daily report answered {status}: {str(report)[:300]}")
        result = ctx.compare(
            "daily-report", project=gateway, baseline=raw,
            requests=RequestSet(ctx.write_lines("visits-days.txt", days), headers=rep_headers),
            baseline_requests=raw_month,
        )  # fmt: skip
        _verdict("daily-report", result.project.median("p99_ms"), DAILY_REPORT_P99_MS)

        # 4. A month of the rep's visits, first page.
        status, listing = call(gateway, "GET", months[0], rep_headers)
        if status != 200 or len(listing["items"]) != 50:
            raise RuntimeError(f"month answered {status}: {str(listing)[:300]}")
        result = ctx.compare(
            "month-of-visits", project=gateway, baseline=raw,
            requests=RequestSet(ctx.write_lines("visits-months.txt", months), headers=rep_headers),
            baseline_requests=raw_month,
        )  # fmt: skip
        _verdict("month-of-visits", result.project.median("p99_ms"), MONTH_P99_MS)
    finally:
        ctx.load = loaded


def _raw(path: str) -> str:
    """The raw baseline's path of a month's page."""
    return "/month?" + path.partition("?")[2]


def _month_path(rep_id: uuid.UUID, end: date) -> str:
    start = end - timedelta(days=30)
    return f"/api/v1/visits?rep_id={rep_id}&from={start}&to={end}"
