"""API keys' queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.models import API_KEYS, ApiKey
from servicekit.pagination import PageParams, keyset


async def get(session: AsyncSession, key_id: uuid.UUID, *, lock: bool = False) -> ApiKey | None:
    return await session.get(ApiKey, key_id, with_for_update=lock)


async def by_hash(session: AsyncSession, key_hash: bytes) -> ApiKey | None:
    stmt = sa.select(ApiKey).where(API_KEYS.c.key_hash == key_hash)
    return (await session.execute(stmt)).scalars().first()


async def add(session: AsyncSession, key: ApiKey) -> None:
    session.add(key)
    await session.flush()


async def list_keys(
    session: AsyncSession, page: PageParams, *, include_revoked: bool
) -> Sequence[ApiKey]:
    stmt = sa.select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(API_KEYS.c.revoked_at.is_(None))
    stmt = keyset(stmt, [API_KEYS.c.created_at, API_KEYS.c.id], page)
    return (await session.execute(stmt)).scalars().all()
