"""The customers service at archive scale: 1,000,000 customers loaded with COPY.

Three measurements, each side by side with its baseline in the same run:

- `get-by-id`: `GET /api/v1/customers/{id}` (the full file: record, contacts, order summary,
  data quality, level, custody ledger) through the gateway (real login, rate limits, internal
  token, both hops) vs the raw baseline of the foundation benchmark (Starlette + asyncpg +
  orjson, one `fetchrow` by primary key, no auth) on the same table. Goal: >= 0.40.
  `get-by-id-service`: the same request straight to the service (its CPU per request, the
  service alone); `get-by-id-unloaded`: through the gateway at one connection, the latency a
  user feels.
- `list-owner-region`: a filtered list page (owner + region, 50 rows) through the gateway at one
  connection (unloaded); goal p99 < 20 ms. The baseline is the same page's SQL raw.
- `import-10k`: `POST /api/v1/customers/import` in 10,000-row calls through the gateway
  (validation, dedup, codes, history, events) vs a raw `COPY` of as many rows into the same
  table (rolled back). Goal: >= 0.10 of COPY's rows/s.

BENCH_CUSTOMERS_ROWS (default 1,000,000) and BENCH_CUSTOMERS_IMPORT_CALLS (default 5) size it.
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
from bench.harness import Comparison, Context, RequestSet, Server, Side, batch_results, call
from bench.raw_app import pool_lifespan
from customers.archive import codes
from fieldforce.apps import BY_NAME, GATEWAY
from fieldforce.stack import migrate_all
from servicekit.normalize import normalize_email, normalize_name, normalize_phone
from servicekit.testing.tokens import INTERNAL_TOKEN_HEADER, make_principal

GET_GOAL = 0.40
LIST_P99_GOAL_MS = 20.0
IMPORT_GOAL = 0.10
REGIONS = ("EAST", "WEST", "NORTH", "SOUTH")
TEAMS = 20
REPS = 200
CHUNK = 50_000
IMPORT_ROWS = 10_000
COLUMNS = (
    "id",
    "code",
    "name",
    "region",
    "level",
    "industry",
    "address",
    "phone",
    "email",
    "source",
    "tags",
    "estimated_potential",
    "owner_id",
    "team_id",
    "status",
    "external_ref",
    "normalized_phone",
    "normalized_email",
    "normalized_name",
    "version",
    "created_at",
    "updated_at",
)
PATTERN = "{region}-{seq:06}"


# --- data ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Org:
    teams: list[uuid.UUID]
    reps: list[tuple[uuid.UUID, uuid.UUID]]  # (rep, team)


def make_org(rng: random.Random) -> Org:
    teams = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(TEAMS)]
    reps = [(uuid.UUID(int=rng.getrandbits(128)), teams[i % TEAMS]) for i in range(REPS)]
    return Org(teams, reps)


def customer_record(
    n: int, seq: int, region: str, org: Org, rng: random.Random, base: datetime, tag: str
) -> tuple[Any, ...]:
    owner, team = org.reps[n % REPS]
    name = f"Company {tag}{n} Trading"
    phone = f"1{n:010d}"
    email = f"c{tag}{n}@example.com"
    at = base + timedelta(seconds=n)
    return (
        uuid.UUID(int=rng.getrandbits(128)),
        tag + codes.render(PATTERN, region, "C", at.year, seq),
        name,
        region,
        "ABC"[n % 3],
        "Retail",
        f"{n} Bench Road",
        phone,
        email,
        "bench",
        ["bench"],
        Decimal(n % 1000) * 1000,
        owner,
        team,
        "active",
        f"{tag}{n}",
        normalize_phone(phone),
        normalize_email(email),
        normalize_name(name),
        1,
        at,
        at,
    )


def records(
    count: int, org: Org, seed: int, base: datetime, tag: str = ""
) -> Iterator[list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    seqs = dict.fromkeys(REGIONS, 0)
    chunk: list[tuple[Any, ...]] = []
    for n in range(count):
        region = REGIONS[n % len(REGIONS)]
        seqs[region] += 1
        chunk.append(customer_record(n, seqs[region], region, org, rng, base, tag))
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def load_customers(url: str, count: int, org: Org) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """COPY `count` customers in; returns (id, owner) of a sample for the request files."""
    base = datetime.now(UTC) - timedelta(days=400)
    sample: list[tuple[uuid.UUID, uuid.UUID]] = []
    conn = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        for chunk in records(count, org, seed=1, base=base):
            await conn.copy_records_to_table(
                "customers", schema_name="customers", columns=COLUMNS, records=chunk
            )
            sample += [(r[0], r[12]) for r in chunk[:: max(1, len(chunk) // 2000)]]
        per_region = count // len(REGIONS) + 1
        # The code counters where the load left them, so creates and imports go on from there.
        await conn.executemany(
            "INSERT INTO customers.code_counters (prefix, last_value) VALUES ($1, $2) "
            "ON CONFLICT (prefix) DO UPDATE SET last_value = excluded.last_value",
            [(codes.prefix_key(PATTERN, r, "C", base.year), per_region) for r in REGIONS],
        )
        await conn.execute("ANALYZE customers.customers")
        print(
            f"  loaded {count} customers by COPY in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    finally:
        await conn.close()
    return sample


# --- the raw baseline (the foundation benchmark's, on the customers table) --------------------

CUSTOMER_BY_ID = "SELECT * FROM customers.customers WHERE id = $1::uuid"
LIST_PAGE = (
    "SELECT * FROM customers.customers WHERE owner_id = $1::uuid AND region = $2 "
    "ORDER BY created_at, id LIMIT 51"
)


def raw_app() -> Starlette:
    """Starlette + asyncpg + orjson: one statement per request, no auth, no kit."""

    async def by_id(request: Request) -> Response:
        row = await request.app.state.pool.fetchrow(
            CUSTOMER_BY_ID, request.path_params["customer_id"]
        )
        if row is None:
            return Response(b'{"detail":"not found"}', 404, media_type="application/json")
        return Response(
            orjson.dumps(dict(row), default=str, option=orjson.OPT_UTC_Z),
            media_type="application/json",
        )

    async def page(request: Request) -> Response:
        rows = await request.app.state.pool.fetch(
            LIST_PAGE, request.query_params["owner_id"], request.query_params["region"]
        )
        items = [dict(r) for r in rows[:50]]
        return Response(
            orjson.dumps({"items": items}, default=str, option=orjson.OPT_UTC_Z),
            media_type="application/json",
        )

    return Starlette(
        routes=[
            Route("/api/v1/customers/{customer_id:uuid}", by_id),
            Route("/api/v1/customers", page),
        ],
        lifespan=pool_lifespan,
    )


# --- HTTP helpers ---------------------------------------------------------------------------


def _call(
    server: Server, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, Any]:
    return call(server, method, path, headers, body)


# --- import vs COPY -------------------------------------------------------------------------


def import_rows(call: int, org: Org) -> list[dict[str, Any]]:
    rows = []
    for i in range(IMPORT_ROWS):
        n = call * IMPORT_ROWS + i
        rows.append(
            {
                "external_ref": f"imp-{call}-{i}",
                "source": "bench-import",
                "name": f"Imported {call}-{i} Holdings",
                "region": REGIONS[n % len(REGIONS)],
                "level": "ABC"[n % 3],
                "industry": "Logistics",
                "address": f"{i} Import Street",
                "phone": f"2{n:010d}",
                "email": f"imp{call}.{i}@example.com",
                "tags": ["imported"],
                "estimated_potential": str(Decimal(n % 500) * 100),
            }
        )
    return rows


async def raw_copy_seconds(url: str, org: Org, calls: int) -> list[float]:
    """COPY as many rows, built the way the loader builds them, into the customers table itself
    (same size, same indexes, same moment of the run), each batch in a transaction that is
    rolled back afterwards; one timing per 10,000-row batch."""
    base = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    out = []
    try:
        for n in range(calls):
            (chunk,) = list(records(IMPORT_ROWS, org, seed=100 + n, base=base, tag=f"raw{n}-"))
            tx = conn.transaction()
            await tx.start()
            started = time.perf_counter()
            await conn.copy_records_to_table(
                "customers", schema_name="customers", columns=COLUMNS, records=chunk
            )
            out.append(time.perf_counter() - started)
            await tx.rollback()
    finally:
        await conn.close()
    return out


def import_seconds(gateway: Server, admin: dict[str, str], org: Org, calls: int) -> list[float]:
    out = []
    headers = {**admin, "Content-Type": "application/json"}
    for n in range(calls):
        body = orjson.dumps({"rows": import_rows(n, org)})
        started = time.perf_counter()
        status, result = _call(gateway, "POST", "/api/v1/customers/import", headers, body)
        elapsed = time.perf_counter() - started
        if status != 200 or result["created"] != IMPORT_ROWS:
            summary = result if status != 200 else {k: result[k] for k in ("created", "errors")}
            raise RuntimeError(f"import call {n} answered {status}: {str(summary)[:500]}")
        print(f"  import call {n + 1}/{calls}: {IMPORT_ROWS / elapsed:,.0f} rows/s", flush=True)
        out.append(elapsed)
    return out


# --- the benchmark --------------------------------------------------------------------------


def run(ctx: Context) -> None:
    count = int(os.environ.get("BENCH_CUSTOMERS_ROWS", "1000000"))
    calls = int(os.environ.get("BENCH_CUSTOMERS_IMPORT_CALLS", "5"))
    url = ctx.create_database("bench_customers")
    migrate_all(url, (GATEWAY, BY_NAME["customers"]))
    org = make_org(random.Random(7))
    sample = asyncio.run(load_customers(url, count, org))

    service, gateway, admin = start_behind_gateway(ctx, url, service_name="customers")
    raw = ctx.start_server(
        "raw",
        "bench.customers:raw_app",
        factory=True,
        env={"DATABASE_URL": url},
        ready_path=f"/api/v1/customers/{sample[0][0]}",
    )

    # 1. GET by id: the same rows on both sides, spread over the table.
    paths = [f"/api/v1/customers/{cid}" for cid, _ in sample]
    by_id = RequestSet(paths_file=ctx.write_lines("customers-by-id.txt", paths), headers=admin)
    status, file = _call(gateway, "GET", paths[0], admin)
    if status != 200 or file["id"] != str(sample[0][0]):
        raise RuntimeError(f"gateway answered {status}: {str(file)[:300]}")
    ctx.compare("get-by-id", project=gateway, baseline=raw, requests=by_id, goal=GET_GOAL)
    ttl = int(ctx.load.warmup + 4 * ctx.load.rounds * ctx.load.duration) + 600
    token = ctx.minter.token(make_principal("admin"), "customers", ttl_seconds=ttl)
    straight = RequestSet(paths_file=by_id.paths_file, headers={INTERNAL_TOKEN_HEADER: token})
    ctx.compare("get-by-id-service", project=service, baseline=raw, requests=straight)

    # 2. The filtered list page, unloaded: one connection, one thread.
    # Rep k holds the customers n with n % REPS == k, all in region REGIONS[k % 4].
    list_paths = [
        f"/api/v1/customers?owner_id={rep}&region={REGIONS[k % len(REGIONS)]}&limit=50"
        for k, (rep, _) in enumerate(org.reps)
    ]
    pages = RequestSet(paths_file=ctx.write_lines("customers-list.txt", list_paths), headers=admin)
    status, page = _call(gateway, "GET", list_paths[0], admin)
    if status != 200 or len(page["items"]) != 50:
        raise RuntimeError(f"list page answered {status}: {str(page)[:300]}")
    loaded = ctx.load
    ctx.load = dataclasses.replace(loaded, connections=1, threads=1)
    try:
        ctx.compare("get-by-id-unloaded", project=gateway, baseline=raw, requests=by_id)
        listing = ctx.compare("list-owner-region", project=gateway, baseline=raw, requests=pages)
    finally:
        ctx.load = loaded
    p99 = listing.project.median("p99_ms")
    verdict = "ok" if p99 < LIST_P99_GOAL_MS else "MISSED"
    print(f"  list-owner-region: p99 {p99:.2f} ms (goal < {LIST_P99_GOAL_MS:g} ms) {verdict}")

    # 3. Import in 10,000-row calls vs raw COPY of as many rows, same run.
    imported = import_seconds(gateway, admin, org, calls)
    copied = asyncio.run(raw_copy_seconds(url, org, calls))
    comparison = Comparison(
        "customers",
        "import-10k-rows",
        Side("gateway", batch_results(IMPORT_ROWS, imported)),
        Side("copy", batch_results(IMPORT_ROWS, copied)),
        goal=IMPORT_GOAL,
    )
    ctx.comparisons.append(comparison)
    print(
        f"  import-10k-rows: {IMPORT_ROWS / statistics.median(imported):,.0f} rows/s through "
        f"the gateway vs {IMPORT_ROWS / statistics.median(copied):,.0f} rows/s raw COPY: "
        f"ratio {comparison.ratio:.3f} (goal >= {IMPORT_GOAL})",
        flush=True,
    )
