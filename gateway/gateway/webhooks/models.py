"""Webhooks' tables, in the gateway's `identity` schema: the subscriptions (endpoints), the
messages (each event's body, exactly as signed and sent), the deliveries (one per endpoint and
message: its queue, in order), every attempt, replays, and hourly marks in each feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field

from gateway.models import SCHEMA, Base, metadata
from servicekit.ids import new_id

# A delivery waits in its endpoint's queue, then ends delivered or failed.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DELIVERY_STATES = (PENDING, DELIVERED, FAILED)
# Where a delivery came from: the live feeds, a replay, or the test button.
FEED, REPLAY, TEST = "feed", "replay", "test"
# Every insert of a delivery or a replay wakes the workers of every replica (at commit).
NOTIFY_CHANNEL = "identity_webhooks"


def _when(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=nullable))


class WebhookEndpoint(Base, table=True):
    __tablename__ = "webhook_endpoints"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    url: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    # Type patterns: `visit.completed`, `customer.*`, `*`.
    event_types: list[str] = Field(sa_column=sa.Column(ARRAY(sa.Text), nullable=False))
    active: bool = Field(default=True, sa_column=sa.Column(sa.Boolean, nullable=False))
    # The signing secrets (`whsec_...`): HMAC needs them as they are, so they are kept, never
    # shown after creation or rotation, and never logged.
    secret: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    previous_secret_expires_at: datetime | None = _when()
    # The API key that created it (a key sees and changes only its own); None: an admin's.
    owner_key_id: uuid.UUID | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey(f"{SCHEMA}.api_keys.id"), nullable=True, index=True
        ),
    )
    created_by: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    version: int = Field(default=1, sa_column=sa.Column(sa.Integer, nullable=False))
    created_at: datetime = _when(nullable=False)
    updated_at: datetime = _when(nullable=False)
    # The first failed attempt since the last success; disabled when it is old enough.
    failing_since: datetime | None = _when()
    last_success_at: datetime | None = _when()
    disabled_at: datetime | None = _when()
    disabled_reason: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    # The worker that sends this endpoint's queue, until when (see delivery.py).
    lease_until: datetime | None = _when()
    lease_token: uuid.UUID | None = Field(default=None, sa_column=sa.Column(sa.Uuid, nullable=True))


ENDPOINTS: sa.Table = WebhookEndpoint.__table__  # type: ignore[attr-defined]

MESSAGES = sa.Table(
    "webhook_messages",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    # The CloudEvents JSON, byte for byte what is signed and sent on every attempt.
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

DELIVERIES = sa.Table(
    "webhook_deliveries",
    metadata,
    # The queue's order: an endpoint's deliveries are sent by ascending id.
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column(
        "endpoint_id",
        sa.Uuid,
        sa.ForeignKey(f"{SCHEMA}.webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "event_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.webhook_messages.event_id"), nullable=False
    ),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column(
        "replay_id",
        sa.Uuid,
        sa.ForeignKey(f"{SCHEMA}.webhook_replays.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.CheckConstraint(f"state IN {DELIVERY_STATES}", name="state"),
    sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    # An endpoint's queue head: its oldest pending delivery.
    sa.Index(
        "ix_webhook_deliveries_pending",
        "endpoint_id",
        "id",
        postgresql_where=sa.text(f"state = '{PENDING}'"),
    ),
    sa.Index("ix_webhook_deliveries_event_id", "event_id"),
)

ATTEMPTS = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
    sa.Column(
        "delivery_id",
        sa.BigInteger,
        sa.ForeignKey(f"{SCHEMA}.webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("duration_ms", sa.Float, nullable=False),
    # The first KiB of the answer, as text.
    sa.Column("response", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_webhook_attempts_delivery_id_id", "delivery_id", "id"),
)

REPLAYS = sa.Table(
    "webhook_replays",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "endpoint_id",
        sa.Uuid,
        sa.ForeignKey(f"{SCHEMA}.webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("from_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("from_event_id", sa.Uuid, nullable=True),
    # Events after this were (or will be) delivered live: a replay stops there.
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    # {"cursors": {feed: cursor}, "done": [feed, ...]}: where each feed's scan has got to.
    sa.Column("progress", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("enqueued", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lease_token", sa.Uuid, nullable=True),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
)

# The cursor of the first event the fan-out saw in each hour of each feed: a replay from a time
# starts its scan at the mark of an hour that ended well before it (replays.py), instead of at
# the feed's beginning.
FEED_MARKS = sa.Table(
    "webhook_feed_marks",
    metadata,
    sa.Column("feed", sa.Text, primary_key=True),
    sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("cursor", sa.Text, nullable=True),
)
