"""App factory: `uvicorn --factory gateway.main:create_app`.

Layers of a call, outermost first: CORS (answers preflights itself) -> the kit's request
context (request id, access log, metrics) -> GatewayMiddleware (body size, authentication,
rate limit, and forwarding of the route table's paths) -> routes: identity's own, the event
feeds, the docs.
"""

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from gateway.config import Settings
from gateway.identity.hooks import identity_lifespan
from gateway.identity.router import router as identity_router
from gateway.models import SCHEMA
from gateway.openapi import install_merged_openapi
from gateway.proxy import GatewayMiddleware, events_router, proxy_lifespan
from servicekit.app import AppSpec
from servicekit.app import create_app as build_app

MIGRATIONS = Path(__file__).parent / "migrations"

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


def spec() -> AppSpec:
    return AppSpec(
        name="gateway",
        schema=SCHEMA,
        title="Fieldforce API",
        description="The one public entry: identity, authentication, routing, rate limits.",
        migrations_dir=MIGRATIONS,
        # Identity first: the proxy's middleware uses the authenticator it makes.
        hooks=[identity_lifespan, proxy_lifespan],
        public_routers=[identity_router, events_router],
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = build_app(spec(), settings)
    install_merged_openapi(app, settings)
    # Appended, not inserted: it must run inside the kit's request-context middleware (request
    # id, access log) and see the same scope.
    app.user_middleware.append(Middleware(GatewayMiddleware, settings=settings))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=600,
    )
    return app
