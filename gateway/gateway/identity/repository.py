"""Identity's queries (the request's session for writes, the raw pool for autonomous writes)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.models import (
    API_KEYS,
    AUDIT,
    SESSIONS,
    TEAMS,
    USERS,
    ApiKey,
    AuditEvent,
    Team,
    User,
)
from gateway.models import SCHEMA
from servicekit.db import utcnow
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


async def active_admins(session: AsyncSession, *, lock: bool = False) -> list[uuid.UUID]:
    stmt = sa.select(USERS.c.id).where(USERS.c.role == "admin", USERS.c.active.is_(True))
    if lock:
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars())


async def team_exists(session: AsyncSession, team_id: uuid.UUID) -> bool:
    stmt = sa.select(TEAMS.c.id).where(TEAMS.c.id == team_id)
    return (await session.execute(stmt)).first() is not None


async def get_team(session: AsyncSession, team_id: uuid.UUID, *, lock: bool) -> Team | None:
    return await session.get(Team, team_id, with_for_update=lock)


_CHAIN = sa.text(
    f"""
    WITH RECURSIVE up(id, parent_id, manager_id, depth) AS (
        SELECT id, parent_id, manager_id, 0 FROM "{SCHEMA}".teams WHERE id = :team_id
        UNION ALL
        SELECT t.id, t.parent_id, t.manager_id, up.depth + 1
        FROM "{SCHEMA}".teams t JOIN up ON t.id = up.parent_id
        WHERE up.depth < 1000
    )
    SELECT id, manager_id FROM up ORDER BY depth
    """  # noqa: S608 - the schema is our own identifier; values are bound parameters
)

_SUBTREE = sa.text(
    f"""
    WITH RECURSIVE sub(id) AS (
        SELECT id FROM "{SCHEMA}".teams WHERE id = :team_id
        UNION
        SELECT c.id FROM "{SCHEMA}".teams c JOIN sub ON c.parent_id = sub.id
    )
    SELECT id FROM sub
    """  # noqa: S608 - the schema is our own identifier; values are bound parameters
)


async def team_chain(
    session: AsyncSession, team_id: uuid.UUID | None
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(ancestor team ids nearest first, managers who see the team nearest first)."""
    if team_id is None:
        return [], []
    rows = (await session.execute(_CHAIN, {"team_id": team_id})).all()
    ancestors = [r.id for r in rows[1:]]
    managers: list[uuid.UUID] = []
    for r in rows:
        if r.manager_id is not None and r.manager_id not in managers:
            managers.append(r.manager_id)
    return ancestors, managers


async def subtree(session: AsyncSession, team_id: uuid.UUID) -> list[uuid.UUID]:
    """The team and every team below it."""
    return [r.id for r in (await session.execute(_SUBTREE, {"team_id": team_id})).all()]


async def team_has_dependants(session: AsyncSession, team_id: uuid.UUID) -> str | None:
    if (
        await session.execute(sa.select(TEAMS.c.id).where(TEAMS.c.parent_id == team_id).limit(1))
    ).first():
        return "it still has sub-teams"
    if (
        await session.execute(sa.select(USERS.c.id).where(USERS.c.team_id == team_id).limit(1))
    ).first():
        return "it still has members"
    return None


