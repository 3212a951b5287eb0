"""Signing in's queries: credentials, sessions and refresh tokens (the request's session), the
failed sign-in counters and housekeeping (the pool: they commit on their own)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.models import REFRESH_TOKENS, SESSIONS, USERS, AuthSession, RefreshToken
from gateway.models import SCHEMA
from servicekit.db import utcnow

_USER_BY_EMAIL = f"""
    SELECT id, email, password_hash, active FROM "{SCHEMA}".users WHERE lower(email) = lower($1)
"""


async def credentials(pool: asyncpg.Pool, email: str) -> asyncpg.Record | None:
    """(id, email, password_hash, active) of the account, outside any transaction."""
    row: asyncpg.Record | None = await pool.fetchrow(_USER_BY_EMAIL, email)
    return row


async def set_password_hash(session: AsyncSession, user_id: uuid.UUID, password_hash: str) -> None:
    await session.execute(
        sa.update(USERS).where(USERS.c.id == user_id).values(password_hash=password_hash)
    )


async def add_session(
    session: AsyncSession, user_id: uuid.UUID, expires_at: datetime, address: str | None
) -> uuid.UUID:
    auth_session = AuthSession(user_id=user_id, expires_at=expires_at, client_address=address)
    session.add(auth_session)
    await session.flush()
    return auth_session.id


async def add_refresh_token(
    session: AsyncSession, session_id: uuid.UUID, token_hash: bytes, expires_at: datetime
) -> None:
    session.add(RefreshToken(session_id=session_id, token_hash=token_hash, expires_at=expires_at))
    await session.flush()


async def refresh_token_for_update(session: AsyncSession, token_hash: bytes) -> Any:
    """The refresh token with its session and user (the token's row locked), or None."""
    rt, s = REFRESH_TOKENS, SESSIONS
    stmt = (
        sa.select(
            rt.c.id,
            rt.c.session_id,
            rt.c.expires_at,
            rt.c.rotated_at,
            s.c.user_id,
            s.c.revoked_at,
            s.c.expires_at.label("session_expires_at"),
            USERS.c.active,
        )
        .join(s, s.c.id == rt.c.session_id)
        .join(USERS, USERS.c.id == s.c.user_id)
        .where(rt.c.token_hash == token_hash)
        .with_for_update(of=rt)
    )
    return (await session.execute(stmt)).first()


async def mark_rotated(session: AsyncSession, token_id: uuid.UUID, at: datetime) -> None:
    await session.execute(
        sa.update(REFRESH_TOKENS).where(REFRESH_TOKENS.c.id == token_id).values(rotated_at=at)
    )


async def session_of_refresh_token(session: AsyncSession, token_hash: bytes) -> uuid.UUID | None:
    stmt = sa.select(REFRESH_TOKENS.c.session_id).where(REFRESH_TOKENS.c.token_hash == token_hash)
    found = (await session.execute(stmt)).first()
    return None if found is None else found.session_id


async def end_sessions(
    session: AsyncSession,
    *,
    reason: str,
    user_id: uuid.UUID | None = None,
    session_ids: Iterable[uuid.UUID] = (),
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke sessions (and with them their refresh tokens and access tokens): all of a
    user's (but `keep`), or the ones named. Returns the users whose sessions ended."""
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


# --- failed-login counters ------------------------------------------------------------------

THROTTLE_STATE = f"""
    SELECT key, failures, locked_until, window_started_at,
           (window_started_at < now() - make_interval(secs => $2)) AS window_over,
           extract(epoch FROM locked_until - now())::float8 AS locked_for
    FROM "{SCHEMA}".login_throttle WHERE key = ANY($1::text[])
"""

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
"""

# A right password gives the charge back: the account starts afresh, the address keeps the
# failures of others (one good password must not unlock a sprayed address).
THROTTLE_RESET = f'DELETE FROM "{SCHEMA}".login_throttle WHERE key = $1'
THROTTLE_REFUND = f"""
    UPDATE "{SCHEMA}".login_throttle
    SET failures = greatest(failures - 1, 0),
        locked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE locked_until END
    WHERE key = $1
"""


# --- housekeeping -----------------------------------------------------------------------------

_PURGE = (
    # Ended or expired sessions, a day on (their refresh tokens go with them).
    f"""DELETE FROM "{SCHEMA}".sessions
        WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'""",
    # Rotated refresh tokens are kept a week to catch a stolen copy coming back.
    f"""DELETE FROM "{SCHEMA}".refresh_tokens WHERE rotated_at < now() - interval '7 days'""",
    f"""DELETE FROM "{SCHEMA}".login_throttle
        WHERE window_started_at < now() - make_interval(secs => $1)
          AND (locked_until IS NULL OR locked_until < now())""",
)


async def purge(pool: asyncpg.Pool, failure_window_seconds: float) -> None:
    await pool.execute(_PURGE[0])
    await pool.execute(_PURGE[1])
    await pool.execute(_PURGE[2], failure_window_seconds)
