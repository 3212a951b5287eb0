"""Insight alerts at scale, on part 1's data set (bench/analytics.py's loader: customers,
completed visits and orders by COPY, the rollups rebuilt), with opportunities and A-level
customers' quality flags added here so that every rule has subjects.

- `alerts-daily-pass`: every rule over every subject, recording the alerts (raised, refreshed,
  resolved, their events), as the daily pass runs it; goal < 60 s at 1,000,000 customers.
  Measured twice: the first pass raises everything, the second finds the same (the steady
  state). The baseline, same run: the rules' bare statements, only counting their hits.
- `alerts-one-event`: the rules of what one incoming event touches (a visit's rep, an order's
  customer, an opportunity), recorded as the consumer does after applying it; goal p95 < 5 ms.
  The baseline: the same rules' bare statements narrowed to the same subjects.

BENCH_ALERTS_SCALE (default 1: 1,000,000 customers, 10,000,000 visits, 2,000,000 orders) scales
the data set like BENCH_ANALYTICS_SCALE; BENCH_ALERTS_EVENTS (default 300) is the number of
events timed.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from analytics.alerts import repository
from analytics.alerts.service import Evaluator, Subjects, configs
from analytics.config import Settings
from analytics.kpis.measures import Context as KpiContext
from analytics.models import directory
from bench.analytics import END, World, _pct, _side, load, rebuild
from bench.harness import Comparison, Context, Side, batch_results
from fieldforce.apps import BY_NAME
from fieldforce.stack import migrate_all
from servicekit.db import Database

PASS_GOAL_S = 60.0
EVENT_P95_MS = 5.0
NOW = datetime.combine(END, datetime.min.time(), UTC) + timedelta(hours=10)
STAGES = ("qualification", "needs_analysis", "proposal", "negotiation", "won", "lost")


async def add_alert_facts(url: str, world: World, scale: float) -> list[uuid.UUID]:
    """Opportunities (a twentieth of the customers) and incomplete data on a tenth of the
    A-level customers; returns the opportunities' ids."""
    rng = random.Random(11)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "UPDATE analytics.customers SET data_incomplete = true, "
            "quality_score = (abs(hashtext(id::text)) % 100) "
            "WHERE level = 'A' AND abs(hashtext(id::text)) % 10 = 0"
        )
        rows, ids = [], []
        for _ in range(round(50_000 * scale)):
            customer = world.customers[rng.randrange(len(world.customers))]
            rep, team = world.reps[world.owner_on(customer, END)][0], None
            team = world.teams[world.reps[world.owner_on(customer, END)][1]]
            created = NOW - timedelta(days=rng.randrange(1, 400))
            stage = rng.choice(STAGES)
            won = created + timedelta(days=rng.randrange(5, 120)) if stage == "won" else None
            oid = uuid.UUID(int=rng.getrandbits(128), version=4)
            ids.append(oid)
            rows.append(
                (oid, customer[0], rep, team, "R00", stage, created, won, won and won.date())
            )
        await conn.copy_records_to_table(
            "opportunities",
            schema_name="analytics",
            columns=[
                "id", "customer_id", "owner_id", "team_id", "region", "stage", "created_at",
                "won_at", "won_day",
            ],
            records=rows,
        )  # fmt: skip
        await conn.execute("VACUUM ANALYZE analytics.opportunities, analytics.customers")
    finally:
        await conn.close()
    return ids


async def _timed(db: Database, work: Callable[[Any], Awaitable[Any]]) -> tuple[float, Any]:
    """Seconds `work(session)` takes in a unit of work of its own (committed)."""
    started = time.perf_counter()
    async with db.session() as session:
        result = await work(session)
    return time.perf_counter() - started, result


