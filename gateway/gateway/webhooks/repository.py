"""Every statement of webhooks (SQLAlchemy Core and ORM loads). The services decide (service.py,
delivery.py, fanout.py, replays.py); this asks PostgreSQL, and never holds a transaction open
across a delivery's HTTP call: the worker's statements are short units of work of their own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.models import API_KEYS
from gateway.webhooks.access import owner_key, sees_all
from gateway.webhooks.models import (
    ATTEMPTS,
    DELIVERED,
    DELIVERIES,
    ENDPOINTS,
    FAILED,
    FEED_MARKS,
    MESSAGES,
    NOTIFY_CHANNEL,
    PENDING,
    REPLAYS,
    WebhookEndpoint,
)
from gateway.webhooks.sender import AttemptResult
from servicekit.auth import Principal
from servicekit.db import PoolStatement, pool_statement
from servicekit.outbox import Event
from servicekit.pagination import PageParams, keyset

E, D, M, A, R = ENDPOINTS.c, DELIVERIES.c, MESSAGES.c, ATTEMPTS.c, REPLAYS.c


# --- subscriptions ------------------------------------------------------------------------------


def visibility_filter(principal: Principal) -> sa.ColumnElement[bool]:
    """`access.can_see` as SQL."""
    if sees_all(principal):
        return sa.true()
    key = owner_key(principal)
    return E.owner_key_id == key if key is not None else sa.false()


async def add(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    session.add(endpoint)
    await session.flush()


async def get(
    session: AsyncSession, endpoint_id: uuid.UUID, *, lock: bool = False
) -> WebhookEndpoint | None:
    return await session.get(WebhookEndpoint, endpoint_id, with_for_update=lock)


async def delete(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    await session.delete(endpoint)
    await session.flush()


async def list_endpoints(
    session: AsyncSession, principal: Principal, page: PageParams, *, active: bool | None
) -> Sequence[WebhookEndpoint]:
    stmt = sa.select(WebhookEndpoint).where(visibility_filter(principal))
    if active is not None:
        stmt = stmt.where(E.active.is_(active))
    stmt = keyset(stmt, [E.created_at, E.id], page)
    return (await session.execute(stmt)).scalars().all()


def _owner_live() -> sa.ColumnElement[bool]:
    """The subscription is an admin's, or its key has not been revoked."""
    keys = API_KEYS.c
    return sa.or_(
        E.owner_key_id.is_(None),
        sa.exists().where(keys.id == E.owner_key_id, keys.revoked_at.is_(None)),
    )


_MATCHING = sa.select(E.id, E.event_types).where(
    E.active,
    E.event_types.overlap(sa.bindparam("patterns", type_=ARRAY(sa.Text))),
    _owner_live(),
)


async def matching_endpoints(
    session: AsyncSession, patterns: list[str]
) -> list[tuple[uuid.UUID, list[str]]]:
    """Active subscriptions holding any of `patterns`, with their event types: those that may
    match one of a page's events (the caller matches each event to them)."""
    rows = await session.execute(_MATCHING, {"patterns": patterns})
    return [(row[0], list(row[1])) for row in rows]


async def resume(session: AsyncSession, endpoint_id: uuid.UUID, now: datetime) -> None:
    """An endpoint turned on again: its waiting deliveries are due at once."""
    await session.execute(
        sa.update(DELIVERIES)
        .where(D.endpoint_id == endpoint_id, D.state == PENDING, D.next_attempt_at > now)
        .values(next_attempt_at=now)
    )
    # An update fires no trigger: wake every replica's worker at commit, as a new delivery does.
    await session.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, "")))


# --- messages and the queue ---------------------------------------------------------------------