async def end_sessions(
    session: AsyncSession,
    *,
    reason: str,
    user_id: uuid.UUID | None = None,
    session_ids: Iterable[uuid.UUID] = (),
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke sessions (and with them their refresh tokens and access tokens): all of a
    user's (but `keep`), or the ones named."""
    stmt = sa.update(SESSIONS).where(SESSIONS.c.revoked_at.is_(None))
    ids = list(session_ids)
    if user_id is not None:
        stmt = stmt.where(SESSIONS.c.user_id == user_id)
        if keep is not None:
            stmt = stmt.where(SESSIONS.c.id != keep)
    elif ids:
        stmt = stmt.where(SESSIONS.c.id.in_(ids))
    else:
        return []
    stmt = stmt.values(revoked_at=utcnow(), revoked_reason=reason).returning(SESSIONS.c.user_id)
    return list((await session.execute(stmt)).scalars())


def users_query(
    page: PageParams,
    *,
    visible_team_ids: Iterable[str] | None,
    self_id: uuid.UUID | None,
    team_id: uuid.UUID | None,
    role: str | None,
    active: bool | None,
) -> sa.Select[Any]:
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
    return keyset(stmt, [t.c.created_at, t.c.id], page)


def teams_query(
    page: PageParams,
    *,
    visible_team_ids: Iterable[str] | None,
    parent_id: uuid.UUID | None,
) -> sa.Select[Any]:
    t = TEAMS
    stmt = sa.select(Team)
    if visible_team_ids is not None:
        allowed = [uuid.UUID(v) for v in visible_team_ids]
        stmt = stmt.where(t.c.id.in_(allowed) if allowed else sa.false())
    if parent_id is not None:
        stmt = stmt.where(t.c.parent_id == parent_id)
    return keyset(stmt, [t.c.created_at, t.c.id], page)


def api_keys_query(page: PageParams, *, include_revoked: bool) -> sa.Select[Any]:
    stmt = sa.select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(API_KEYS.c.revoked_at.is_(None))
    return keyset(stmt, [API_KEYS.c.created_at, API_KEYS.c.id], page)


def audit_query(
    page: PageParams,
    *,
    action: str | None,
    actor_id: str | None,
    subject_id: str | None,
    since: datetime | None,
) -> sa.Select[Any]:
    t = AUDIT
    stmt = sa.select(AuditEvent)
    if action is not None:
        # "login" matches login.succeeded and login.failed; a full name matches itself.
        family = t.c.action.startswith(action + ".", autoescape=True)
        stmt = stmt.where(sa.or_(t.c.action == action, family))
    if actor_id is not None:
        stmt = stmt.where(t.c.actor_id == actor_id)
    if subject_id is not None:
        stmt = stmt.where(t.c.subject_id == subject_id)
    if since is not None:
        stmt = stmt.where(t.c.at >= since)
    return keyset(stmt, [t.c.at, t.c.id], page, descending=True)


def add_audit(
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


async def add_audit_now(
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


# --- failed-login counters ------------------------------------------------------------------

THROTTLE_STATE = f"""
    SELECT key, failures, locked_until, window_started_at,
           (window_started_at < now() - make_interval(secs => $2)) AS window_over,
           extract(epoch FROM locked_until - now())::float8 AS locked_for
    FROM "{SCHEMA}".login_throttle WHERE key = ANY($1::text[])
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters

# Every attempt is charged before its password is checked, in one statement per key: the
# counter restarts when its window is over, and the key locks once the count reaches its limit.
# Charging first bounds the guesses even when many attempts arrive at the same moment.
THROTTLE_CHARGE = f"""
    INSERT INTO "{SCHEMA}".login_throttle AS t
        (key, failures, window_started_at, last_failure_at, locked_until)
    VALUES ($1, 1, now(), now(), CASE WHEN $2 <= 1 THEN now() + make_interval(secs => $4) END)
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                        THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                                 THEN now() ELSE t.window_started_at END,
        last_failure_at = now(),
        locked_until = CASE
            WHEN (CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                       THEN 1 ELSE t.failures + 1 END) >= $2
            THEN greatest(t.locked_until, now() + make_interval(secs => $4))
            ELSE t.locked_until END
    RETURNING failures, extract(epoch FROM locked_until - now())::float8 AS locked_for
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters

# A right password gives the charge back: the account starts afresh, the address keeps the
# failures of others (one good password must not unlock a sprayed address).
THROTTLE_RESET = f'DELETE FROM "{SCHEMA}".login_throttle WHERE key = $1'  # noqa: S608 - the schema is our own identifier; values are bound parameters
THROTTLE_REFUND = f"""
    UPDATE "{SCHEMA}".login_throttle
    SET failures = greatest(failures - 1, 0),
        locked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE locked_until END
    WHERE key = $1
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters
