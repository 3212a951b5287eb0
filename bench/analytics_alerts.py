"""Insight alerts at scale, on part 1's data set (bench/analytics.py's loader: customers,
completed visits and orders by COPY, the rollups rebuilt), with opportunities and A-level
customers' quality flags added here so that every rule has subjects.

- `alerts-daily-pass`: every rule over every subject, recording the alerts (raised, refreshed,
  resolved, their events), as the daily pass runs it; goal < 60 s at 1,000,000 customers.
  Measured twice: the first pass raises everything, the second finds the same (the steady
  state). The baseline, same run: the rules' bare statements, only counting their hits.
- `alerts-one-event`: the rules of what one incoming event touches (a visit's rep, an order's
  customer, an opportunity), recorded by the statement the consumer runs after applying it;
  goal p95 < 5 ms. The baseline: the same rules' bare statements narrowed to the same
  subjects. Both run in a session without a transaction (each statement its own): an
  evaluation of one subject is one atomic statement, and in the consumer it joins the page's
  transaction, whose BEGIN and COMMIT are the page's.

Besides the times, figures that move less with the machine's load: per pass and per event the
statements sent (round trips), the bench process's CPU (SQLAlchemy, the driver) and the
database backends' CPU (read from /proc: the throwaway server runs on this machine; its ticks
are 10 ms, so only the mean over many events means anything).

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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa

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


@dataclass
class Cost:
    """What calls cost besides their time, summed."""

    calls: int = 0
    statements: int = 0
    client_s: float = 0.0
    server_s: float = 0.0

    def per_call(self) -> str:
        n = max(self.calls, 1)
        return (
            f"{self.statements / n:.2f} statements, client CPU {self.client_s / n * 1000:.2f} ms,"
            f" database CPU {self.server_s / n * 1000:.2f} ms"
        )


def _sum(costs: list[Cost]) -> Cost:
    return Cost(
        sum(c.calls for c in costs),
        sum(c.statements for c in costs),
        sum(c.client_s for c in costs),
        sum(c.server_s for c in costs),
    )


class Meter:
    """Counts the statements sent through `db` and reads the CPU of the database backends
    serving the bench's database."""

    def __init__(self, db: Database) -> None:
        self.statements = 0
        self.pids: list[int] = []
        assert db.engine is not None
        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", self._sent)

    def _sent(self, *args: Any) -> None:
        self.statements += 1

    async def find_backends(self, db: Database) -> None:
        async with db.session() as session:
            rows: Any = await session.execute(
                sa.select(sa.column("pid"))
                .select_from(sa.table("pg_stat_activity"))
                .where(sa.column("datname") == sa.func.current_database())
            )
            self.pids = [r[0] for r in rows]

    def server_cpu(self) -> float:
        ticks = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a connection closed since, or a server elsewhere
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    async def timed(
        self,
        db: Database,
        work: Callable[[Any], Awaitable[Any]],
        cost: Cost | None = None,
        *,
        alone: bool = False,
    ) -> tuple[float, Any]:
        """Seconds `work(session)` takes in a unit of work of its own (committed), or
        (`alone`) in a session whose statements each commit on their own; its statements and
        CPU added to `cost`."""
        sent, client, server = self.statements, time.process_time(), self.server_cpu()
        started = time.perf_counter()
        if alone:
            async with db.new_session(autocommit=True) as session:
                result = await work(session)
        else:
            async with db.session() as session:
                result = await work(session)
        seconds = time.perf_counter() - started
        if cost is not None:
            cost.calls += 1
            cost.statements += self.statements - sent
            cost.client_s += time.process_time() - client
            cost.server_s += self.server_cpu() - server
        return seconds, result


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
                [
                    await repository.count_hits(session, p.hits(), p.kind, p.ids)
                    for p in plans.values()
                ]
            )

        meter = Meter(db)
        await meter.find_backends(db)
        passes, bare_pass = Cost(), Cost()
        base_s, hits = await meter.timed(db, lambda s: bare(s, None), bare_pass)
        first_s, raised = await meter.timed(db, lambda s: evaluator.evaluate(s, kpi, now=NOW))
        again_s, _ = await meter.timed(db, lambda s: evaluator.evaluate(s, kpi, now=NOW), passes)
        counts = {rule: v["raised"] for rule, v in raised.items()}
        print(f"  hits per rule at the first pass: {counts} ({hits} in all)", flush=True)
        print(
            f"  alerts-daily-pass: first {first_s:.1f} s, steady {again_s:.1f} s "
            f"(goal < {PASS_GOAL_S:g} s) {'ok' if max(first_s, again_s) < PASS_GOAL_S else 'NO'}"
            f"; the bare statements {base_s:.1f} s: {again_s / base_s:.2f}x",
            flush=True,
        )
        print(f"    steady pass: {passes.per_call()}; bare: {bare_pass.per_call()}", flush=True)
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
        costs = [Cost() for _ in kinds]
        bare_costs = [Cost() for _ in kinds]
        await meter.find_backends(db)
        for n in range(samples):
            one = kinds[n % 3]()

            async def evaluated(session: Any, one: Subjects = one) -> Any:
                return await evaluator.evaluate(session, kpi, one, now=NOW)

            async def counted(session: Any, one: Subjects = one) -> Any:
                return await bare(session, one)

            seconds, _ = await meter.timed(db, evaluated, costs[n % 3], alone=True)
            project.append(seconds * 1000)
            seconds, _ = await meter.timed(db, counted, bare_costs[n % 3], alone=True)
            baseline.append(seconds * 1000)
        for n, kind in enumerate(("a visit's rep", "an order's customer", "an opportunity")):
            mine = project[n::3]
            print(f"    {kind}: p50 {_pct(mine, 50):.2f} ms  p95 {_pct(mine, 95):.2f} ms")
            print(f"      per event: {costs[n].per_call()}")
            print(f"      bare:      {bare_costs[n].per_call()}")
        print(f"    every event: {_sum(costs).per_call()}; bare: {_sum(bare_costs).per_call()}")
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