async def add_message(session: AsyncSession, event: Event, body: bytes, now: datetime) -> None:
    """The event's body, once (a replay or a second endpoint finds it there)."""
    await session.execute(
        pg_insert(MESSAGES)
        .values(
            event_id=event.id,
            type=event.type,
            source=event.source,
            time=event.time,
            body=body,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )


async def enqueue(
    session: AsyncSession,
    endpoint_ids: Sequence[uuid.UUID],
    event_id: uuid.UUID,
    now: datetime,
    *,
    origin: str,
    replay_id: uuid.UUID | None = None,
) -> None:
    """At the end of each endpoint's queue."""
    await session.execute(
        sa.insert(DELIVERIES),
        [
            {
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "origin": origin,
                "replay_id": replay_id,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint_id in endpoint_ids
        ],
    )


async def add_finished(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    event_id: uuid.UUID,
    result: AttemptResult,
    at: datetime,
    *,
    origin: str,
) -> None:
    """A delivery tried once, outside the queue (the test event), with its attempt."""
    delivery_id = (
        await session.execute(
            sa.insert(DELIVERIES)
            .values(
                endpoint_id=endpoint_id,
                event_id=event_id,
                origin=origin,
                state=DELIVERED if result.success else FAILED,
                attempts=1,
                next_attempt_at=at,
                created_at=at,
                finished_at=at,
            )
            .returning(D.id)
        )
    ).scalar_one()
    await add_attempt(session, delivery_id, at, result)


# --- the worker: leases on endpoints, the queue head, what came of an attempt -------------------

_HEAD_DUE = (
    sa.select(D.next_attempt_at)
    .where(D.endpoint_id == E.id, D.state == PENDING)
    .order_by(D.id)
    .limit(1)
    .correlate(ENDPOINTS)
    .scalar_subquery()
)
_NOW = sa.bindparam("now", type_=sa.DateTime(timezone=True))
_FREE = sa.or_(E.lease_until.is_(None), E.lease_until < _NOW)
_CLAIMABLE = (
    sa.select(E.id)
    .where(E.active, _owner_live(), _FREE, _HEAD_DUE <= _NOW)
    .order_by(_HEAD_DUE)
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .with_for_update(skip_locked=True, of=ENDPOINTS)
)
_CLAIM = (
    sa.update(ENDPOINTS)
    .where(E.id.in_(_CLAIMABLE.scalar_subquery()))
    .values(lease_until=sa.bindparam("leased_until"), lease_token=sa.func.gen_random_uuid())
    .returning(E.id, E.lease_token)
)
_NEXT_DUE = sa.select(
    sa.func.min(sa.case((E.lease_until > _NOW, E.lease_until), else_=_HEAD_DUE))
).where(E.active, _owner_live(), _HEAD_DUE.is_not(None))


async def claim(
    session: AsyncSession, now: datetime, until: datetime, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Up to `limit` endpoints whose queue head is due and that no worker holds, each leased
    until `until` with a fresh token: (endpoint id, lease token). Rows another worker is
    claiming are skipped, not waited for."""
    rows = await session.execute(_CLAIM, {"now": now, "leased_until": until, "limit": limit})
    return [(row[0], row[1]) for row in rows]


async def next_due(session: AsyncSession, now: datetime) -> datetime | None:
    """When an endpoint's queue head comes due, or a lease ends (a crashed worker's endpoint is
    then taken over)."""
    found: datetime | None = (await session.execute(_NEXT_DUE, {"now": now})).scalar()
    return found


_HEAD = (
    sa.select(
        D.id.label("delivery_id"),
        D.event_id,
        D.attempts,
        D.next_attempt_at,
        M.body,
        E.url,
        E.secret,
        E.previous_secret,
        E.previous_secret_expires_at,
    )
    .select_from(ENDPOINTS.join(DELIVERIES, D.endpoint_id == E.id).join(MESSAGES))
    .where(
        E.id == sa.bindparam("endpoint_id"),
        E.lease_token == sa.bindparam("token"),
        E.active,
        _owner_live(),
        D.state == PENDING,
    )
    .order_by(D.id)
    .limit(1)
)


async def head(session: AsyncSession, endpoint_id: uuid.UUID, token: uuid.UUID) -> Any | None:
    """The oldest pending delivery of an endpoint this lease still holds, with what sending it
    needs; None when the lease is gone, the endpoint is off or its queue is empty."""
    return (await session.execute(_HEAD, {"endpoint_id": endpoint_id, "token": token})).first()


async def renew(
    session: AsyncSession, endpoint_id: uuid.UUID, token: uuid.UUID, until: datetime
) -> Any | None:
    """Extend the lease, locking the endpoint for the rest of the unit of work; None when the
    lease was lost (taken over after it ran out): nothing may then be recorded."""
    return (
        await session.execute(
            sa.update(ENDPOINTS)
            .where(E.id == endpoint_id, E.lease_token == token)
            .values(lease_until=until)
            .returning(E.failing_since)
        )
    ).first()


async def release(session: AsyncSession, leases: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> None:
    for endpoint_id, token in leases:
        await session.execute(
            sa.update(ENDPOINTS)
            .where(E.id == endpoint_id, E.lease_token == token)
            .values(lease_until=None, lease_token=None)
        )


async def add_attempt(
    session: AsyncSession, delivery_id: int, at: datetime, result: AttemptResult
) -> None:
    await session.execute(
        sa.insert(ATTEMPTS).values(
            delivery_id=delivery_id,
            at=at,
            outcome=result.outcome,
            status_code=result.status_code,
            duration_ms=result.duration_ms,
            response=result.response,
            error=result.error,
        )
    )


async def set_delivery(
    session: AsyncSession,
    delivery_id: int,
    *,
    state: str,
    attempts: int,
    next_attempt_at: datetime,
    finished_at: datetime | None,
) -> None:
    await session.execute(
        sa.update(DELIVERIES)
        .where(D.id == delivery_id)
        .values(
            state=state,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            finished_at=finished_at,
        )
    )


async def set_health(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    failing_since: datetime | None,
    last_success_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"failing_since": failing_since}
    if last_success_at is not None:
        values["last_success_at"] = last_success_at
    await session.execute(sa.update(ENDPOINTS).where(E.id == endpoint_id).values(**values))


async def disable(session: AsyncSession, endpoint_id: uuid.UUID, at: datetime, reason: str) -> None:
    await session.execute(
        sa.update(ENDPOINTS)
        .where(E.id == endpoint_id)
        .values(
            active=False,
            disabled_at=at,
            disabled_reason=reason,
            updated_at=at,
            version=E.version + 1,
        )
    )


# --- the delivery log ---------------------------------------------------------------------------


_ATTEMPTS_JSON = (
    sa.select(
        sa.func.coalesce(
            sa.func.json_agg(
                aggregate_order_by(
                    sa.func.json_build_object(
                        "at",
                        A.at,
                        "outcome",
                        A.outcome,
                        "status_code",
                        A.status_code,
                        "duration_ms",
                        A.duration_ms,
                        "response",
                        A.response,
                        "error",
                        A.error,
                    ),
                    A.id,
                )
            ),
            sa.text("'[]'::json"),
        )
    )
    .where(A.delivery_id == D.id)
    .correlate(DELIVERIES)
    .scalar_subquery()
)


async def list_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    page: PageParams,
    *,
    state: str | None,
    event_id: uuid.UUID | None,
) -> Sequence[Any]:
    """Newest first, each with its attempts in order (one statement: one snapshot, so a
    delivery and its attempts always agree)."""
    stmt = (
        sa.select(
            D.id,
            D.event_id,
            M.type.label("event_type"),
            M.source.label("event_source"),
            M.time.label("event_time"),
            D.origin,
            D.replay_id,
            D.state,
            D.attempts.label("attempt_count"),
            D.next_attempt_at,
            D.created_at,
            D.finished_at,
            _ATTEMPTS_JSON.label("attempts"),
        )
        .select_from(DELIVERIES.join(MESSAGES))
        .where(D.endpoint_id == endpoint_id)
    )
    if state is not None:
        stmt = stmt.where(D.state == state)
    if event_id is not None:
        stmt = stmt.where(D.event_id == event_id)
    stmt = keyset(stmt, [D.id], page, descending=True)
    return (await session.execute(stmt)).all()


async def message_time(session: AsyncSession, event_id: uuid.UUID) -> datetime | None:
    found: datetime | None = (
        await session.execute(sa.select(M.time).where(M.event_id == event_id))
    ).scalar()
    return found


async def message_source(session: AsyncSession, event_id: uuid.UUID) -> str | None:
    found: str | None = (
        await session.execute(sa.select(M.source).where(M.event_id == event_id))
    ).scalar()
    return found


# --- replays and the feeds' hourly marks --------------------------------------------------------


async def add_replay(session: AsyncSession, values: dict[str, Any]) -> Any:
    return (await session.execute(sa.insert(REPLAYS).values(**values).returning(REPLAYS))).one()


async def get_replay(
    session: AsyncSession, endpoint_id: uuid.UUID, replay_id: uuid.UUID
) -> Any | None:
    stmt = sa.select(REPLAYS).where(R.id == replay_id, R.endpoint_id == endpoint_id)
    return (await session.execute(stmt)).first()


_CLAIM_REPLAY = (
    sa.update(REPLAYS)
    .where(
        R.id
        == sa.select(R.id)
        .where(R.state == PENDING, sa.or_(R.lease_until.is_(None), R.lease_until < _NOW))
        .order_by(R.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    .values(lease_until=sa.bindparam("leased_until"), lease_token=sa.func.gen_random_uuid())
    .returning(REPLAYS)
)


async def claim_replay(session: AsyncSession, now: datetime, until: datetime) -> Any | None:
    """The oldest unfinished replay no worker holds, leased until `until`."""
    return (await session.execute(_CLAIM_REPLAY, {"now": now, "leased_until": until})).first()


async def endpoint_patterns(session: AsyncSession, endpoint_id: uuid.UUID) -> list[str] | None:
    found = (await session.execute(sa.select(E.event_types).where(E.id == endpoint_id))).scalar()
    return None if found is None else list(found)


async def save_replay(
    session: AsyncSession,
    replay_id: uuid.UUID,
    token: uuid.UUID,
    *,
    until: datetime | None,
    progress: dict[str, Any] | None = None,
    enqueued: int = 0,
    error: str | None = None,
    finished_at: datetime | None = None,
) -> bool:
    """Record a replay's progress if this lease still holds it (extended to `until`, or
    released when None); whether it did."""
    values: dict[str, Any] = {
        "lease_until": until,
        "enqueued": R.enqueued + enqueued,
        "error": error,
    }
    if until is None:
        values["lease_token"] = None
    if progress is not None:
        values["progress"] = progress
    if finished_at is not None:
        values["state"] = "done"
        values["finished_at"] = finished_at
    found = await session.execute(
        sa.update(REPLAYS)
        .where(R.id == replay_id, R.lease_token == token)
        .values(**values)
        .returning(R.id)
    )
    return found.first() is not None


async def add_mark(session: AsyncSession, feed: str, hour: datetime, cursor: str) -> None:
    await session.execute(
        pg_insert(FEED_MARKS).values(feed=feed, hour=hour, cursor=cursor).on_conflict_do_nothing()
    )


async def mark_before(session: AsyncSession, feed: str, before: datetime) -> str | None:
    """The cursor of the latest hourly mark of `feed` at or before `before`."""
    marks = FEED_MARKS.c
    stmt = (
        sa.select(marks.cursor)
        .where(marks.feed == feed, marks.hour <= before)
        .order_by(marks.hour.desc())
        .limit(1)
    )
    found: str | None = (await session.execute(stmt)).scalar()
    return found


# --- upkeep -------------------------------------------------------------------------------------


def oldest_waiting_statement() -> PoolStatement:
    """Per endpoint, when its oldest waiting delivery was queued (the partial index's rows)."""
    return pool_statement(
        sa.select(D.endpoint_id, sa.func.min(D.created_at).label("oldest"))
        .where(D.state == PENDING)
        .group_by(D.endpoint_id)
    )


async def purge(session: AsyncSession, before: datetime) -> None:
    """Finished deliveries (their attempts with them), the messages no delivery needs any
    more, and finished replays, when older than `before`."""
    await session.execute(sa.delete(DELIVERIES).where(D.state != PENDING, D.finished_at < before))
    await session.execute(
        sa.delete(MESSAGES).where(
            M.created_at < before, ~sa.exists().where(D.event_id == M.event_id)
        )
    )
    await session.execute(sa.delete(REPLAYS).where(R.state == "done", R.finished_at < before))
