"""The opportunities service at scale: bulk lead intake, the board, the stalled list.

Three measurements, each beside its baseline in the same run:

- `intake-10k`: `POST /api/v1/leads/bulk` in 10,000-row calls through the gateway with an
  integration's API key (validation, dedup on source + external_id, customer matching on an
  index of 100,000 customers, scoring by the active model and a challenger, assignment by
  region rules with round robin and least load, assignment log, one event per lead) vs a
  raw `COPY` of the same rows into the same leads table (rolled back). Goal: >= 0.25 of
  COPY's rows/s. Call and COPY alternate, each starting from an idle system (the previous
  call's fan-out and autovacuum done): the machine's speed drifts by a third within minutes,
  and a call and its COPY see the same minute, so the ratio is the median of the pairs'
  ratios (the ratio of the two sides' medians is printed beside it). A warm-up pair goes
  first and is not counted. Each also reports the CPU time every party
  spent on it (/proc: the service, the gateway and PostgreSQL's backends until the system
  is idle again, for a call; PostgreSQL and the client encoding the records, for a COPY);
  the ratio of those totals ("by CPU") is about the throughput ratio the two would have
  where nothing else runs, and it holds on a busy machine.
- `board-500`: `GET /api/v1/opportunities/board?team_id=` of a team with 500 open
  opportunities among 1,000,000, through the gateway at one connection (unloaded); goal
  p99 < 50 ms. The baseline: the same two statements raw (Starlette + asyncpg).
- `stalled-1m`: `GET /api/v1/opportunities/stalled` (a page of 50, everything or one team's
  tree) over 1,000,000 opportunities, through the gateway at one connection; goal
  p99 < 100 ms. The baseline: the same page's statement raw.

BENCH_OPPORTUNITIES_ROWS (default 1,000,000) and BENCH_OPPORTUNITIES_INTAKE_CALLS (default 5)
size it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.gateway import start_behind_gateway
from bench.harness import (
    Comparison,
    Context,
    RequestSet,
    Server,
    Side,
    WrkResult,
    batch_results,
    call,
    tree_cpu_seconds,
)
from bench.raw_app import pool_lifespan
from fieldforce.apps import BY_NAME, GATEWAY
from fieldforce.stack import migrate_all
from servicekit.normalize import normalize_email, normalize_name, normalize_phone

INTAKE_GOAL = 0.25
BOARD_P99_GOAL_MS = 50.0
STALLED_P99_GOAL_MS = 100.0
INTAKE_ROWS = 10_000
REGIONS = ("EAST", "WEST", "NORTH", "SOUTH")
TEAMS = 20
REPS_PER_TEAM = 10
CUSTOMERS = 100_000
BOARD_OPEN = 500
CHUNK = 50_000
OPEN_STAGES = ("prospecting", "needs_analysis", "solution", "quote_negotiation", "contract")
EXPECTED_DAYS = (14, 14, 21, 14, 10)
EVALUATION = {
    "need_urgency": ("high", "medium", "low"),
    "purchase_timing": ("within_1_month", "within_3_months", "within_6_months", "later"),
    "purchase_cycle": ("short", "medium", "long"),
    "decision_maker_identified": ("yes", "no"),
    "budget_confirmed": ("yes", "partial", "no"),
}
LEAD_COLUMNS = (
    "id",
    "source",
    "external_id",
    "company",
    "contact_name",
    "phone",
    "email",
    "region",
    "industry",
    "need",
    "evaluation",
    "attributes",
    "received_at",
    "status",
    "version",
    "created_at",
    "updated_at",
)
OPPORTUNITY_COLUMNS = (
    "id",
    "customer_id",
    "name",
    "owner_id",
    "team_id",
    "source",
    "region",
    "amount",
    "stage",
    "stage_entered_at",
    "closed_at",
    "won_at",
    "stage_due_at",
    "cycle_due_at",
    "version",
    "created_at",
    "updated_at",
)


# --- the organisation, straight into the service's directory ---------------------------------


@dataclasses.dataclass(frozen=True)
class Org:
    teams: list[uuid.UUID]
    reps: dict[uuid.UUID, list[uuid.UUID]]  # team -> its reps

    @property
    def board_team(self) -> uuid.UUID:
        return self.teams[-1]


def make_org(rng: random.Random) -> Org:
    teams = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(TEAMS)]
    reps = {t: [uuid.UUID(int=rng.getrandbits(128)) for _ in range(REPS_PER_TEAM)] for t in teams}
    return Org(teams, reps)


async def load_directory(conn: asyncpg.Connection, org: Org) -> None:
    """The directory the identity feed would have filled, and the assignment rules: each region
    to a team (round robin for two, least load for two), anything else to a catch-all team."""
    now = datetime.now(UTC)
    await conn.copy_records_to_table(
        "directory_teams",
        schema_name="opportunities",
        columns=("id", "name", "parent_id", "manager_id", "updated_at"),
        records=[(t, f"Bench team {i}", None, None, now) for i, t in enumerate(org.teams)],
    )
    await conn.copy_records_to_table(
        "directory_users",
        schema_name="opportunities",
        columns=("id", "team_id", "role", "active", "name", "updated_at"),
        records=[
            (rep, team, "rep", True, f"Rep {i}", now)
            for team, reps in org.reps.items()
            for i, rep in enumerate(reps)
        ],
    )
    rules: list[tuple[Any, ...]] = [
        (uuid.uuid4(), (i + 1) * 10, region, None, org.teams[i], strategy, True, 1, now, now)
        for i, (region, strategy) in enumerate(
            zip(REGIONS, ("round_robin", "least_load") * 2, strict=True)
        )
    ]
    rules.append((uuid.uuid4(), 100, None, None, org.teams[4], "round_robin", True, 1, now, now))
    await conn.copy_records_to_table(
        "assignment_rules",
        schema_name="opportunities",
        columns=(
            "id",
            "position",
            "region",
            "industry",
            "team_id",
            "strategy",
            "active",
            "version",
            "created_at",
            "updated_at",
        ),
        records=rules,
    )


async def load_customers(conn: asyncpg.Connection) -> None:
    """The customers feed's read model: 100,000 customers with their normal forms."""
    now = datetime.now(UTC)
    records = []
    for n in range(CUSTOMERS):
        name = f"Indexed {n} Trading"
        records.append(
            (
                uuid.UUID(int=n + 1),
                f"IDX-{n:06}",
                name,
                REGIONS[n % 4],
                "active",
                normalize_name(name),
                normalize_phone(f"1{n:010d}"),
                normalize_email(f"idx{n}@example.com"),
                1,
                now,
            )
        )
    await conn.copy_records_to_table(
        "customer_index",
        schema_name="opportunities",
        columns=(
            "id",
            "code",
            "name",
            "region",
            "status",
            "normalized_name",
            "normalized_phone",
            "normalized_email",
            "version",
            "updated_at",
        ),
        records=records,
    )


