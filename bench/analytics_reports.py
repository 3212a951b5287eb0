"""The analytics reports at scale: the weekly report of a team of 50 and the company's summary
over a quarter, on part 1's data set (`bench.analytics.load`: customers, completed visits,
orders and payments loaded by COPY), with what the reports read besides: leads,
opportunities and their stage moves over the three years, and for the week measured visits
with competitor news, daily reports, complaints and the approved plans of the week after.

- `weekly-team`: `GET /api/v1/reports/weekly?team_id=&week=2026-W47` (every rep's and the
  team's week, the month-to-date of their November targets, what was heard, complaints, next
  week's plan) straight to the service, one connection; goal p95 < 200 ms.
- `summary-company`: `GET /api/v1/reports/summary?scope=company&from=2026-07-01&to=2026-10-01`
  (2026-Q3 beside Q2); goal p95 < 200 ms.

Each beside a baseline in the same run: the same figures from plain asyncpg aggregates over
the fact tables, a grouped statement per fact table (per rep for the week), timed in the
benchmark's process (no HTTP); the run checks that both give the same figures. The ratio is
what the reports' reuse of part 1's per-scope KPI functions costs against one hand-written
aggregate.

The reports are timed once the service is idle (its alerts' daily pass runs at start), with
the server's CPU per report beside the latencies (steadier on a shared machine).

BENCH_ANALYTICS_SCALE as for `analytics` (default 0.2); BENCH_REPORTS_SAMPLES (default 50)
answers per side; BENCH_ANALYTICS_PLAIN_SAMPLES, as for `analytics`, fewer for the plain
aggregates (at the full scale one takes seconds).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from bench.analytics import REGIONS, World, _day, _pct, _rid, _side, _timed, load, rebuild
from bench.harness import Comparison, Context, Server, call
from fieldforce.apps import BY_NAME
from fieldforce.stack import migrate_all
from servicekit.testing.tokens import INTERNAL_TOKEN_HEADER, make_principal

P95_MS = 200.0
WEEK, WEEK_START, WEEK_END = "2026-W47", date(2026, 11, 16), date(2026, 11, 23)
MONTH_START = date(2026, 11, 1)
QUARTER, BEFORE = (date(2026, 7, 1), date(2026, 10, 1)), (date(2026, 4, 1), date(2026, 7, 1))
STAGES = ("prospecting", "qualification", "proposal", "negotiation")


def _at(day: date, hour: int = 9) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)


async def load_pipeline(url: str, world: World, scale: float) -> None:
    """Leads over the three years, the opportunities some became, their stage moves."""
    rng = random.Random(11)
    leads, opps, moves = [], [], []
    first, last = date(2024, 1, 1), date(2026, 11, 30)
    for _ in range(round(200_000 * scale)):
        rep, team_n = world.reps[rng.randrange(len(world.reps))]
        team, region = world.teams[team_n], REGIONS[team_n % len(REGIONS)]
        received = _day(rng, first, last)
        lead_id, contacted, converted, opp_id = _rid(rng), None, None, None
        invalid = rng.random() < 0.1
        if not invalid and rng.random() < 0.6:
            contacted = _at(received + timedelta(days=rng.randrange(3)))
            if rng.random() < 0.35:
                created = received + timedelta(days=3 + rng.randrange(5))
                converted, opp_id = _at(created), _rid(rng)
                day, stage, won_at = created, STAGES[0], None
                for nxt in (*STAGES[1:], "won"):
                    day += timedelta(days=1 + rng.randrange(12))
                    if day >= last:
                        break
                    to = nxt if rng.random() < 0.7 else "lost"
                    moves.append(
                        (_rid(rng), opp_id, stage, to, to != "lost", _at(day), day, rep, team,
                         region)
                    )  # fmt: skip
                    stage = to
                    if to == "won":
                        won_at = _at(day)
                    if to in ("won", "lost"):
                        break
                amount = Decimal(rng.randrange(1_000_00, 500_000_00)) / 100
                opps.append(
                    (
                        opp_id, lead_id, rep, team, region, "web_form", amount, stage,
                        converted, won_at, None if won_at is None else won_at.date(),
                    )
                )  # fmt: skip
        leads.append(
            (
                lead_id, "web_form", "invalid" if invalid else "assigned", rep, team, region,
                _at(received, 1), received, contacted, invalid, converted, opp_id,
            )
        )  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        await _copy(conn, "leads", LEAD_COLUMNS, leads)
        await _copy(conn, "opportunities", OPPORTUNITY_COLUMNS, opps)
        await _copy(conn, "stage_moves", MOVE_COLUMNS, moves)
    finally:
        await conn.close()
    print(f"  {len(leads)} leads, {len(opps)} opportunities, {len(moves)} stage moves", flush=True)


async def load_week(url: str, world: World) -> None:
    """What the measured week brought besides the KPIs' facts, for every team: visits with
    news (one in 20 of the week's), a daily report a rep a day, two complaints a rep (one
    resolved), and six approved plan items a rep a working day of the week after."""
    rng = random.Random(13)
    reports, cases, steps, items = [], [], [], []
    for rep, team_n in world.reps:
        team = world.teams[team_n]
        for n in range(5):
            day = WEEK_START + timedelta(days=n)
            reports.append(
                (_rid(rng), "daily_report", rep, team, None, day, "submitted", None, "{}",
                 "Acme cut prices" if n % 2 else None, "wants faster delivery", _at(day, 18))
            )  # fmt: skip
            plan_id = _rid(rng)
            for _ in range(6):
                customer = world.customers[rng.randrange(len(world.customers))][0]
                items.append(
                    (_rid(rng), plan_id, rep, team, WEEK_END + timedelta(days=n), customer,
                     "service", True)
                )  # fmt: skip
        for n in range(2):
            case_id, day = _rid(rng), WEEK_START + timedelta(days=1 + 2 * n)
            cases.append(
                (case_id, "complaint", rep, team, None, day, "open", "high",
                 '{"description": "late delivery", "category": "delivery"}', None, None, _at(day))
            )  # fmt: skip
            steps.append((_rid(rng), case_id, "complaint", "raised", rep, team, _at(day), day))
            if n == 0:
                done = day + timedelta(days=2)
                steps.append(
                    (_rid(rng), case_id, "complaint", "resolved", rep, team, _at(done), done)
                )
    conn = await asyncpg.connect(url)
    try:
        await _copy(conn, "field_reports", REPORT_COLUMNS, reports + cases)
        await _copy(conn, "case_steps", STEP_COLUMNS, steps)
        await _copy(conn, "plan_items", ITEM_COLUMNS, items)
        await conn.execute(
            "UPDATE analytics.visits SET competitor_news = 'Acme visited them' "
            "WHERE day >= $1 AND day < $2 AND hashtext(id::text) % 20 = 0",
            WEEK_START,
            WEEK_END,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def add_targets(url: str, world: World) -> None:
    """November's sales target of the first team and of each of its reps."""
    now = datetime.now(UTC)
    team = world.teams[0]
    rows = [(uuid.uuid4(), "team", str(team), Decimal("5000000.00"))] + [
        (uuid.uuid4(), "rep", str(rep), Decimal("100000.00")) for rep, t in world.reps if t == 0
    ]
    conn = await asyncpg.connect(url)
    try:
        await _copy(
            conn,
            "targets",
            ["id", "metric", "period_kind", "period_start", "scope", "scope_key", "method",
             "value", "version", "created_at", "updated_at"],
            [(i, "sales_amount", "month", MONTH_START, s, k, "manual", v, 1, now, now)
             for i, s, k, v in rows],
        )  # fmt: skip
    finally:
        await conn.close()


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: list[Any]) -> None:
    await conn.copy_records_to_table(table, schema_name="analytics", columns=columns, records=rows)


