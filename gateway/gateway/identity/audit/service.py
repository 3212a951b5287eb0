"""The audit trail's rules: who an entry names as its actor, and who may read the trail."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.audit import repository
from gateway.identity.audit.schemas import AuditFilter
from gateway.identity.models import AuditEvent
from servicekit.auth import Principal
from servicekit.pagination import PageParams


def actor(principal: Principal | None) -> dict[str, Any]:
    """The actor fields of an entry: the caller, or the system itself."""
    if principal is None:
        return {"actor_type": "system", "actor_id": None}
    return {"actor_type": principal.kind, "actor_id": principal.sub}


def record(
    session: AsyncSession,
    action: str,
    by: Principal | None,
    *,
    subject_type: str,
    subject_id: str | uuid.UUID | None,
    client_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """An entry in the request's transaction: it commits (or not) with the change it records."""
    repository.add(
        session,
        action,
        **actor(by),
        subject_type=subject_type,
        subject_id=subject_id,
        client_address=client_address,
        detail=detail,
    )


async def list_events(
    session: AsyncSession, page: PageParams, where: AuditFilter
) -> Sequence[AuditEvent]:
    """Newest first; the caller is an admin (the router's dependency says so)."""
    return await repository.list_events(session, page, where)
