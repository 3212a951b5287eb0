"""The app factory every Fieldforce app is built with."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query
from starlette.requests import Request
from starlette.responses import Response

from servicekit.auth import Principal, TokenVerifier, current_principal
from servicekit.calls import STATE_KEY as CALLS_STATE_KEY
from servicekit.calls import GatewayClient
from servicekit.clock import SYSTEM_CLOCK, Clock, reset_clock, use_clock
from servicekit.db import Database, pool_statement
from servicekit.directory import Directory, Reaction, follow_identity
from servicekit.errors import (
    DATABASE_RETRY_AFTER_SECONDS,
    ServiceUnavailable,
    install_error_handlers,
)
from servicekit.logs import configure_logging
from servicekit.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_EVENTS,
    OUTBOX_OLDEST_PENDING_AGE,
    metrics_endpoint,
)
from servicekit.middleware import RequestContextMiddleware
from servicekit.migrations import head_revisions
from servicekit.openapi import install_contract
from servicekit.outbox import (
    EVENTS_SCOPE,
    FEED_MAX_LIMIT,
    EventPage,
    feed_statement,
    head_statement,
    parse_feed_cursor,
    render_feed,
    require_feed_reader,
    stats_statement,
)
from servicekit.pagination import MAX_LIMIT
from servicekit.routing import KitRoute, kit_router
from servicekit.settings import KitSettings
from servicekit.tables import kit_tables

log = logging.getLogger("servicekit.app")

Hook = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass
class Readiness:
    """What a readiness check adds to `/readyz`: entries of the answer's body, and whether a
    part the app depends on is not working (the app still serves: `degraded`, still 200)."""

    details: dict[str, Any]
    degraded: bool = False


ReadinessCheck = Callable[[FastAPI], Awaitable[Readiness]]


async def _feeds_readiness(app: FastAPI) -> Readiness:
    """Every feed the app follows, and whether it can be read right now."""
    feeds = {
        source: dict(zip(("state", "detail"), follower.health(), strict=True))
        for source, follower in app.state.feeds.items()
    }
    ready = all(feed["state"] == "following" for feed in feeds.values())
    return Readiness({"feeds": feeds}, degraded=not ready)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
_QUIET = frozenset({"/healthz", "/readyz", "/metrics"})


@dataclass
class AppSpec:
    """What makes one app different from the others."""

    name: str
    schema: str
    title: str
    migrations_dir: Path
    routers: Sequence[Any] = ()
    hooks: Sequence[Hook] = ()
    version: str = "0.1.0"
    description: str = ""
    events_feed: bool = True
    # Routers that authenticate in their own way (the gateway's login) instead of by the
    # gateway's internal token.
    public_routers: Sequence[Any] = field(default_factory=tuple)
    # Objects the app's features share, wired explicitly in its main.py (set on `app.state`
    # under these names; read them through a dependency, never as module globals).
    state: Mapping[str, Any] = field(default_factory=dict)
    # The organisation directory (`servicekit.directory`): when set, the app follows the
    # gateway's identity feed into these tables of its schema, and runs `identity_reactions`
    # (the app's own consequences of a change) in the same transaction.
    directory: Directory | None = None
    identity_reactions: Sequence[Reaction] = ()
    # Checks `/readyz` runs once the database and migrations are found ready.
    readiness: Sequence[ReadinessCheck] = ()
    # The API document's tags, in order: {"name": ..., "description": ...}. Each operation
    # carries one, naming its area.
    tags: Sequence[dict[str, str]] = ()


async def _outbox_stats_loop(app: FastAPI, interval: float) -> None:
    db: Database = app.state.db
    clock: Clock = app.state.clock
    stats = stats_statement(db.schema)
    while True:
        try:
            row = await db.reads().fetchrow(stats.sql, *stats.args())
            if row is not None:
                OUTBOX_EVENTS.labels(db.app_name).set(row["total"])
                OUTBOX_BACKLOG.labels(db.app_name).set(row["pending"])
                oldest = row["oldest_pending"]
                age = 0.0 if oldest is None else max(0.0, (clock.now() - oldest).total_seconds())
                OUTBOX_OLDEST_PENDING_AGE.labels(db.app_name).set(age)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("outbox stats unavailable: %s", exc)
        await clock.sleep(interval)


async def _purge_idempotency_keys_loop(app: FastAPI, ttl_hours: int) -> None:
    """Lookups already ignore expired keys; this keeps the table from growing forever."""
    db: Database = app.state.db
    clock: Clock = app.state.clock
    keys = kit_tables(db.schema).idempotency_keys
    purge = pool_statement(sa.delete(keys).where(keys.c.created_at < sa.bindparam("cutoff")))
    ttl = timedelta(hours=ttl_hours)
    while True:
        try:
            await db.primary().execute(purge.sql, *purge.args(cutoff=clock.now() - ttl))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("idempotency purge skipped: %s", exc)
        await clock.sleep(600)


_startup_frozen = False


def _freeze_startup_objects() -> None:
    """Move what start-up built (modules, routes, models, pools) out of the cyclic GC's sight.

    Measured on the read path (in process, bench/foundation.py's request): the cyclic
    collector took ~10 % of the CPU, and freezing the start-up heap won back about half of
    it; frozen objects are never traversed again (nor freed: they live as long as the process
    anyway). Once per process: an app is the process in
    production, and test sessions that start many apps should not pin each one's garbage.
    """
    global _startup_frozen
    if not _startup_frozen:
        _startup_frozen = True
        gc.freeze()


def create_app(spec: AppSpec, settings: KitSettings, *, clock: Clock | None = None) -> FastAPI:
    """The app described by `spec`. `clock`: the time its requests and background work read
    (`servicekit.clock`); the system's unless a test injects one."""
    configure_logging(spec.name, settings.log_level)
    heads = head_revisions(spec.migrations_dir)
    clock = clock or SYSTEM_CLOCK

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Everything the lifespan starts (loops, consumers) inherits the app's clock.
        clock_token = use_clock(clock)
        db = Database(
            settings.database_url,
            app_name=spec.name,
            schema=spec.schema,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            read_pool_size=settings.read_pool_size,
            primary_pool_size=settings.primary_pool_size,
            statement_timeout_ms=settings.statement_timeout_ms,
        )
        await db.connect()
        app.state.db = db
        gateway = (
            GatewayClient(settings.gateway_url, timeout=settings.gateway_call_timeout_seconds)
            if settings.gateway_url
            else None
        )
        setattr(app.state, CALLS_STATE_KEY, gateway)
        background = [
            asyncio.create_task(_outbox_stats_loop(app, settings.outbox_metrics_interval_seconds)),
            asyncio.create_task(_purge_idempotency_keys_loop(app, settings.idempotency_ttl_hours)),
        ]
        try:
            async with contextlib.AsyncExitStack() as stack:
                if spec.directory is not None:
                    await stack.enter_async_context(
                        follow_identity(app, spec.directory, spec.identity_reactions)
                    )
                for hook in spec.hooks:
                    await stack.enter_async_context(hook(app))
                _freeze_startup_objects()
                yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if gateway is not None:
                await gateway.close()
            await db.close()
            reset_clock(clock_token)

    app = FastAPI(
        title=spec.title,
        version=spec.version,
        description=spec.description,
        openapi_tags=list(spec.tags) or None,
        lifespan=lifespan,
        # The kit observes through its own metrics and logs. FastAPI's OpenTelemetry bridge
        # would only ever find no provider, but asks the OpenTelemetry API on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.spec = spec
    for name, value in spec.state.items():
        setattr(app.state, name, value)
    app.state.clock = clock
    # Feeds the app follows (source -> its consumer, or why it is not followed), for /readyz.
    app.state.feeds = {}
    app.state.directory = spec.directory
    app.state.verifier = TokenVerifier(
        settings.internal_token_public_key,
        audience=spec.name,
        issuer=settings.internal_token_issuer,
        clock=clock,
    )
    install_error_handlers(app)
    install_contract(app)
    app.add_middleware(
        RequestContextMiddleware,
        app_name=spec.name,
        quiet_paths=_QUIET,
        clock=None if clock is SYSTEM_CLOCK else clock,
    )

    for router in spec.routers:
        _include_authenticated(app, router)
    for router in spec.public_routers:
        app.include_router(router)

    ops = kit_router(tags=["operations"])
    versions = sa.table("alembic_version", sa.column("version_num"), schema=spec.schema)
    migrated = pool_statement(sa.select(versions.c.version_num))

    @ops.get("/healthz", summary="Liveness", operation_id="ops_healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @ops.get(
        "/readyz",
        operation_id="ops_readyz",
        summary="Readiness: database reachable and migrations at head",
        description="503 when the database is unreachable or not migrated. 200 otherwise; "
        "`status` is `degraded` (still 200: the app serves) while a feed the app follows "
        "cannot be read, `ready` when everything is.",
    )
    async def readyz(request: Request) -> dict[str, Any]:
        db: Database = request.app.state.db
        try:
            rows = await db.reads().fetch(migrated.sql, *migrated.args())
        except Exception as exc:
            raise ServiceUnavailable(
                f"database not ready: {type(exc).__name__}",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            ) from None
        current = {r["version_num"] for r in rows}
        if current != heads:
            raise ServiceUnavailable(
                f"migrations not at head (database {sorted(current)}, code {sorted(heads)})"
            )
        body: dict[str, Any] = {
            "status": "ready",
            "schema": spec.schema,
            "revision": sorted(current),
        }
        for check in (_feeds_readiness, *spec.readiness):
            found = await check(request.app)
            body.update(found.details)
            if found.degraded:
                body["status"] = "degraded"
        return body

    app.include_router(ops)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    if spec.events_feed:
        feed = kit_router(tags=["events"])
        page = feed_statement(spec.schema)
        head = head_statement(spec.schema)

        @feed.get(
            "/events",
            response_model=EventPage,
            operation_id="ops_events",
            summary="This app's events, in feed order (CloudEvents); "
            f"scope 'events:{spec.name}' or '{EVENTS_SCOPE}'",
        )
        async def events(
            request: Request,
            principal: CurrentPrincipal,
            after: Annotated[
                str | None, Query(description="`next_cursor` of the last page")
            ] = None,
            limit: Annotated[int, Query(ge=1, le=FEED_MAX_LIMIT)] = MAX_LIMIT,
        ) -> Response:
            require_feed_reader(principal, spec.name)
            txid, position = parse_feed_cursor(after)
            db: Database = request.app.state.db
            rows = await db.reads().fetch(
                page.sql, *page.args(txid=txid, position=position, limit=limit)
            )
            # Read after the page, so the head is never behind what the page holds.
            newest = await db.reads().fetchrow(head.sql, *head.args())
            return Response(render_feed(rows, after, limit, newest), media_type="application/json")

        app.include_router(feed)

    return app


def _include_authenticated(app: FastAPI, router: APIRouter) -> None:
    """Every route of a service router answers only to a verified internal token."""
    if all(isinstance(r, KitRoute) for r in router.routes):
        for route in router.routes:
            assert isinstance(route, KitRoute)
            route.requires_principal = True
        # Flat, not `include_router`: FastAPI nests an included router as one more layer that
        # is matched on every request, and nothing is merged at inclusion any more (the route
        # paths already carry the router's prefix).
        app.router.routes.extend(router.routes)
    else:
        app.include_router(router, dependencies=[Depends(current_principal)])


def json_response(
    payload: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """`payload` as JSON, written the way the API's models dump (UUIDs as strings, UTC times
    with "Z", Decimals as their exact string), so a row whose columns are a read schema's
    fields can be answered as it is."""
    return Response(
        orjson.dumps(payload, default=str, option=orjson.OPT_UTC_Z),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
