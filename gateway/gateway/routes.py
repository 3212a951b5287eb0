"""The route table: which public path prefix belongs to which service, kept as data in one place.

Path mapping: every service mounts its routers at the same public path the gateway serves
(the customers service itself answers `/api/v1/customers/...`), so the gateway forwards the
path and query unchanged. The one rewrite is the event feeds: `/api/v1/events/{app}` is the
app's own `GET /events` (the gateway's own feed, app `identity`, is served in-process).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.config import Settings

API_PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str  # public path prefix, e.g. /api/v1/customers
    service: str  # app name: token audience and upstream

    @property
    def path_format(self) -> str:
        """The route template the kit's metrics and access log label requests with."""
        return self.prefix + "/{path}"


ROUTE_TABLE: tuple[Route, ...] = (
    Route(f"{API_PREFIX}/customers", "customers"),
    Route(f"{API_PREFIX}/orders", "customers"),
    Route(f"{API_PREFIX}/payments", "customers"),
    Route(f"{API_PREFIX}/products", "customers"),
    Route(f"{API_PREFIX}/visits", "visits"),
    Route(f"{API_PREFIX}/visit-plans", "visits"),
    Route(f"{API_PREFIX}/daily-reports", "visits"),
    Route(f"{API_PREFIX}/market-reports", "visits"),
    Route(f"{API_PREFIX}/complaints", "visits"),
    Route(f"{API_PREFIX}/leads", "opportunities"),
    Route(f"{API_PREFIX}/opportunities", "opportunities"),
    Route(f"{API_PREFIX}/scoring-models", "opportunities"),
    Route(f"{API_PREFIX}/targets", "analytics"),
    Route(f"{API_PREFIX}/kpis", "analytics"),
    Route(f"{API_PREFIX}/reports", "analytics"),
    Route(f"{API_PREFIX}/alerts", "analytics"),
)

SERVICES: tuple[str, ...] = ("customers", "visits", "opportunities", "analytics")
# The gateway's own feed is named after the schema it comes from.
IDENTITY_FEED = "identity"


class EventFeed(StrEnum):
    """The apps whose events can be read: identity (users and teams) and each service."""

    identity = IDENTITY_FEED
    customers = "customers"
    visits = "visits"
    opportunities = "opportunities"
    analytics = "analytics"


EVENT_FEEDS: tuple[str, ...] = tuple(feed.value for feed in EventFeed)
assert (IDENTITY_FEED, *SERVICES) == EVENT_FEEDS, "one feed per service, and identity's"
EVENTS_PREFIX = f"{API_PREFIX}/events"
# The service path an event feed is served at.
SERVICE_EVENTS_PATH = "/events"


def upstreams(settings: Settings) -> dict[str, str]:
    """Base URL of each service, without a trailing slash."""
    return {name: str(getattr(settings, f"upstream_{name}")).rstrip("/") for name in SERVICES}


# Every table prefix is /api/v1/<area>: one dictionary lookup finds the route of a path.
_BY_AREA = {route.prefix.removeprefix(API_PREFIX + "/"): route for route in ROUTE_TABLE}
_API_ROOT = API_PREFIX + "/"


def route_for(path: str) -> Route | None:
    """The table entry a public path belongs to (its prefix or anything below it)."""
    if not path.startswith(_API_ROOT):
        return None
    area, _, _ = path[len(_API_ROOT) :].partition("/")
    return _BY_AREA.get(area)


def service_for(path: str) -> str | None:
    """The service a public path belongs to, or None when no route matches."""
    route = route_for(path)
    return None if route is None else route.service
