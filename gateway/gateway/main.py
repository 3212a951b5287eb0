"""App factory: `uvicorn --factory gateway.main:create_app`.

Layers of a call, outermost first: CORS (answers preflights itself) -> the kit's request
context (request id, access log, metrics) -> the edge (edge.py: framing, body size,
authentication, rate limit, and forwarding of the route table's paths) -> FastAPI's own stack
(error handlers) and router: identity's routes, the gateway's own event feed, the docs, health
and metrics.

Forwarded calls leave at the edge: they never pass FastAPI's middlewares or router. The app is
still the FastAPI app (state, lifespan, routes, OpenAPI); only its `middleware_stack` is the
layering above.
"""

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware

from gateway.config import Settings
from gateway.cors import Cors
from gateway.edge import EdgeState, GatewayMiddleware
from gateway.feeds import events_router
from gateway.identity.api_keys.router import router as api_keys_router
from gateway.identity.audit.router import router as audit_router
from gateway.identity.auth.router import router as auth_router
from gateway.identity.hooks import identity_lifespan
from gateway.identity.teams.router import router as teams_router
from gateway.identity.users.router import router as users_router
from gateway.models import SCHEMA
from gateway.openapi import install_merged_openapi
from gateway.ratelimit import Clock
from gateway.readiness import services_readiness
from gateway.startup import edge_lifespan
from gateway.webhooks.hooks import webhooks_lifespan, webhooks_readiness
from gateway.webhooks.router import router as webhooks_router
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app
from servicekit.clock import Clock as KitClock
from servicekit.middleware import RequestContextMiddleware

MIGRATIONS = Path(__file__).parent / "migrations"
# Identity's feature routers, in the order of the API document.
IDENTITY_ROUTERS = (auth_router, users_router, teams_router, api_keys_router, audit_router)

CORS_ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-Request-ID",
]
CORS_EXPOSE_HEADERS = [
    "ETag",
    "Location",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "X-Request-ID",
    "Idempotent-Replayed",
]


TAGS = (
    {"name": "auth", "description": "Signing in and out, the caller, one's password"},
    {"name": "users", "description": "Users and their roles (admins manage them)"},
    {"name": "teams", "description": "The team tree managers lead"},
    {"name": "api keys", "description": "Keys of integrations, with their scopes"},
    {"name": "audit", "description": "Who signed in, failed to, or changed identity"},
    {"name": "events", "description": "Every app's events, as ordered feeds"},
    {"name": "webhooks", "description": "Event delivery to integrations' endpoints, signed"},
)


def spec() -> AppSpec:
    return AppSpec(
        name="gateway",
        schema=SCHEMA,
        title="Fieldforce API",
        description="The one public entry: identity, authentication, routing, rate limits.",
        migrations_dir=MIGRATIONS,
        # Identity first: the edge uses the authenticator it makes; webhook delivery reads the
        # services' feeds with the edge's token signer.
        hooks=[identity_lifespan, edge_lifespan, webhooks_lifespan],
        public_routers=[*IDENTITY_ROUTERS, webhooks_router, events_router],
        readiness=[services_readiness, webhooks_readiness],
        tags=TAGS,
    )


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = time.time,
    app_clock: KitClock | None = None,
) -> FastAPI:
    """`clock`: the wall clock the edge's rate limits and internal tokens read. `app_clock`:
    the kit's clock (`servicekit.clock`) that requests and background work read, webhook
    delivery's retry times among them; the system's unless a test injects one."""
    settings = settings or Settings()
    app = build_app(spec(), settings, clock=app_clock)
    # Beside the kit's `app.state.clock` (a `Clock`, which the kit's loops sleep on).
    app.state.edge_clock = clock
    install_merged_openapi(app, settings)
    # The kit's request context moves out of FastAPI's stack, in front of the edge, so that
    # forwarded calls are logged and counted without entering FastAPI at all.
    kit_context: list[Any] = [m for m in app.user_middleware if _is_request_context(m)]
    if len(kit_context) != 1:
        raise RuntimeError("the kit's app should carry exactly one RequestContextMiddleware")
    app.user_middleware = [m for m in app.user_middleware if not _is_request_context(m)]
    inner = app.build_middleware_stack()
    # Filled in by edge_lifespan (forwarder, limiter, authenticator), read by the edge per call.
    app.state.edge = edge = EdgeState()
    gateway = GatewayMiddleware(inner, settings=settings, state=edge)
    logged = RequestContextMiddleware(gateway, *kit_context[0].args, **kit_context[0].kwargs)
    app.middleware_stack = Cors(
        logged,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=600,
    )
    return app


def _is_request_context(middleware: Middleware) -> bool:
    cls: Any = middleware.cls
    return cls is RequestContextMiddleware