LEAD_COLUMNS = [
    "id", "source", "status", "owner_id", "team_id", "region", "received_at", "received_day",
    "contacted_at", "invalid", "converted_at", "opportunity_id",
]  # fmt: skip
OPPORTUNITY_COLUMNS = [
    "id", "lead_id", "owner_id", "team_id", "region", "source", "amount", "stage",
    "created_at", "won_at", "won_day",
]  # fmt: skip
MOVE_COLUMNS = [
    "event_id", "opportunity_id", "from_stage", "to_stage", "forward", "at", "day",
    "owner_id", "team_id", "region",
]  # fmt: skip
REPORT_COLUMNS = [
    "id", "kind", "rep_id", "team_id", "customer_id", "day", "status", "severity", "data",
    "competitor_news", "customer_feedback", "updated_at",
]  # fmt: skip
STEP_COLUMNS = ["event_id", "case_id", "kind", "step", "rep_id", "team_id", "at", "day"]
ITEM_COLUMNS = ["id", "plan_id", "rep_id", "team_id", "day", "customer_id", "purpose", "approved"]


# --- the baselines: plain aggregates over the fact tables ------------------------------------

WEEK_BY_REP = """
SELECT m.user_id AS rep,
  (SELECT coalesce(sum(o.amount), 0) FROM analytics.orders o
    WHERE o.owner_id = m.user_id AND o.day >= $2 AND o.day < $3 AND NOT o.cancelled) AS sales,
  (SELECT coalesce(sum(o.paid_amount), 0) FROM analytics.orders o
    WHERE o.owner_id = m.user_id AND o.day >= $2 AND o.day < $3 AND NOT o.cancelled) AS paid,
  (SELECT coalesce(sum(p.amount), 0) FROM analytics.payments p
    WHERE p.owner_id = m.user_id AND p.day >= $2 AND p.day < $3 AND NOT p.reversed) AS collected,
  (SELECT count(*) FROM analytics.customers c
    WHERE c.created_owner_id = m.user_id AND c.created_day >= $2 AND c.created_day < $3
      AND c.status NOT IN ('invalid', 'merged')) AS new_customers,
  v.visits, v.effective, v.orders,
  (SELECT coalesce(sum(o.amount), 0) FROM analytics.orders o
    WHERE o.owner_id = m.user_id AND o.day >= $4 AND o.day < $3 AND NOT o.cancelled) AS to_date
FROM (SELECT DISTINCT user_id FROM analytics.memberships WHERE team_id = $1 AND role = 'rep') m
CROSS JOIN LATERAL (
  SELECT count(*) AS visits, count(*) FILTER (WHERE effective) AS effective,
         count(*) FILTER (WHERE order_taken) AS orders
  FROM analytics.visits WHERE rep_id = m.user_id AND day >= $2 AND day < $3) v
ORDER BY 1
"""
WEEK_LISTS = (
    "SELECT id, day, rep_id, competitor_news, customer_feedback FROM analytics.visits "
    "WHERE team_id = $1 AND day >= $2 AND day < $3 "
    "AND (competitor_news IS NOT NULL OR customer_feedback IS NOT NULL)",
    "SELECT id, day, rep_id, competitor_news, customer_feedback FROM analytics.field_reports "
    "WHERE kind = 'daily_report' AND team_id = $1 AND day >= $2 AND day < $3",
    "SELECT s.case_id, s.step, min(s.day), r.data->>'description' FROM analytics.case_steps s "
    "JOIN analytics.field_reports r ON r.id = s.case_id "
    "WHERE s.team_id = $1 AND s.day >= $2 AND s.day < $3 GROUP BY 1, 2, 4",
    "SELECT i.id, i.day, i.rep_id, c.name FROM analytics.plan_items i "
    "LEFT JOIN analytics.customers c ON c.id = i.customer_id "
    "WHERE i.team_id = $1 AND i.day >= $2 AND i.day < $3 AND i.approved",
)
PERIOD_FIGURES = """
SELECT
  (SELECT count(*) FROM analytics.leads WHERE received_day >= $1 AND received_day < $2) AS leads,
  (SELECT count(*) FROM analytics.leads WHERE received_day >= $1 AND received_day < $2
     AND contacted_at IS NOT NULL) AS contacted,
  (SELECT count(*) FROM analytics.leads WHERE received_day >= $1 AND received_day < $2
     AND converted_at IS NOT NULL) AS qualified,
  (SELECT count(*) FROM analytics.leads l JOIN analytics.opportunities o
     ON o.id = l.opportunity_id WHERE l.received_day >= $1 AND l.received_day < $2
     AND l.converted_at IS NOT NULL AND o.stage = 'won') AS won_leads,
  (SELECT count(*) FROM analytics.leads WHERE received_day >= $1 AND received_day < $2
     AND invalid) AS invalid,
  (SELECT count(*) FROM analytics.opportunities WHERE stage = 'won' AND won_day >= $1
     AND won_day < $2) AS won,
  (SELECT coalesce(sum(amount), 0) FROM analytics.opportunities WHERE stage = 'won'
     AND won_day >= $1 AND won_day < $2) AS won_amount,
  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM won_at - created_at))
     FROM analytics.opportunities WHERE stage = 'won' AND won_day >= $1 AND won_day < $2)
     AS cycle_seconds,
  (SELECT count(*) FROM analytics.customers WHERE created_day >= $1 AND created_day < $2
     AND status NOT IN ('invalid', 'merged')) AS new_customers,
  (SELECT count(*) FROM analytics.customers WHERE first_order_day >= $1
     AND first_order_day < $2 AND status NOT IN ('invalid', 'merged')) AS developed,
  s.sales, s.top
FROM (
  SELECT coalesce(sum(a), 0) AS sales,
         coalesce(sum(a) FILTER (WHERE n <= ceil(total * 0.2)), 0) AS top
  FROM (SELECT a, row_number() OVER (ORDER BY a DESC, customer_id) AS n,
               count(*) OVER () AS total
        FROM (SELECT customer_id, sum(amount) AS a FROM analytics.orders
              WHERE day >= $1 AND day < $2 AND NOT cancelled GROUP BY customer_id) per) r
) s
"""
STAGES_SQL = (
    "SELECT from_stage, count(DISTINCT opportunity_id) FILTER (WHERE forward), "
    "count(DISTINCT opportunity_id) FROM analytics.stage_moves "
    "WHERE day >= $1 AND day < $2 GROUP BY from_stage ORDER BY from_stage"
)


