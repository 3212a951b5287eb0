"""Start-up of the edge: the forwarder (pools and signer), the rate limiter, the HTTP session of
the gateway's own calls to services (the merged API document), made in lifespan and handed
to the edge through its `EdgeState`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI

from gateway.clientaddr import TrustedProxies
from gateway.config import Settings
from gateway.edge import EdgeState
from gateway.forwarding import Forwarder
from gateway.ratelimit import Clock, PostgresCounterStore, RateLimiter
from gateway.redis_store import RedisCounterStore
from gateway.routes import SERVICES, upstreams
from gateway.signing import TokenSigner, WallClock, load_or_generate_key, public_pem
from servicekit.auth import TokenVerifier
from servicekit.db import Database


@asynccontextmanager
async def edge_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    clock: Clock = app.state.edge_clock
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=16, keepalive_timeout=4),
        # A shared jar would hand one user's cookies to the next.
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
    app.state.http_session = session
    key = load_or_generate_key(settings.internal_token_private_key)
    signer = TokenSigner(
        key,
        issuer=settings.internal_token_issuer,
        ttl_seconds=settings.internal_token_ttl_seconds,
        refresh_margin_seconds=settings.internal_token_refresh_margin_seconds,
        clock=clock,
    )
    forwarder = Forwarder(
        signer,
        upstreams(settings),
        pool_size=settings.upstream_pool_size,
        timeout=settings.upstream_timeout_seconds,
        connect_timeout=settings.upstream_connect_timeout_seconds,
        trusted_proxies=TrustedProxies(settings.trusted_proxies),
        unreachable=app.state.openapi.forget,
    )
    db: Database = app.state.db
    redis_store = RedisCounterStore(settings.redis_url) if settings.redis_url else None
    limiter = RateLimiter(
        redis_store or PostgresCounterStore(db.primary()),
        sync_interval=settings.rate_limit_sync_interval_seconds,
        clock=clock,
    )
    limiter.start()
    app.state.rate_limiter = limiter
    edge: EdgeState = app.state.edge
    edge.forwarder = forwarder
    edge.limiter = limiter
    # Made by identity's lifespan, which runs first.
    edge.authenticator = authenticator = app.state.authenticator
    # Delegated calls: a service presents a token this gateway minted for it.
    authenticator.delegations = TokenVerifier(
        public_pem(key),
        audience=SERVICES,
        issuer=settings.internal_token_issuer,
        clock=WallClock(clock),
    )
    try:
        yield
    finally:
        authenticator.delegations = None
        edge.forwarder = edge.limiter = edge.authenticator = None
        await limiter.stop()
        if redis_store is not None:
            await redis_store.aclose()
        await forwarder.close()
        await session.close()
