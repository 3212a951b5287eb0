"""Webhooks' rules for the API: who manages which subscription, what a subscription may be,
rotation, the test event, the delivery log and replays (flush, never commit).

The test event is sent while the request's transaction holds no transaction id (nothing was
written or locked yet): a transaction open across an HTTP call would hold back every feed's
horizon (`servicekit.outbox`) for as long as the endpoint takes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from gateway.identity.audit import service as audit
from gateway.webhooks import events, repository
from gateway.webhooks.access import can_see, owner_key, require_manager
from gateway.webhooks.exceptions import ReplayNotFound, UrlRefused, WebhookNotFound
from gateway.webhooks.models import PENDING, TEST, WebhookEndpoint
from gateway.webhooks.patterns import check_patterns
from gateway.webhooks.runtime import Webhooks
from gateway.webhooks.schemas import (
    DeliveryQuery,
    DeliveryRead,
    SecretRotation,
    TestResult,
    WebhookCreate,
    WebhookUpdate,
)
from gateway.webhooks.signatures import headers, new_secret, signing_secrets
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import ValidationFailed
from servicekit.ids import new_id
from servicekit.pagination import PageParams

SUBJECT = "webhook"


async def visible_webhook(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID, *, lock: bool
) -> WebhookEndpoint:
    """The subscription (locked when about to change); 404 when the caller may not see it."""
    require_manager(principal)
    endpoint = await repository.get(session, webhook_id, lock=lock)
    if endpoint is None or not can_see(principal, endpoint):
        raise WebhookNotFound(webhook_id)
    return endpoint


async def list_webhooks(
    session: AsyncSession, principal: Principal, page: PageParams, *, active: bool | None
) -> Sequence[WebhookEndpoint]:
    require_manager(principal)
    return await repository.list_endpoints(session, principal, page, active=active)


async def _check_url(webhooks: Webhooks, url: str) -> None:
    why = await webhooks.policy.check_url(url)
    if why is not None:
        raise UrlRefused(why)


def _audit_detail(endpoint: WebhookEndpoint, **extra: Any) -> dict[str, Any]:
    # The host only: a URL's path or query often carries the receiver's own secret.
    return {"host": URL(endpoint.url).host, "events": endpoint.event_types, **extra}


async def create_webhook(
    session: AsyncSession,
    webhooks: Webhooks,
    principal: Principal,
    body: WebhookCreate,
    address: str | None,
) -> WebhookEndpoint:
    require_manager(principal)
    patterns = check_patterns(body.events)
    await _check_url(webhooks, body.url)
    now = utcnow()
    endpoint = WebhookEndpoint(
        url=body.url,
        event_types=patterns,
        description=body.description,
        active=body.active,
        secret=new_secret(),
        owner_key_id=owner_key(principal),
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
    )
    await repository.add(session, endpoint)
    audit.record(
        session,
        "webhook.created",
        principal,
        subject_type=SUBJECT,
        subject_id=endpoint.id,
        client_address=address,
        detail=_audit_detail(endpoint, active=endpoint.active),
    )
    return endpoint


async def update_webhook(
    session: AsyncSession,
    webhooks: Webhooks,
    principal: Principal,
    endpoint: WebhookEndpoint,
    body: WebhookUpdate,
    address: str | None,
) -> WebhookEndpoint:
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            raise ValidationFailed.field(field, "may not be null; leave it out to keep it")
    now = utcnow()
    if "url" in changes and changes["url"] != endpoint.url:
        await _check_url(webhooks, changes["url"])
        endpoint.url = changes["url"]
    if "events" in changes:
        endpoint.event_types = check_patterns(changes["events"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if "active" in changes and changes["active"] != endpoint.active:
        endpoint.active = changes["active"]
        if endpoint.active:
            # Turned on again (after being disabled, or paused): a clean slate, and what
            # waited in its queue goes out now, in order.
            endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
            await repository.resume(session, endpoint.id, now)
    endpoint.version += 1
    endpoint.updated_at = now
    await session.flush()
    audit.record(
        session,
        "webhook.updated",
        principal,
        subject_type=SUBJECT,
        subject_id=endpoint.id,
        client_address=address,
        detail=_audit_detail(endpoint, changed=sorted(changes), active=endpoint.active),
    )
    return endpoint


async def delete_webhook(
    session: AsyncSession, principal: Principal, endpoint: WebhookEndpoint, address: str | None
) -> None:
    """Its queue and log go with it."""
    audit.record(
        session,
        "webhook.deleted",
        principal,
        subject_type=SUBJECT,
        subject_id=endpoint.id,
        client_address=address,
        detail=_audit_detail(endpoint),
    )
    await repository.delete(session, endpoint)


async def rotate_secret(
    session: AsyncSession,
    webhooks: Webhooks,
    principal: Principal,
    endpoint: WebhookEndpoint,
    body: SecretRotation,
    address: str | None,
) -> str:
    """A new secret; the current one keeps signing for the overlap (both sign meanwhile)."""
    overlap = body.overlap_seconds
    if overlap is None:
        overlap = webhooks.settings.webhook_secret_overlap_seconds
    now = utcnow()
    if overlap > 0:
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + timedelta(seconds=overlap)
    else:
        endpoint.previous_secret = endpoint.previous_secret_expires_at = None
    secret = new_secret()
    endpoint.secret = secret
    endpoint.version += 1
    endpoint.updated_at = now
    await session.flush()
    audit.record(
        session,
        "webhook.secret_rotated",
        principal,
        subject_type=SUBJECT,
        subject_id=endpoint.id,
        client_address=address,
        detail={"overlap_seconds": overlap},
    )
    return secret


async def send_test(
    session: AsyncSession, webhooks: Webhooks, endpoint: WebhookEndpoint
) -> TestResult:
    """A `webhook.test` event sent now, outside the queue, signed like any other; what the
    endpoint answered goes to the delivery log and back to the caller."""
    now = utcnow()
    event = events.test_event(endpoint, new_id(), now)
    body = events.cloud_event(event)
    secrets = signing_secrets(
        endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now
    )
    timestamp = int(webhooks.clock.timestamp())
    result = await webhooks.send(
        endpoint.url, headers(secrets, str(event.id), timestamp, body), body
    )
    await repository.add_message(session, event, body, now)
    await repository.add_finished(session, endpoint.id, event.id, result, now, origin=TEST)
    return TestResult(
        event_id=event.id,
        success=result.success,
        at=now,
        outcome=result.outcome,
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        response=result.response,
        error=result.error,
    )


async def list_deliveries(
    session: AsyncSession, endpoint: WebhookEndpoint, page: PageParams, query: DeliveryQuery
) -> list[DeliveryRead]:
    rows = await repository.list_deliveries(
        session, endpoint.id, page, state=query.state, event_id=query.event_id
    )
    return [
        DeliveryRead.model_validate(
            {**r._mapping, "next_attempt_at": r.next_attempt_at if r.state == PENDING else None}
        )
        for r in rows
    ]


async def _replay_start(session: AsyncSession, start: str) -> tuple[datetime, uuid.UUID | None]:
    """`from`: an RFC 3339 time with its offset, or the id of an event in the delivery log."""
    try:
        event_id = uuid.UUID(start)
    except ValueError:
        pass
    else:
        at = await repository.message_time(session, event_id)
        if at is None:
            raise ValidationFailed.field(
                "from", f"event {event_id} is not in the delivery log; replay from a time instead"
            )
        return at, event_id
    try:
        at = datetime.fromisoformat(start)
    except ValueError:
        raise ValidationFailed.field(
            "from", "give a time (RFC 3339, e.g. 2025-01-31T08:00:00Z) or an event id"
        ) from None
    if at.tzinfo is None:
        raise ValidationFailed.field("from", "give the time with its offset (Z or +hh:mm)")
    return at, None


async def start_replay(
    session: AsyncSession,
    principal: Principal,
    endpoint: WebhookEndpoint,
    start: str,
    address: str | None,
) -> Any:
    """A replay job: the delivery worker scans the feeds from `start` and queues every event
    up to now that the subscription matches, again (same ids: receivers that have one
    already drop it)."""
    from_time, from_event_id = await _replay_start(session, start)
    now = utcnow()
    if from_time > now:
        raise ValidationFailed.field("from", "is in the future")
    replay = await repository.add_replay(
        session,
        {
            "id": new_id(),
            "endpoint_id": endpoint.id,
            "from_time": from_time,
            "from_event_id": from_event_id,
            "until": now,
            "state": PENDING,
            "progress": {},
            "enqueued": 0,
            "created_by": principal.sub,
            "created_at": now,
        },
    )
    audit.record(
        session,
        "webhook.replayed",
        principal,
        subject_type=SUBJECT,
        subject_id=endpoint.id,
        client_address=address,
        detail={"from": from_time.isoformat(), "replay_id": str(replay.id)},
    )
    return replay


async def get_replay(session: AsyncSession, endpoint: WebhookEndpoint, replay_id: uuid.UUID) -> Any:
    replay = await repository.get_replay(session, endpoint.id, replay_id)
    if replay is None:
        raise ReplayNotFound(replay_id)
    return replay
