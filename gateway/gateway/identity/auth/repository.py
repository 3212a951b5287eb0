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
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters


async def credentials(pool: asyncpg.Pool, email: str) -> asyncpg.Record | None:
    """(id, email, password_hash, active) of the account, outside any transaction."""
    row: asyncpg.Record | None = await pool.fetchrow(_USER_BY_EMAIL, email)
    return row


_EMAIL_OF = f'SELECT email FROM "{SCHEMA}".users WHERE id = $1 AND active'  # noqa: S608 - the schema is our own identifier; values are bound parameters


async def email_of(pool: asyncpg.Pool, user_id: uuid.UUID) -> str | None:
    """An active user's email, outside any transaction (None when gone or deactivated)."""
    email: str | None = await pool.fetchval(_EMAIL_OF, user_id)
    return email


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


# --- failed sign-in counters ------------------------------------------------------------------
# Times come from the caller's clock ($now), not the database's, so that tests can move it.

_THROTTLE_STATE = f"""
    SELECT key,
           CASE WHEN window_started_at < $2::timestamptz - make_interval(secs => $3)
                THEN 0 ELSE failures END AS failures,
           extract(epoch FROM locked_until - $2::timestamptz)::float8 AS locked_for
    FROM "{SCHEMA}".login_throttle WHERE key = ANY($1::text[])
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters

# Every attempt is charged before its password is checked, in one statement per key: the
# count starts afresh when its window is over or its lock has run out (each lock lets the next
# few attempts through), and a key with a limit locks once its count reaches it (a NULL limit
# never locks). Charging first bounds the guesses even when many attempts arrive at once.
_AFRESH = (
    "(t.window_started_at < $5::timestamptz - make_interval(secs => $3)"
    " OR t.locked_until <= $5::timestamptz)"
)
_THROTTLE_CHARGE = f"""
    INSERT INTO "{SCHEMA}".login_throttle AS t
        (key, failures, window_started_at, last_failure_at, locked_until)
    VALUES ($1, 1, $5::timestamptz, $5::timestamptz,
            CASE WHEN $2::int <= 1 THEN $5::timestamptz + make_interval(secs => $4) END)
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN {_AFRESH} THEN 1 ELSE t.failures + 1 END,
        window_started_at = CASE WHEN {_AFRESH} THEN $5::timestamptz
                                 ELSE t.window_started_at END,
        last_failure_at = $5::timestamptz,
        locked_until = CASE
            WHEN (CASE WHEN {_AFRESH} THEN 1 ELSE t.failures + 1 END) >= $2::int
            THEN greatest(t.locked_until, $5::timestamptz + make_interval(secs => $4))
            WHEN {_AFRESH} THEN NULL
            ELSE t.locked_until END
    RETURNING failures, extract(epoch FROM locked_until - $5::timestamptz)::float8 AS locked_for
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters

_THROTTLE_FORGET = f'DELETE FROM "{SCHEMA}".login_throttle WHERE key = $1 RETURNING failures'  # noqa: S608 - the schema is our own identifier; values are bound parameters
_THROTTLE_DEDUCT = f"""
    UPDATE "{SCHEMA}".login_throttle SET failures = greatest(failures - $2, 0) WHERE key = $1
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters
_THROTTLE_REFUND = f"""
    UPDATE "{SCHEMA}".login_throttle
    SET failures = greatest(failures - 1, 0),
        locked_until = CASE WHEN failures - 1 < $2 THEN NULL ELSE locked_until END
    WHERE key = $1
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters


async def throttle_state(
    pool: asyncpg.Pool, keys: list[str], window_seconds: float, now: datetime
) -> dict[str, tuple[int, float | None]]:
    """Per key that has a row: (failures inside the window, seconds it stays locked)."""
    rows = await pool.fetch(_THROTTLE_STATE, keys, now, window_seconds)
    return {r["key"]: (r["failures"], r["locked_for"]) for r in rows}


async def charge_failures(
    pool: asyncpg.Pool,
    charges: list[tuple[str, int | None]],
    *,
    window_seconds: float,
    lockout_seconds: float,
    now: datetime,
) -> list[tuple[int, float | None]]:
    """Count one failure on each (key, limit), in one transaction: (failures, locked for)."""
    results: list[tuple[int, float | None]] = []
    async with pool.acquire() as conn, conn.transaction():
        for key, limit in charges:
            row = await conn.fetchrow(
                _THROTTLE_CHARGE, key, limit, window_seconds, lockout_seconds, now
            )
            results.append((row["failures"], row["locked_for"]))
    return results


async def refund_failures(
    pool: asyncpg.Pool,
    *,
    forget: str,
    deduct_from: str,
    refund: str | None,
    refund_limit: int,
) -> None:
    """A right password: `forget` the pair's count, take the same number off the account's
    (those failures were the pair's), and give one attempt back to `refund` (the address)."""
    async with pool.acquire() as conn, conn.transaction():
        forgotten = await conn.fetchval(_THROTTLE_FORGET, forget)
        if forgotten:
            await conn.execute(_THROTTLE_DEDUCT, deduct_from, forgotten)
        if refund is not None:
            await conn.execute(_THROTTLE_REFUND, refund, refund_limit)


# --- housekeeping -----------------------------------------------------------------------------

_PURGE = (
    # Ended or expired sessions, a day on (their refresh tokens go with them).
    f"""DELETE FROM "{SCHEMA}".sessions
        WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'""",  # noqa: S608 - the schema is our own identifier; values are bound parameters
    # Rotated refresh tokens are kept a week to catch a stolen copy coming back.
    f"""DELETE FROM "{SCHEMA}".refresh_tokens WHERE rotated_at < now() - interval '7 days'""",  # noqa: S608 - the schema is our own identifier; values are bound parameters
    # Failed sign-in counters whose window and lock are both over (on the sign-in clock).
    f"""DELETE FROM "{SCHEMA}".login_throttle
        WHERE window_started_at < $2::timestamptz - make_interval(secs => $1)
          AND (locked_until IS NULL OR locked_until < $2::timestamptz)""",  # noqa: S608 - the schema is our own identifier; values are bound parameters
)


async def purge(pool: asyncpg.Pool, failure_window_seconds: float, now: datetime) -> None:
    await pool.execute(_PURGE[0])
    await pool.execute(_PURGE[1])
    await pool.execute(_PURGE[2], failure_window_seconds, now)
