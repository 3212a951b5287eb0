"""The gateway's /readyz reports each service it routes to: ready, degraded or down."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from servicekit.testing.plugin import Databases
from servicekit.testing.servers import serve
from servicekit.testing.tokens import TokenMinter

from .conftest import closed_port_url, gateway_settings, serve_customers, serve_echo, serve_gateway


def _degraded_service() -> Starlette:
    """A service that answers, but says one of its parts does not work."""

    async def readyz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "degraded", "consumers": {"identity": "unreachable"}})

    return Starlette(routes=[Route("/readyz", readyz)])


async def test_readyz_reports_every_service_ready_degraded_or_down(
    fresh_db: str, databases: Databases, minter: TokenMinter
) -> None:
    # A service whose database holds no schema answers /readyz with 503: it is down.
    unmigrated = await databases.acreate()
    async with (
        serve_customers(fresh_db, minter) as customers,
        serve_echo(unmigrated, minter) as (visits, _),
        serve(_degraded_service()) as opportunities,
    ):
        settings = gateway_settings(
            fresh_db,
            minter,
            upstream_customers=customers,
            upstream_visits=visits,
            upstream_opportunities=opportunities,
            upstream_analytics=closed_port_url(),
        )
        async with serve_gateway(settings) as (url, _), httpx.AsyncClient(base_url=url) as c:
            r = await c.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "degraded"
    services = body["services"]
    # The real customers app, started here without the settings to follow identity's feed.
    assert services["customers"]["status"] == "degraded"
    assert services["opportunities"] == {"status": "degraded"}
    assert services["visits"]["status"] == "down"
    assert "database not ready" in services["visits"]["detail"]
    assert services["analytics"]["status"] == "down"
    assert "unreachable" in services["analytics"]["detail"]


async def test_readyz_is_ready_when_every_service_is(fresh_db: str, minter: TokenMinter) -> None:
    async with serve_echo(fresh_db, minter) as (service, _):
        # One kit app that follows no feed stands in for every service: its /readyz checks its
        # own schema, migrated in this database.
        settings = gateway_settings(
            fresh_db,
            minter,
            upstream_customers=service,
            upstream_visits=service,
            upstream_opportunities=service,
            upstream_analytics=service,
        )
        async with serve_gateway(settings) as (url, _), httpx.AsyncClient(base_url=url) as c:
            r = await c.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    services = ("customers", "visits", "opportunities", "analytics")
    assert body["services"] == {name: {"status": "ready"} for name in services}
