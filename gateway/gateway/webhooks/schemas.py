"""Webhooks' HTTP contract. The signing secret is only ever in the answers of creation and
rotation (`WebhookCreated`, `SecretRotated`), never in a read or a list."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from gateway.identity.schemas import Input
from gateway.webhooks.addresses import MAX_URL_LENGTH
from gateway.webhooks.models import DELIVERY_STATES
from gateway.webhooks.patterns import MAX_PATTERNS
from gateway.webhooks.sender import OUTCOMES

Url = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_LENGTH)
]
Pattern = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Patterns = Annotated[
    list[Pattern],
    Field(
        min_length=1,
        max_length=MAX_PATTERNS,
        description="Event type patterns: a type (`visit.completed`), a prefix (`customer.*`) "
        "or `*` for every event",
    ),
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
MAX_OVERLAP_SECONDS = 7 * 86400


class DeliveryState(StrEnum):
    """Where a delivery stands (declared once in the API document)."""

    pending = "pending"
    delivered = "delivered"
    failed = "failed"


assert {s.value for s in DeliveryState} == set(DELIVERY_STATES)


class Outcome(StrEnum):
    """How an attempt ended."""

    success = "success"
    http_error = "http_error"
    timeout = "timeout"
    connection_error = "connection_error"
    refused = "refused"


assert {o.value for o in Outcome} == set(OUTCOMES)


class DeliveryOrigin(StrEnum):
    """Why a delivery was queued: the live feed, a replay, or the test endpoint."""

    feed = "feed"
    replay = "replay"
    test = "test"


class ReplayState(StrEnum):
    pending = "pending"
    done = "done"


class WebhookCreate(Input):
    url: Url = Field(description="Where events are POSTed: https (http only where allowed)")
    events: Patterns
    description: Description = ""
    active: bool = True


class WebhookUpdate(Input):
    url: Url | None = None
    events: Patterns | None = None
    description: Description | None = None
    active: bool | None = Field(
        default=None, description="true turns a disabled endpoint on again, its queue resumes"
    )


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    active: bool
    owner_key_id: uuid.UUID | None = Field(
        description="The API key that created it (which alone may see it besides admins)"
    )
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret before the last rotation signs too"
    )
    failing_since: datetime | None = Field(description="First failed attempt since a success")
    last_success_at: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None


class WebhookCreated(WebhookRead):
    secret: str = Field(description="The signing secret (`whsec_...`); shown this once")


class SecretRotation(Input):
    overlap_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the current secret still signs (default: the gateway's setting)",
    )


class SecretRotated(BaseModel):
    id: uuid.UUID
    secret: str = Field(description="The new signing secret; shown this once")
    previous_secret_expires_at: datetime | None


class AttemptRead(BaseModel):
    at: datetime
    outcome: Outcome
    status_code: int | None
    duration_ms: float
    response: str | None = Field(description="The first KiB of the answer")
    error: str | None


class TestResult(AttemptRead):
    event_id: uuid.UUID
    success: bool


class DeliveryRead(BaseModel):
    id: int = Field(description="Position in the endpoint's queue (sent in ascending order)")
    event_id: uuid.UUID = Field(description="Sent as Webhook-Id, the same on every attempt")
    event_type: str
    event_source: str
    event_time: datetime
    origin: DeliveryOrigin
    replay_id: uuid.UUID | None
    state: DeliveryState
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried next")
    created_at: datetime
    finished_at: datetime | None
    attempts: list[AttemptRead]


class DeliveryQuery(BaseModel):
    state: DeliveryState | None = None
    event_id: uuid.UUID | None = None


class ReplayRead(BaseModel):
    id: uuid.UUID
    webhook_id: uuid.UUID
    from_time: datetime = Field(description="Events from this time on are sent again")
    from_event_id: uuid.UUID | None
    until: datetime = Field(description="Later events were delivered live")
    state: ReplayState
    enqueued: int = Field(description="Deliveries queued so far")
    error: str | None = Field(description="Why the last scan of a feed failed (it is retried)")
    created_at: datetime
    finished_at: datetime | None