async def _baseline_week(conn: asyncpg.Connection, team: uuid.UUID) -> dict[str, Any]:
    reps = await conn.fetch(WEEK_BY_REP, team, WEEK_START, WEEK_END, MONTH_START)
    for n, sql in enumerate(WEEK_LISTS):
        # The last list is next week's plan.
        start, end = (WEEK_END, WEEK_END + timedelta(days=7)) if n == 3 else (WEEK_START, WEEK_END)
        await conn.fetch(sql, team, start, end)
    return {str(r["rep"]): r["sales"] for r in reps}


async def _baseline_summary(conn: asyncpg.Connection) -> dict[str, Any]:
    out = {}
    for name, (start, end) in (("now", QUARTER), ("before", BEFORE)):
        row = await conn.fetchrow(PERIOD_FIGURES, start, end)
        await conn.fetch(STAGES_SQL, start, end)
        out[name] = row
    return out


async def _time_baseline(
    url: str, work: Callable[[asyncpg.Connection], Awaitable[Any]], n: int
) -> tuple[list[float], Any]:
    conn = await asyncpg.connect(url)
    try:
        answer = await work(conn)  # warm
        times = []
        for _ in range(n):
            started = time.perf_counter()
            await work(conn)
            times.append((time.perf_counter() - started) * 1000)
        return times, answer
    finally:
        await conn.close()


