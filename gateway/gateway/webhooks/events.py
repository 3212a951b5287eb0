"""Webhooks' event types and bodies.

`webhook.disabled` goes to the gateway's own feed (identity's outbox) when an endpoint is turned
off after failing for too long; `webhook.test` is sent to one endpoint on request and recorded
nowhere else. Every delivery's body is the event as CloudEvents JSON (structured mode), built
once and kept, so that every retry signs and sends the same bytes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from gateway.webhooks.models import WebhookEndpoint
from servicekit.outbox import SPEC_VERSION, Event

WEBHOOK_DISABLED = "webhook.disabled"
WEBHOOK_TEST = "webhook.test"
# The source the gateway's own events carry (its outbox's).
GATEWAY_SOURCE = "gateway"


def cloud_event(event: Event) -> bytes:
    """The body of a delivery: the feed's item without its feed cursor."""
    return orjson.dumps(
        {
            "specversion": SPEC_VERSION,
            "id": str(event.id),
            "type": event.type,
            "source": event.source,
            "subject": event.subject,
            "time": event.time.isoformat(),
            "datacontenttype": "application/json",
            "dataversion": event.dataversion,
            "data": event.data,
        }
    )


def test_event(endpoint: WebhookEndpoint, event_id: uuid.UUID, now: datetime) -> Event:
    return Event(
        id=event_id,
        type=WEBHOOK_TEST,
        source=GATEWAY_SOURCE,
        subject=str(endpoint.id),
        time=now,
        data={"webhook_id": str(endpoint.id)},
        dataversion="1",
        cursor="",
    )


def disabled_data(endpoint_id: uuid.UUID, reason: str, failing_since: datetime) -> dict[str, Any]:
    # Never the URL: one often carries the receiver's own secret (a chat hook's path).
    return {
        "webhook_id": str(endpoint_id),
        "reason": reason,
        "failing_since": failing_since.isoformat(),
    }
