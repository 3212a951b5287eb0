"""The audit trail's queries: rows added in the request's transaction, or committed on their own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.audit.schemas import AuditFilter
from gateway.identity.models import AUDIT, AuditEvent
from gateway.models import SCHEMA
from servicekit.pagination import PageParams, keyset


def add(
    session: AsyncSession,
    action: str,
    *,
    actor_type: str,
    actor_id: str | None,
    subject_type: str | None = None,
    subject_id: str | uuid.UUID | None = None,
    client_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEvent(
            action=action,
            actor_type=actor_type,
            actor_id=actor_id,
            subject_type=subject_type,
            subject_id=None if subject_id is None else str(subject_id),
            client_address=client_address,
            detail=detail or {},
        )
    )


_AUDIT_RAW = f"""
    INSERT INTO "{SCHEMA}".audit_events
        (id, at, action, actor_type, actor_id, subject_type, subject_id, client_address, detail)
    VALUES ($1, now(), $2, $3, $4, $5, $6, $7, $8::jsonb)
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters


async def add_now(
    pool: asyncpg.Pool,
    action: str,
    *,
    actor_type: str,
    actor_id: str | None,
    subject_type: str | None,
    subject_id: str | None,
    client_address: str | None,
    detail: str,
) -> None:
    """An audit row committed on its own: failures are answered with an error, which rolls the
    request's transaction back, and must still be recorded."""
    await pool.execute(
        _AUDIT_RAW,
        uuid.uuid4(),
        action,
        actor_type,
        actor_id,
        subject_type,
        subject_id,
        client_address,
        detail,
    )


async def list_events(
    session: AsyncSession, page: PageParams, where: AuditFilter
) -> Sequence[AuditEvent]:
    t = AUDIT
    stmt = sa.select(AuditEvent)
    if where.action is not None:
        # "login" matches login.succeeded and login.failed; a full name matches itself.
        family = t.c.action.startswith(where.action + ".", autoescape=True)
        stmt = stmt.where(sa.or_(t.c.action == where.action, family))
    if where.actor_id is not None:
        stmt = stmt.where(t.c.actor_id == where.actor_id)
    if where.subject_id is not None:
        stmt = stmt.where(t.c.subject_id == where.subject_id)
    if where.since is not None:
        stmt = stmt.where(t.c.at >= where.since)
    stmt = keyset(stmt, [t.c.at, t.c.id], page, descending=True)
    return (await session.execute(stmt)).scalars().all()