BUSY = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND state = 'active' AND pid <> pg_backend_pid()"
)


def settle(server: Server, url: str, window: float = 2.0, limit: float = 900.0) -> None:
    """Wait until the service is idle: its alerts' daily pass runs when it starts (every rule
    over the whole data set), and the reports would be timed beside it. Idle: a window with
    no statement running on the database and under 5 % of a core used by the server."""

    async def wait() -> None:
        conn = await asyncpg.connect(url)
        try:
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                cpu, busy = server.cpu_seconds() or 0.0, 0
                for _ in range(int(window / 0.25)):
                    await asyncio.sleep(0.25)
                    busy += await conn.fetchval(BUSY)
                if not busy and (server.cpu_seconds() or 0.0) - cpu < 0.05 * window:
                    return
        finally:
            await conn.close()

    started = time.perf_counter()
    asyncio.run(wait())
    print(f"  the service idle after {time.perf_counter() - started:.1f} s", flush=True)


def _timed_cpu(
    server: Server, path: str, headers: dict[str, str], n: int
) -> tuple[list[float], float]:
    """`_timed`, and the server's CPU per answer (ms): steadier than latency on a busy machine."""
    before = server.cpu_seconds() or 0.0
    times = _timed(server, path, headers, n)
    return times, ((server.cpu_seconds() or 0.0) - before) / n * 1000


