"""Every app: migrations at head match its models, it comes up ready, it guards its data."""

from __future__ import annotations

import asyncio
import importlib
import json

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from fieldforce.apps import APPS, SERVICES, AppInfo
from servicekit.db import to_asyncpg_dsn, to_sqlalchemy_url
from servicekit.migrations import alembic_config, compare_type


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
async def test_models_and_migrations_agree(app: AppInfo, fresh_db: str):
    importlib.import_module(f"{app.package}.main")  # loads every model the app uses
    metadata = importlib.import_module(f"{app.package}.models").metadata

    def diff(connection: sa.Connection) -> list[object]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": True,
                "include_name": lambda name, type_, _: type_ != "schema" or name == app.schema,
                "version_table_schema": app.schema,
                "compare_type": compare_type,
            },
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(to_sqlalchemy_url(fresh_db))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
            tables = await conn.execute(
                sa.text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": app.schema},
            )
            names = {r[0] for r in tables}
    finally:
        await engine.dispose()
    assert differences == [], f"{app.name}: models differ from migrations: {differences}"
    assert {"alembic_version", "outbox", "idempotency_keys", "consumer_cursors"} <= names


async def test_every_app_is_ready_and_reports_metrics(stack):
    async with httpx.AsyncClient(timeout=10) as client:
        for app in APPS:
            base = stack.running[app.name].url
            ready = await client.get(f"{base}/readyz")
            assert ready.status_code == 200, app.name
            assert ready.json()["schema"] == app.schema
            metrics = (await client.get(f"{base}/metrics")).text
            assert f'outbox_events{{app="{app.name}"}}' in metrics
            assert f'http_requests_total{{app="{app.name}",method="GET",route="/readyz"' in metrics


@pytest.mark.parametrize("app", SERVICES, ids=lambda a: a.name)
async def test_a_service_called_without_the_internal_token_gives_no_data(stack, app):
    base = stack.running[app.name].url
    async with httpx.AsyncClient(timeout=10) as client:
        direct = await client.get(f"{base}/events")
        forged = await client.get(f"{base}/events", headers={"X-Internal-Token": "forged"})
    for resp in (direct, forged):
        assert resp.status_code == 401
        assert resp.headers["content-type"] == "application/problem+json"
        assert "items" not in resp.text


# Each app's migration that made the outbox's payloads `json`.
PAYLOADS_AS_JSON = {
    "gateway": "identity_0080",
    "customers": "customers_0008_outbox_json",
    "visits": "visits_0004",
    "opportunities": "opportunities_0005",
    "analytics": "analytics_0010",
}


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.name)
async def test_the_outbox_payload_migration_goes_down_and_up_keeping_every_event(
    app: AppInfo, fresh_db: str
):
    config = alembic_config(app.migrations_dir, fresh_db, app.schema)
    outbox = f'"{app.schema}".outbox'
    columns = "(id, type, source, data) VALUES (gen_random_uuid(), 't', 's', $1)"
    insert = f"INSERT INTO {outbox} {columns}"
    written = ['{"b":1,"a":["x",2.50,null]}', '{"c":"3"}', '{"z":{"y":true},"d":"2026-12-03"}']

    async def run(sql: str, *args: object) -> list[str]:
        conn = await asyncpg.connect(to_asyncpg_dsn(fresh_db))
        try:
            if args:
                await conn.execute(sql, *args)
                return []
            return [r[0] for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    payloads = f"SELECT data::text FROM {outbox} ORDER BY position"  # noqa: S608
    await run(insert, written[0])
    await asyncio.to_thread(command.downgrade, config, f"{PAYLOADS_AS_JSON[app.name]}-1")
    await run(insert, written[1])
    assert [json.loads(p) for p in await run(payloads)] == [json.loads(w) for w in written[:2]]
    await asyncio.to_thread(command.upgrade, config, "head")
    await run(insert, written[2])
    kept = await run(payloads)
    assert [json.loads(p) for p in kept] == [json.loads(w) for w in written]
    assert kept[2] == written[2], "a payload written after the upgrade is kept as written"