# --- 1,000,000 opportunities -------------------------------------------------------------------


def opportunity_records(count: int, org: Org, now: datetime) -> Iterator[list[tuple[Any, ...]]]:
    """Mostly closed history; a fifth open, about half of those stalled; the board team gets
    exactly `BOARD_OPEN` open ones."""
    rng = random.Random(11)
    teams = org.teams[:-1]
    chunk: list[tuple[Any, ...]] = []
    board = org.board_team
    for n in range(count):
        if n < BOARD_OPEN:
            team, is_open = board, True
        else:
            team, is_open = teams[n % len(teams)], rng.random() < 0.2
        owner = org.reps[team][n % REPS_PER_TEAM]
        created = now - timedelta(days=rng.uniform(1, 720))
        closed: datetime | None
        won: datetime | None
        stage_due: datetime | None
        cycle_due: datetime | None
        if is_open:
            s = rng.randrange(len(OPEN_STAGES))
            entered = created + (now - created) * rng.random()
            stage, closed, won = OPEN_STAGES[s], None, None
            stage_due = entered + timedelta(days=EXPECTED_DAYS[s])
            cycle_due = created + timedelta(days=sum(EXPECTED_DAYS))
        else:
            entered = created + timedelta(days=rng.uniform(5, 120))
            entered = min(entered, now)
            stage = "won" if rng.random() < 0.4 else "lost"
            closed, won = entered, entered if stage == "won" else None
            stage_due = cycle_due = None
        chunk.append(
            (
                uuid.UUID(int=rng.getrandbits(128)),
                uuid.UUID(int=n % CUSTOMERS + 1),
                f"Deal {n}",
                owner,
                team,
                SOURCES[n % len(SOURCES)],
                REGIONS[n % 4],
                Decimal(rng.randrange(1, 500) * 1000),
                stage,
                entered,
                closed,
                won,
                stage_due,
                cycle_due,
                1,
                created,
                entered,
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


SOURCES = ("web_form", "trade_show", "referral", "telemarketing", "advertising", "partner")


async def load_opportunities(url: str, count: int, org: Org) -> None:
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for chunk in opportunity_records(count, org, datetime.now(UTC)):
            await conn.copy_records_to_table(
                "opportunities",
                schema_name="opportunities",
                columns=OPPORTUNITY_COLUMNS,
                records=chunk,
            )
        await conn.execute("ANALYZE opportunities.opportunities")
        print(
            f"  loaded {count} opportunities by COPY in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    finally:
        await conn.close()


# --- intake vs COPY ----------------------------------------------------------------------------


def intake_rows(call_no: int) -> list[dict[str, Any]]:
    rng = random.Random(call_no)
    rows = []
    for i in range(INTAKE_ROWS):
        n = call_no * INTAKE_ROWS + i
        # One in ten is a known customer's phone.
        phone = f"1{rng.randrange(CUSTOMERS):010d}" if i % 10 == 0 else f"2{n:010d}"
        rows.append(
            {
                "source": SOURCES[n % len(SOURCES)],
                "external_id": f"bench-{call_no}-{i}",
                "company": f"Lead {call_no}-{i} Holdings",
                "contact_name": f"Contact {i}",
                "phone": phone,
                "email": f"lead{call_no}.{i}@example.com",
                "region": REGIONS[n % 4] if i % 7 else "CENTRAL",
                "industry": "Retail",
                "need": "printers and paper",
                "evaluation": {k: rng.choice(v) for k, v in EVALUATION.items()},
                "attributes": {"campaign": f"c{call_no}", "form": "contact-us"},
            }
        )
    return rows


def lead_records(rows: list[dict[str, Any]], now: datetime) -> list[tuple[Any, ...]]:
    """The same rows as lead records, as raw COPY writes them (JSON cells as text)."""
    return [
        (
            uuid.uuid4(),
            r["source"],
            "raw-" + r["external_id"],
            r["company"],
            r["contact_name"],
            r["phone"],
            r["email"],
            r["region"],
            r["industry"],
            r["need"],
            orjson.dumps(r["evaluation"]).decode(),
            orjson.dumps(r["attributes"]).decode(),
            now,
            "new",
            1,
            now,
            now,
        )
        for r in rows
    ]


@dataclasses.dataclass
class Batch:
    """One timed batch, and the CPU time each party spent on it (seconds; None where /proc
    does not tell): waiting for a core costs no CPU time, so these hold on a busy machine."""

    seconds: float
    cpu: dict[str, float | None]

    @property
    def cpu_total(self) -> float | None:
        values = list(self.cpu.values())
        return None if any(v is None for v in values) else sum(v for v in values if v)


class CpuMeter:
    """CPU time spent by processes (by their root pid; the current process as None) between
    `start` and `stop`."""

    def __init__(self, roots: dict[str, int | None]) -> None:
        self.roots = roots
        self._at: dict[str, float | None] = {}

    def _now(self) -> dict[str, float | None]:
        return {
            name: time.process_time() if pid is None else tree_cpu_seconds(pid)
            for name, pid in self.roots.items()
        }

    def start(self) -> None:
        self._at = self._now()

    def stop(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, after in self._now().items():
            before = self._at[name]
            out[name] = None if before is None or after is None else after - before
        return out


def settle(parties: dict[str, int | None], *, limit: float = 30.0) -> float:
    """Wait until the parties (process trees) are idle: less than 20 ms of CPU among them over
    a quarter of a second (what a call leaves running, the gateway's fan-out of its events,
    autovacuum after a batch, is done). Returns the seconds waited; gives up after `limit`."""
    started = time.perf_counter()

    def used() -> float:
        return sum(v for pid in parties.values() if (v := tree_cpu_seconds(pid)) is not None)

    last = used()
    while time.perf_counter() - started < limit:
        time.sleep(0.25)
        now = used()
        if now - last < 0.02:
            break
        last = now
    return time.perf_counter() - started


def intake_beside_copy(
    gateway: Server, key: str, url: str, calls: int, parties: dict[str, int | None]
) -> tuple[list[Batch], list[Batch]]:
    """Each 10,000-row call through the gateway, then a raw COPY of the same rows into the
    leads table itself (same indexes, the same rows already there; in a transaction rolled
    back afterwards), pair by pair, each from an idle system (`settle`): the machine's speed
    drifts by a third within minutes here, and a pair sees the same minute. A call's CPU
    counts every party's until the system is idle again (its events' fan-out included); a
    COPY's, PostgreSQL's and this process's (asyncpg encoding the records) while it runs."""
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    taken, copied = [], []
    calls_meter = CpuMeter(parties)
    copy_meter = CpuMeter({"postgres": parties["postgres"], "client": None})
    with asyncio.Runner() as runner:
        conn = runner.run(asyncpg.connect(url))
        try:
            # A warm-up pair first, not counted (its rows are the last call's number): the
            # service's first 10,000-row call prepares its statements and fills its caches,
            # which a service taking calls all day has done long before.
            for n in (calls, *range(calls)):
                rows = intake_rows(n)
                body = orjson.dumps({"rows": rows})
                settle(parties)
                calls_meter.start()
                started = time.perf_counter()
                status, result = call(gateway, "POST", "/api/v1/leads/bulk", headers, body)
                elapsed = time.perf_counter() - started
                waited = settle(parties)
                cpu = calls_meter.stop()
                if status != 200 or result["created"] != INTAKE_ROWS:
                    summary = (
                        result if status != 200 else {k: result[k] for k in ("created", "errors")}
                    )
                    raise RuntimeError(f"intake call {n} answered {status}: {str(summary)[:500]}")
                copy = runner.run(_copy_batch(conn, rows, copy_meter))
                label = "warm-up pair (not counted)" if n == calls else f"pair {n + 1}/{calls}"
                print(
                    f"  {label}: intake {INTAKE_ROWS / elapsed:,.0f} rows/s (cpu "
                    f"{_cpu_text(cpu)}; idle again {waited:.1f} s after), COPY "
                    f"{INTAKE_ROWS / copy.seconds:,.0f} rows/s (cpu {_cpu_text(copy.cpu)}): "
                    f"ratio {copy.seconds / elapsed:.3f}",
                    flush=True,
                )
                if n != calls:
                    taken.append(Batch(elapsed, cpu))
                    copied.append(copy)
        finally:
            runner.run(conn.close())
    return taken, copied


async def _copy_batch(
    conn: asyncpg.Connection, rows: list[dict[str, Any]], meter: CpuMeter
) -> Batch:
    records = lead_records(rows, datetime.now(UTC))
    tx = conn.transaction()
    await tx.start()
    meter.start()
    started = time.perf_counter()
    await conn.copy_records_to_table(
        "leads", schema_name="opportunities", columns=LEAD_COLUMNS, records=records
    )
    batch = Batch(time.perf_counter() - started, meter.stop())
    await tx.rollback()
    return batch


def _pid(server: Server) -> int | None:
    return None if server.proc is None else server.proc.pid


def _cpu_text(cpu: dict[str, float | None]) -> str:
    return ", ".join(f"{name} {'?' if v is None else f'{v:.2f} s'}" for name, v in cpu.items())


def batch_sides(batches: list[Batch]) -> list[WrkResult]:
    """The batches as the harness's results, each with its CPU per row (all parties)."""
    results = batch_results(INTAKE_ROWS, [b.seconds for b in batches])
    for result, batch in zip(results, batches, strict=True):
        total = batch.cpu_total
        result.cpu_us_per_request = None if total is None else round(total * 1e6 / INTAKE_ROWS, 1)
    return results


# --- the raw baseline of the reads ---------------------------------------------------------------

BOARD_TOTALS = (
    "SELECT stage, count(*), coalesce(sum(amount), 0) FROM opportunities.opportunities "
    "WHERE closed_at IS NULL AND team_id = $1::uuid GROUP BY stage"
)
BOARD_ITEMS = (
    "SELECT * FROM (SELECT id, name, customer_id, owner_id, amount, stage, probability, "
    "stage_entered_at, expected_close_on, next_action_on, stalled_at, row_number() OVER "
    "(PARTITION BY stage ORDER BY amount DESC NULLS LAST, id) AS rank "
    "FROM opportunities.opportunities WHERE closed_at IS NULL AND team_id = $1::uuid) r "
    "WHERE rank <= 50 ORDER BY stage, rank"
)
STALLED = (
    "SELECT id, name, customer_id, owner_id, team_id, stage, amount, stage_entered_at, "
    "created_at, stage_due_at, cycle_due_at, stalled_at FROM opportunities.opportunities "
    "WHERE closed_at IS NULL AND stalled_at <= now() ORDER BY stalled_at, id LIMIT 51"
)


def raw_app() -> Starlette:
    """Starlette + asyncpg + orjson: the reads' statements, no auth, no kit."""

    async def board(request: Request) -> Response:
        team = request.query_params["team_id"]
        pool = request.app.state.pool
        totals = await pool.fetch(BOARD_TOTALS, team)
        items = await pool.fetch(BOARD_ITEMS, team)
        body = {"totals": [dict(r) for r in totals], "items": [dict(r) for r in items]}
        return Response(orjson.dumps(body, default=str), media_type="application/json")

    async def stalled(request: Request) -> Response:
        rows = await request.app.state.pool.fetch(STALLED)
        body = {"items": [dict(r) for r in rows[:50]]}
        return Response(orjson.dumps(body, default=str), media_type="application/json")

    return Starlette(
        routes=[
            Route("/api/v1/opportunities/board", board),
            Route("/api/v1/opportunities/stalled", stalled),
        ],
        lifespan=pool_lifespan,
    )


# --- servers -------------------------------------------------------------------------------------


def api_key(gateway: Server, admin: dict[str, str]) -> str:
    status, created = call(
        gateway,
        "POST",
        "/api/v1/api-keys",
        {**admin, "Content-Type": "application/json"},
        orjson.dumps({"name": "bench intake", "scopes": ["leads:write"]}),
    )
    if status != 201:
        raise RuntimeError(f"creating the API key answered {status}: {created}")
    return str(created["key"])


def _unloaded(
    ctx: Context,
    name: str,
    project: Server,
    baseline: Server,
    requests: RequestSet,
    baseline_requests: RequestSet,
) -> Comparison:
    loaded = ctx.load
    ctx.load = dataclasses.replace(loaded, connections=1, threads=1)
    try:
        return ctx.compare(
            name,
            project=project,
            baseline=baseline,
            requests=requests,
            baseline_requests=baseline_requests,
        )
    finally:
        ctx.load = loaded


# --- the benchmark -------------------------------------------------------------------------------


def run(ctx: Context) -> None:
    count = int(os.environ.get("BENCH_OPPORTUNITIES_ROWS", "1000000"))
    calls = int(os.environ.get("BENCH_OPPORTUNITIES_INTAKE_CALLS", "5"))
    url = ctx.create_database("bench_opportunities")
    migrate_all(url, (GATEWAY, BY_NAME["opportunities"]))
    org = make_org(random.Random(5))

    async def prepare() -> None:
        conn = await asyncpg.connect(url)
        try:
            await load_directory(conn, org)
            await load_customers(conn)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(prepare())
    service, gateway, admin = start_behind_gateway(
        ctx,
        url,
        app="opportunities",
        service_name="opportunities",
        # Learned once at start (on the still empty tables), not during the load.
        service_env={"OPPORTUNITIES_NORMS_REFRESH_SECONDS": "86400"},
        gateway_env={
            "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "300",
            "GATEWAY_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            "GATEWAY_RATE_LIMIT_INTEGRATION": "1000000000/60",
        },
    )
    key = api_key(gateway, admin)

    # 1. Intake in 10,000-row calls vs raw COPY of the same rows, pair by pair.
    parties = {"service": _pid(service), "gateway": _pid(gateway), "postgres": ctx.postgres.pid()}
    taken, copied = intake_beside_copy(gateway, key, url, calls, parties)
    compared = Comparison(
        "opportunities",
        "intake-10k-rows",
        Side("gateway", batch_sides(taken)),
        Side("copy", batch_sides(copied)),
        goal=INTAKE_GOAL,
        paired_ratios=[c.seconds / t.seconds for t, c in zip(taken, copied, strict=True)],
    )
    ctx.comparisons.append(compared)
    for side, batches in (("intake", taken), ("copy", copied)):
        medians = {
            name: statistics.median(v for b in batches if (v := b.cpu[name]) is not None)
            if all(b.cpu[name] is not None for b in batches)
            else None
            for name in batches[0].cpu
        }
        print(f"  {side}: median cpu a call {_cpu_text(medians)}", flush=True)
    cpu_ratio = compared.cpu_ratio
    print(
        f"  intake-10k-rows: {INTAKE_ROWS / statistics.median(b.seconds for b in taken):,.0f} "
        f"rows/s through the gateway vs "
        f"{INTAKE_ROWS / statistics.median(b.seconds for b in copied):,.0f} rows/s raw COPY: "
        f"ratio {compared.ratio:.3f} (the median of the pairs'; of the medians "
        f"{compared.medians_ratio:.3f}; goal >= {INTAKE_GOAL}); by CPU of all parties "
        f"{'?' if cpu_ratio is None else f'{cpu_ratio:.3f}'}",
        flush=True,
    )

    # 2-3. The reads over 1,000,000 opportunities.
    asyncio.run(load_opportunities(url, count, org))
    raw = ctx.start_server(
        "raw",
        "bench.opportunities:raw_app",
        factory=True,
        env={"DATABASE_URL": url},
        ready_path=f"/api/v1/opportunities/board?team_id={org.board_team}",
    )
    board_path = f"/api/v1/opportunities/board?team_id={org.board_team}"
    status, board = call(gateway, "GET", board_path, admin)
    if status != 200 or board["count"] != BOARD_OPEN:
        raise RuntimeError(f"board answered {status}: {str(board)[:300]}")
    same = RequestSet(paths_file=ctx.write_lines("opp-board.txt", [board_path]), headers=admin)
    board_cmp = _unloaded(ctx, "board-500", gateway, raw, same, same)
    _verdict("board-500", board_cmp, BOARD_P99_GOAL_MS)

    stalled_paths = ["/api/v1/opportunities/stalled?limit=50"] + [
        f"/api/v1/opportunities/stalled?limit=50&team_id={t}" for t in org.teams[:-1]
    ]
    status, page = call(gateway, "GET", stalled_paths[0], admin)
    if status != 200 or len(page["items"]) != 50:
        raise RuntimeError(f"stalled answered {status}: {str(page)[:300]}")
    stalled_cmp = _unloaded(
        ctx,
        "stalled-1m",
        gateway,
        raw,
        RequestSet(paths_file=ctx.write_lines("opp-stalled.txt", stalled_paths), headers=admin),
        RequestSet(
            paths_file=ctx.write_lines("opp-stalled-raw.txt", stalled_paths[:1]), headers={}
        ),
    )
    _verdict("stalled-1m", stalled_cmp, STALLED_P99_GOAL_MS)


def _verdict(name: str, comparison: Comparison, goal_ms: float) -> None:
    p99 = comparison.project.median("p99_ms")
    verdict = "ok" if p99 < goal_ms else "MISSED"
    print(f"  {name}: p99 {p99:.2f} ms (goal < {goal_ms:g} ms) {verdict}", flush=True)
