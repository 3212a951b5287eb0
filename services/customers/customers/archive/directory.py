"""The users read model (`customers.directory_users`), filled from the gateway's identity feed.

The archive needs a user's team (a new owner's team, "manager of both reps"), whether they
are active, and who manages them (the deactivation handover); it keeps just that, applied by
`apply_identity_event` from `user.created` / `user.updated` / `user.team_changed` /
`user.deactivated` / `user.reactivated` events.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.models import USERS
from servicekit.consumer import EventConsumer
from servicekit.db import Database, utcnow
from servicekit.outbox import Event
from servicekit.tables import notify_channel

log = logging.getLogger("customers.directory")

CONSUMER_NAME = "customers.identity"
IDENTITY_SCHEMA = "identity"


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    id: uuid.UUID
    team_id: uuid.UUID | None
    role: str | None
    active: bool
    manager_id: uuid.UUID | None


def _entry(row: Any) -> DirectoryEntry:
    return DirectoryEntry(row.id, row.team_id, row.role, row.active, row.manager_id)


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> DirectoryEntry | None:
    row = (await session.execute(sa.select(USERS).where(USERS.c.id == user_id))).first()
    return None if row is None else _entry(row)


async def get_users(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, DirectoryEntry]:
    ids = list(set(user_ids))
    if not ids:
        return {}
    rows = await session.execute(sa.select(USERS).where(USERS.c.id.in_(ids)))
    return {r.id: _entry(r) for r in rows}


async def manager_of(session: AsyncSession, user: DirectoryEntry) -> DirectoryEntry | None:
    """The user's own manager when identity names one, else an active manager of their team."""
    if user.manager_id is not None:
        boss = await get_user(session, user.manager_id)
        if boss is not None and boss.active:
            return boss
    if user.team_id is None:
        return None
    row = (
        await session.execute(
            sa.select(USERS)
            .where(
                USERS.c.team_id == user.team_id,
                USERS.c.role == "manager",
                USERS.c.active.is_(True),
                USERS.c.id != user.id,
            )
            .order_by(USERS.c.id)
            .limit(1)
        )
    ).first()
    return None if row is None else _entry(row)


def _uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def upsert_user(session: AsyncSession, user_id: uuid.UUID, **fields: Any) -> None:
    values = {"id": user_id, "updated_at": utcnow(), **fields}
    stmt = pg_insert(USERS).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[USERS.c.id], set_={k: stmt.excluded[k] for k in values if k != "id"}
    )
    await session.execute(stmt)


def _first_manager(user_id: uuid.UUID | None, manager_ids: Any) -> uuid.UUID | None:
    """Identity lists the managers who see the user's team, nearest first."""
    for value in manager_ids or ():
        candidate = _uuid(value)
        if candidate is not None and candidate != user_id:
            return candidate
    return None


def _user_fields(data: dict[str, Any], user_id: uuid.UUID | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in ("team_id", "manager_id"):
        if key in data:
            fields[key] = _uuid(data[key])
    if "manager_ids" in data:
        fields["manager_id"] = _first_manager(user_id, data["manager_ids"])
    if "role" in data:
        fields["role"] = data["role"]
    if "name" in data:
        fields["name"] = data["name"]
    if "active" in data:
        fields["active"] = bool(data["active"])
    return fields


async def apply_identity_event(session: AsyncSession, event: Event) -> None:
    """The consumer's handler: keep the read model, hand over a deactivated user's customers."""
    data = event.data or {}
    if event.type == "team.changed":
        await _apply_team_change(session, data)
        return
    user_id = _uuid(data.get("user_id") or data.get("id") or event.subject)
    if user_id is None or not event.type.startswith("user."):
        return
    fields = _user_fields(data, user_id)
    if event.type in ("user.created", "user.updated", "user.role_changed"):
        await upsert_user(session, user_id, **fields)
    elif event.type == "user.team_changed":
        await upsert_user(session, user_id, **fields)
        from customers.archive.ownership import follow_owner_to_new_team

        await follow_owner_to_new_team(session, user_id, fields.get("team_id"))
    elif event.type == "user.reactivated":
        await upsert_user(session, user_id, **{**fields, "active": True})
    elif event.type == "user.deactivated":
        await upsert_user(session, user_id, **{**fields, "active": False})
        # Imported here: ownership imports this module for the directory lookups.
        from customers.archive.ownership import hand_over_deactivated

        await hand_over_deactivated(session, user_id)


async def _apply_team_change(session: AsyncSession, data: dict[str, Any]) -> None:
    """A team's managers changed: its members' nearest manager follows."""
    team_id = _uuid(data.get("id"))
    if team_id is None or "manager_ids" not in data:
        return
    managers = [m for m in (_uuid(v) for v in data.get("manager_ids") or ()) if m is not None]
    nearest = (
        sa.case(
            *[(USERS.c.id != m, sa.literal(m, USERS.c.manager_id.type)) for m in managers],
            else_=sa.null(),
        )
        if managers
        else sa.null()
    )
    await session.execute(
        sa.update(USERS).where(USERS.c.team_id == team_id).values(manager_id=nearest)
    )


def identity_consumer(db: Database, gateway_url: str, api_key: str) -> EventConsumer:
    return EventConsumer(
        db,
        name=CONSUMER_NAME,
        source="identity",
        feed_url=f"{gateway_url.rstrip('/')}/api/v1/events/identity",
        handler=apply_identity_event,
        headers={"X-API-Key": api_key},
        notify_channel=notify_channel(IDENTITY_SCHEMA),
    )


@contextlib.asynccontextmanager
async def identity_feed_hook(app: FastAPI) -> AsyncIterator[None]:
    """Follow the identity feed when the gateway's address and an events key are configured."""
    settings = app.state.settings
    gateway_url = getattr(settings, "gateway_url", None)
    api_key = getattr(settings, "events_api_key", None)
    if not gateway_url or not api_key:
        log.info("identity feed not configured (GATEWAY_URL / EVENTS_API_KEY); not following it")
        app.state.identity_consumer = None
        yield
        return
    consumer = identity_consumer(app.state.db, gateway_url, api_key)
    app.state.identity_consumer = consumer
    consumer.start()
    try:
        yield
    finally:
        await consumer.stop()
