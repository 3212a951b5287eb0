"""Webhook delivery's Prometheus metrics (gateway only, so no `app` label)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

ATTEMPTS = Counter(
    "webhook_delivery_attempts_total",
    "Delivery attempts by outcome (success, http_error, timeout, connection_error, refused)",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "webhook_delivery_attempt_duration_seconds",
    "How long an attempt took, from connecting to the answer's first KiB, by outcome",
    ["outcome"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Deliveries finished, by outcome: delivered, or failed after the last retry",
    ["outcome"],
)
DISABLED = Counter(
    "webhook_endpoints_disabled_total", "Endpoints disabled after failing for too long"
)


class OldestWaiting(Collector):
    """`webhook_oldest_undelivered_age_seconds{endpoint}`: how long the oldest delivery still
    waiting in each endpoint's queue has waited; endpoints with an empty queue are absent.
    Refreshed by the webhooks lifespan's stats loop, read at scrape time."""

    def __init__(self) -> None:
        self.ages: dict[str, float] = {}

    def collect(self) -> Iterable[Any]:
        family = GaugeMetricFamily(
            "webhook_oldest_undelivered_age_seconds",
            "Age of the oldest delivery waiting in an endpoint's queue (since it was queued)",
            labels=["endpoint"],
        )
        for endpoint, age in sorted(self.ages.items()):
            family.add_metric([endpoint], age)
        yield family


OLDEST_WAITING = OldestWaiting()
REGISTRY.register(OLDEST_WAITING)