def _report(ctx: Context, name: str, timed: tuple[list[float], float], base: list[float]) -> None:
    times, cpu_ms = timed
    p95 = _pct(times, 95)
    verdict = "ok" if p95 < P95_MS else "MISSED"
    ratio = statistics.median(times) / statistics.median(base)
    print(
        f"  {name}: p50 {_pct(times, 50):.1f} ms  p95 {p95:.1f} ms  p99 {_pct(times, 99):.1f} ms"
        f" (goal p95 < {P95_MS:g} ms) {verdict}; server CPU {cpu_ms:.1f} ms per report; plain "
        f"aggregate p50 {statistics.median(base):.1f} ms p95 {_pct(base, 95):.1f} ms; "
        f"the report takes {ratio:.1f}x its time",
        flush=True,
    )
    ctx.comparisons.append(
        Comparison(ctx.benchmark, name, _side("report", times), _side("plain", base))
    )


def measure(ctx: Context, server: Server, url: str, world: World, samples: int) -> None:
    admin = make_principal("admin")
    headers = {INTERNAL_TOKEN_HEADER: ctx.minter.token(admin, "analytics", ttl_seconds=36_000)}
    team = world.teams[0]

    path = f"/api/v1/reports/weekly?team_id={team}&week={WEEK}"
    status, report = call(server, "GET", path, headers, timeout=600)
    if status != 200:
        raise RuntimeError(f"weekly: {status} {str(report)[:300]}")
    plain_n = int(os.environ.get("BENCH_ANALYTICS_PLAIN_SAMPLES", "0")) or samples
    base, sales = asyncio.run(_time_baseline(url, lambda c: _baseline_week(c, team), plain_n))
    got = {r["rep_id"]: Decimal(r["figures"]["sales_amount"]["value"]) for r in report["reps"]}
    if got != sales or len(got) != 50:
        raise RuntimeError("weekly: the report and the plain aggregate differ on sales per rep")
    _report(ctx, "weekly-team", _timed_cpu(server, path, headers, samples), base)

    start, end = QUARTER
    path = f"/api/v1/reports/summary?scope=company&from={start}&to={end}"
    status, summary = call(server, "GET", path, headers, timeout=600)
    if status != 200:
        raise RuntimeError(f"summary: {status} {str(summary)[:300]}")
    base, plain = asyncio.run(_time_baseline(url, _baseline_summary, plain_n))
    steps = {s["step"]: s["count"]["value"] for s in summary["funnel"]["steps"]}
    now = plain["now"]
    expected = {
        "received": now["leads"],
        "contacted": now["contacted"],
        "qualified": now["qualified"],
        "won": now["won_leads"],
    }
    if steps != expected or Decimal(summary["figures"]["sales_amount"]["value"]) != now["sales"]:
        raise RuntimeError(f"summary: the report and the plain aggregate differ: {steps}")
    _report(ctx, "summary-company", _timed_cpu(server, path, headers, samples), base)


def run(ctx: Context) -> None:
    scale = float(os.environ.get("BENCH_ANALYTICS_SCALE", "0.2"))
    samples = int(os.environ.get("BENCH_REPORTS_SAMPLES", "50"))
    url = ctx.create_database("bench_analytics_reports")
    migrate_all(url, (BY_NAME["analytics"],))
    world = asyncio.run(load(url, scale))
    asyncio.run(load_pipeline(url, world, scale))
    asyncio.run(load_week(url, world))
    asyncio.run(add_targets(url, world))
    seconds = asyncio.run(rebuild(url))
    print(f"  rollups rebuilt from the facts ({seconds:.1f} s)", flush=True)
    server = ctx.start_service("analytics", url, {"ANALYTICS_STATEMENT_TIMEOUT_MS": "600000"})
    settle(server, url)
    measure(ctx, server, url, world, samples)