async def measure(ctx: Context, url: str, world: World, opportunities: list[uuid.UUID]) -> None:
    db = Database(url, app_name="analytics", schema="analytics", statement_timeout_ms=0)
    await db.connect()
    try:
        kpi = KpiContext.of(Settings(database_url=url), directory)
        evaluator = Evaluator()
        today = kpi.calendar.day(NOW)

        async def bare(session: Any, subjects: Subjects | None) -> int:
            cfgs = await configs(session)
            plans = await evaluator.statements(session, kpi, cfgs, today, subjects)
            return sum(
                [await repository.count_hits(session, p.hits(), p.ids) for p in plans.values()]
            )

        base_s, hits = await _timed(db, lambda s: bare(s, None))
        first_s, raised = await _timed(db, lambda s: evaluator.evaluate(s, kpi, now=NOW))
        again_s, _ = await _timed(db, lambda s: evaluator.evaluate(s, kpi, now=NOW))
        counts = {rule: v["raised"] for rule, v in raised.items()}
        print(f"  hits per rule at the first pass: {counts} ({hits} in all)", flush=True)
        print(
            f"  alerts-daily-pass: first {first_s:.1f} s, steady {again_s:.1f} s "
            f"(goal < {PASS_GOAL_S:g} s) {'ok' if max(first_s, again_s) < PASS_GOAL_S else 'NO'}"
            f"; the bare statements {base_s:.1f} s: {again_s / base_s:.2f}x",
            flush=True,
        )
        rows = len(world.customers)
        ctx.comparisons.append(
            Comparison(
                ctx.benchmark,
                "alerts-daily-pass",
                _side_batches("pass", rows, [first_s, again_s]),
                _side_batches("bare", rows, [base_s]),
            )
        )

        rng = random.Random(5)
        samples = int(os.environ.get("BENCH_ALERTS_EVENTS", "300"))
        kinds: list[Callable[[], Subjects]] = [
            lambda: Subjects(reps={world.reps[rng.randrange(len(world.reps))][0]}),
            lambda: Subjects(customers={world.customers[rng.randrange(len(world.customers))][0]}),
            lambda: Subjects(opportunities={opportunities[rng.randrange(len(opportunities))]}),
        ]
        project, baseline = [], []
        for n in range(samples):
            one = kinds[n % 3]()

            async def evaluated(session: Any, one: Subjects = one) -> Any:
                return await evaluator.evaluate(session, kpi, one, now=NOW)

            async def counted(session: Any, one: Subjects = one) -> Any:
                return await bare(session, one)

            seconds, _ = await _timed(db, evaluated)
            project.append(seconds * 1000)
            seconds, _ = await _timed(db, counted)
            baseline.append(seconds * 1000)
        for n, kind in enumerate(("a visit's rep", "an order's customer", "an opportunity")):
            mine = project[n::3]
            print(f"    {kind}: p50 {_pct(mine, 50):.2f} ms  p95 {_pct(mine, 95):.2f} ms")
        p95 = _pct(project, 95)
        print(
            f"  alerts-one-event: p50 {_pct(project, 50):.2f} ms  p95 {p95:.2f} ms "
            f"(goal p95 < {EVENT_P95_MS:g} ms) {'ok' if p95 < EVENT_P95_MS else 'MISSED'}; "
            f"bare statements p50 {statistics.median(baseline):.2f} ms "
            f"p95 {_pct(baseline, 95):.2f} ms",
            flush=True,
        )
        ctx.comparisons.append(
            Comparison(
                ctx.benchmark,
                "alerts-one-event",
                _side("evaluate", project),
                _side("bare", baseline),
            )
        )
    finally:
        await db.close()


def _side_batches(name: str, rows: int, seconds: list[float]) -> Side:
    side = Side(name)
    side.rounds.extend(batch_results(rows, seconds))
    return side


def run(ctx: Context) -> None:
    scale = float(os.environ.get("BENCH_ALERTS_SCALE", "1"))
    url = ctx.create_database("bench_analytics_alerts")
    migrate_all(url, (BY_NAME["analytics"],))
    world = asyncio.run(load(url, scale))
    opportunities = asyncio.run(add_alert_facts(url, world, scale))
    seconds = asyncio.run(rebuild(url))
    print(f"  rollups rebuilt from the facts ({seconds:.1f} s)", flush=True)
    asyncio.run(measure(ctx, url, world, opportunities))
