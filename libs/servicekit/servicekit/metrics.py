"""Prometheus metrics. Defined once per process; the `app` label tells the apps apart."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from starlette.requests import Request
from starlette.responses import Response

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status",
    ["app", "method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by method and route template",
    ["app", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_EVENTS = Gauge("outbox_events", "Events stored in the app's outbox", ["app"])
OUTBOX_BACKLOG = Gauge(
    "outbox_backlog",
    "Events written but not yet visible on the feed (their transaction is still open "
    "or an older one holds the horizon back)",
    ["app"],
)
OUTBOX_OLDEST_PENDING_AGE = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest event not yet on the feed", ["app"]
)
CONSUMER_LAG_SECONDS = Gauge(
    "consumer_lag_seconds",
    "Age of the oldest event a consumer has seen on its source but not applied (0 when caught up)",
    ["app", "consumer", "source"],
)
CONSUMER_NEWEST_APPLIED_AGE = Gauge(
    "consumer_newest_applied_age_seconds",
    "Age of the newest event a consumer has applied (0 before its first): how old the freshest "
    "fact it holds is",
    ["app", "consumer", "source"],
)
CONSUMER_BEHIND_EVENTS = Gauge(
    "consumer_behind_events",
    "How far a consumer's cursor is behind its feed's head, in events, as of the last page it "
    "read (0 when caught up)",
    ["app", "consumer", "source"],
)
CONSUMER_APPLIED = Counter(
    "consumer_events_applied_total", "Events applied by a consumer", ["app", "consumer", "source"]
)
CONSUMER_ERRORS = Counter(
    "consumer_errors_total", "Failed polls or applications", ["app", "consumer", "source"]
)


class _PoolCollector(Collector):
    """Reads pool occupancy at scrape time instead of tracking every checkout."""

    def __init__(self) -> None:
        self.sources: dict[str, Callable[[], tuple[int, int]]] = {}

    def collect(self) -> Iterable[Any]:
        fam = GaugeMetricFamily(
            "db_pool_connections", "Database connections by state", labels=["app", "pool", "state"]
        )
        for key, source in list(self.sources.items()):
            app, pool = key.split("/", 1)
            try:
                in_use, idle = source()
            except Exception:  # noqa: S112 - a closed pool simply has nothing to report
                continue
            fam.add_metric([app, pool, "in_use"], in_use)
            fam.add_metric([app, pool, "idle"], idle)
        yield fam


POOLS = _PoolCollector()
REGISTRY.register(POOLS)


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
