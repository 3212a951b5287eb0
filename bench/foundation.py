"""GET one row by id: the kit's read path (sample app) vs raw Starlette + asyncpg.

The project side is `servicekit.testing.sample.app` as any service would run it: the kit's
middleware (request id, access log line, metrics), internal-token auth, FastAPI routing, the
request's session (one SELECT, no transaction), orjson and an ETag. The baseline is
bench/raw_app.py on the same table (writing UTC times with Z, as the API does). Every
request carries a valid internal token of the row's owner, so the service answers 200 with
the row, exactly what the baseline answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from bench.harness import Context, RequestSet
from servicekit.migrations import upgrade_head
from servicekit.testing.sample.app import MIGRATIONS, SCHEMA
from servicekit.testing.tokens import INTERNAL_TOKEN_HEADER, make_principal

GOAL = 0.50  # the service keeps at least half of the raw throughput
OWNERS = 8  # a few principals, as from a handful of reps behind the gateway


async def _load_widgets(url: str, owners: list[str], count: int) -> list[tuple[uuid.UUID, int]]:
    base = datetime.now(UTC) - timedelta(days=30)
    rows = []
    keys = []
    for i in range(count):
        widget_id = uuid.uuid4()
        owner = i % len(owners)
        rows.append((widget_id, f"widget {i}", owners[owner], 1, base + timedelta(seconds=i)))
        keys.append((widget_id, owner + 1))
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "widgets",
            schema_name=SCHEMA,
            records=rows,
            columns=["id", "name", "owner", "version", "created_at"],
        )
        await conn.execute(f"ANALYZE {SCHEMA}.widgets")
    finally:
        await conn.close()
    return keys


def run(ctx: Context) -> None:
    count = int(os.environ.get("BENCH_FOUNDATION_ROWS", "100000"))
    url = ctx.create_database("bench_foundation")
    upgrade_head(MIGRATIONS, url, SCHEMA)
    principals = [make_principal("rep") for _ in range(OWNERS)]
    keys = asyncio.run(_load_widgets(url, [p.sub for p in principals], count))
    print(f"  loaded {count} widgets for {OWNERS} owners", flush=True)

    # Tokens outlive the run (the gateway would re-mint each minute; either way the
    # service verifies each token's signature once and then hits its cache).
    ttl = int(2 * (ctx.load.warmup + ctx.load.rounds * ctx.load.duration)) + 3600
    tokens = [ctx.minter.token(p, "kitsample", ttl_seconds=ttl) for p in principals]
    requests = RequestSet(
        paths_file=ctx.write_lines(
            "foundation-paths.txt", [f"/widgets/{wid}\t{key}" for wid, key in keys]
        ),
        headers_file=ctx.write_lines(
            "foundation-headers.txt", [f"{INTERNAL_TOKEN_HEADER}: {t}" for t in tokens]
        ),
    )
    sample_path, sample_headers = requests.sample()

    service = ctx.start_server(
        "service",
        "bench.apps:kitsample",
        factory=True,
        env={"DATABASE_URL": url, "INTERNAL_TOKEN_PUBLIC_KEY": ctx.minter.public_pem},
        ready_path="/readyz",
    )
    raw = ctx.start_server(
        "raw", "bench.raw_app:app", env={"DATABASE_URL": url}, ready_path=sample_path
    )

    # Same row, same JSON from both sides, or the comparison means nothing.
    _, service_body = service.get(sample_path, sample_headers)
    _, raw_body = raw.get(sample_path)
    if json.loads(service_body) != json.loads(raw_body):
        raise RuntimeError(f"bodies differ: service {service_body!r}, raw {raw_body!r}")

    ctx.compare("get-by-id", project=service, baseline=raw, requests=requests, goal=GOAL)

    if os.environ.get("BENCH_FOUNDATION_REFERENCE", "") not in ("", "0"):
        # Where the gap comes from: the framework alone, without the kit, vs the same raw.
        plain = ctx.start_server(
            "fastapi", "bench.fastapi_app:app", env={"DATABASE_URL": url}, ready_path=sample_path
        )
        ctx.compare("get-by-id-fastapi", project=plain, baseline=raw, requests=requests)
