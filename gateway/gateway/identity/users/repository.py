"""Users' queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.models import USERS, User
from servicekit.pagination import PageParams, keyset


async def get_user(session: AsyncSession, user_id: uuid.UUID, *, lock: bool) -> User | None:
    return await session.get(User, user_id, with_for_update=lock)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    stmt = sa.select(User).where(sa.func.lower(USERS.c.email) == email.lower())
    return (await session.execute(stmt)).scalars().first()


async def email_taken(
    session: AsyncSession, email: str, except_id: uuid.UUID | None = None
) -> bool:
    stmt = sa.select(USERS.c.id).where(sa.func.lower(USERS.c.email) == email.lower())
    if except_id is not None:
        stmt = stmt.where(USERS.c.id != except_id)
    return (await session.execute(stmt.limit(1))).first() is not None


async def role_and_active(session: AsyncSession, user_id: uuid.UUID) -> tuple[str, bool] | None:
    stmt = sa.select(USERS.c.role, USERS.c.active).where(USERS.c.id == user_id)
    row = (await session.execute(stmt)).first()
    return None if row is None else (row.role, row.active)


async def active_admins(session: AsyncSession, *, lock: bool = False) -> list[uuid.UUID]:
    stmt = sa.select(USERS.c.id).where(USERS.c.role == "admin", USERS.c.active.is_(True))
    if lock:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars())


async def save(session: AsyncSession, user: User) -> bool:
    """Write a new or changed user; False when its email is taken (the unique index said so)."""
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        return False
    return True


async def list_users(
    session: AsyncSession,
    page: PageParams,
    *,
    visible_team_ids: Iterable[str] | None,
    self_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    role: str | None,
    active: bool | None,
) -> Sequence[User]:
    t = USERS
    stmt = sa.select(User)
    if visible_team_ids is not None:
        allowed = [uuid.UUID(v) for v in visible_team_ids]
        cond: sa.ColumnElement[bool] = t.c.team_id.in_(allowed) if allowed else sa.false()
        if self_id is not None:
            cond = sa.or_(cond, t.c.id == self_id)
        stmt = stmt.where(cond)
    if team_id is not None:
        stmt = stmt.where(t.c.team_id == team_id)
    if role is not None:
        stmt = stmt.where(t.c.role == role)
    if active is not None:
        stmt = stmt.where(t.c.active.is_(active))
    stmt = keyset(stmt, [t.c.created_at, t.c.id], page)
    return (await session.execute(stmt)).scalars().all()
