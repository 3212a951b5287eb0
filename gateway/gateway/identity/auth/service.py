"""Signing in's rules: the password and refresh grants, sessions, signing out, one's own
password, and forgetting what no longer matters (flush, never commit)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.audit import repository as audit_log
from gateway.identity.audit import service as audit
from gateway.identity.auth import repository
from gateway.identity.auth.exceptions import (
    AccountDeactivated,
    InvalidCredentials,
    InvalidRefreshToken,
    LoginThrottled,
)
from gateway.identity.auth.schemas import MeRead, TokenResponse
from gateway.identity.auth.throttle import Attempt, SignInGuard
from gateway.identity.authn import Authenticator, announce
from gateway.identity.emails import email_key
from gateway.identity.tokens import digest, new_refresh_token
from gateway.identity.users import repository as users
from servicekit.auth import Principal
from servicekit.db import Database, utcnow
from servicekit.errors import Unauthorized, ValidationFailed

SIGN_INS = Counter("identity_sign_ins_total", "Sign-in attempts by outcome", ["outcome"])


async def _issue_session(
    session: AsyncSession,
    authn: Authenticator,
    user_id: uuid.UUID,
    address: str | None,
    existing: tuple[uuid.UUID, datetime] | None = None,
) -> TokenResponse:
    """Tokens for a new session, or the next refresh token of an existing one. A session lives
    `refresh_token_ttl_seconds` from its sign-in, however often it is refreshed."""
    if existing is None:
        expires_at = authn.clock.now() + timedelta(seconds=authn.settings.refresh_token_ttl_seconds)
        session_id = await repository.add_session(session, user_id, expires_at, address)
    else:
        session_id, expires_at = existing
    refresh = new_refresh_token()
    await repository.add_refresh_token(session, session_id, digest(refresh), expires_at)
    return TokenResponse(
        access_token=authn.tokens.mint(str(user_id), str(session_id)),
        expires_in=authn.tokens.ttl_seconds,
        refresh_token=refresh,
    )


def _account(email: str, field: str) -> str:
    """The account an attempt names, as its counters and the lookup know it; 422 naming
    `field` for an address no account can have (invisible characters, mixed scripts)."""
    try:
        return email_key(email)
    except ValueError as exc:
        raise ValidationFailed.field(field, str(exc)) from None


async def _admit(
    guard: SignInGuard,
    attempt: Attempt,
    action: str,
    *,
    actor: Principal | None,
    subject_id: str | None,
    address: str | None,
    detail: dict[str, Any],
) -> None:
    """The guard's checks for one attempt; a refusal is audited (`<action>.throttled`)."""
    try:
        await guard.admit(attempt)
    except LoginThrottled:
        await audit_log.add_now(
            guard.pool,
            f"{action}.throttled",
            **_actor_fields(actor),
            subject_type="user",
            subject_id=subject_id,
            client_address=address,
            detail=orjson.dumps(detail).decode(),
        )
        raise


def _actor_fields(actor: Principal | None) -> dict[str, Any]:
    if actor is None:
        return {"actor_type": "anonymous", "actor_id": None}
    return audit.actor(actor)


async def login(
    db: Database, authn: Authenticator, email: str, password: str, address: str | None
) -> TokenResponse:
    account = _account(email, "username")
    pool = db.primary()
    guard = SignInGuard(pool, authn.settings, authn.clock)
    attempt = guard.attempt(account, address)
    seen = {"email": account}
    try:
        await _admit(
            guard, attempt, "login", actor=None, subject_id=None, address=address, detail=seen
        )
    except LoginThrottled:
        SIGN_INS.labels("throttled").inc()
        raise
    row = await repository.credentials(pool, account)
    ok = await authn.passwords.verify(row["password_hash"] if row else None, password)
    if not ok or row is None:
        await audit_log.add_now(
            pool,
            "login.failed",
            actor_type="anonymous",
            actor_id=None,
            subject_type="user",
            subject_id=str(row["id"]) if row else None,
            client_address=address,
            detail=orjson.dumps(seen).decode(),
        )
        SIGN_INS.labels("failed").inc()
        raise InvalidCredentials()
    await guard.succeeded(attempt)
    if not row["active"]:
        await audit_log.add_now(
            pool,
            "login.refused",
            actor_type="anonymous",
            actor_id=None,
            subject_type="user",
            subject_id=str(row["id"]),
            client_address=address,
            detail=orjson.dumps({**seen, "reason": "deactivated"}).decode(),
        )
        SIGN_INS.labels("deactivated").inc()
        raise AccountDeactivated()
    user_id: uuid.UUID = row["id"]
    new_hash = None
    if authn.passwords.needs_rehash(row["password_hash"]):
        new_hash = await authn.passwords.hash(password)
    async with db.session() as session:
        if new_hash is not None:
            await repository.set_password_hash(session, user_id, new_hash)
        tokens = await _issue_session(session, authn, user_id, address)
        audit_log.add(
            session,
            "login.succeeded",
            actor_type="user",
            actor_id=str(user_id),
            subject_type="user",
            subject_id=user_id,
            client_address=address,
        )
    SIGN_INS.labels("succeeded").inc()
    return tokens


_REFRESH_REFUSALS = {
    "unknown": "the refresh token is not valid",
    "reused": "the refresh token was already used; the session has been ended",
    "revoked": "the session has ended; sign in again",
    "expired": "the refresh token has expired; sign in again",
    "inactive": "this account is deactivated",
}


async def refresh(
    db: Database, authn: Authenticator, token: str, address: str | None
) -> TokenResponse:
    """Rotate a refresh token. A token already rotated is a stolen copy (or the thief is the
    one who rotated it): the whole family ends, so neither side can go on."""
    outcome = "ok"
    tokens: TokenResponse | None = None
    async with db.session() as session:
        row = await repository.refresh_token_for_update(session, digest(token))
        now = authn.clock.now()
        if row is None:
            outcome = "unknown"
        elif row.rotated_at is not None:
            outcome = "reused"
            if row.revoked_at is None:
                await repository.end_sessions(
                    session, reason="refresh_token_reused", session_ids=[row.session_id]
                )
                await announce(session, authn, f"user:{row.user_id}")
            audit_log.add(
                session,
                "session.refresh_reused",
                actor_type="anonymous",
                actor_id=None,
                subject_type="session",
                subject_id=row.session_id,
                client_address=address,
                detail={"user_id": str(row.user_id)},
            )
        elif row.revoked_at is not None:
            outcome = "revoked"
        elif row.expires_at <= now:
            outcome = "expired"
        elif not row.active:
            outcome = "inactive"
        else:
            await repository.mark_rotated(session, row.id, now)
            tokens = await _issue_session(
                session, authn, row.user_id, address, (row.session_id, row.session_expires_at)
            )
    if tokens is None:
        raise InvalidRefreshToken(_REFRESH_REFUSALS[outcome])
    return tokens


async def logout(
    db: Database,
    authn: Authenticator,
    *,
    access_token: str | None,
    refresh_token: str | None,
    address: str | None,
) -> None:
    session_ids: list[uuid.UUID] = []
    if access_token:
        claims = authn.access_claims(access_token)
        session_ids.append(uuid.UUID(claims.session_id))
    async with db.session() as session:
        if refresh_token:
            found = await repository.session_of_refresh_token(session, digest(refresh_token))
            if found is not None:
                session_ids.append(found)
        if not session_ids:
            if refresh_token:
                return  # an unknown refresh token: nothing to end, and nothing to tell
            raise Unauthorized("send the access token or the refresh token of the session to end")
        ended = await repository.end_sessions(session, reason="logout", session_ids=session_ids)
        for user_id in set(ended):
            await announce(session, authn, f"user:{user_id}")
            audit_log.add(
                session,
                "logout",
                actor_type="user",
                actor_id=str(user_id),
                subject_type="user",
                subject_id=user_id,
                client_address=address,
            )


async def me(session: AsyncSession, principal: Principal) -> MeRead:
    """The caller as the gateway knows them: a key's scopes, or a user's record and teams."""
    if principal.kind == "key":
        return MeRead(
            kind="key",
            id=uuid.UUID(principal.sub),
            name=principal.name,
            role=principal.role,
            visible_team_ids=[],
            scopes=sorted(principal.scopes),
        )
    user = await users.get_user(session, uuid.UUID(principal.sub), lock=False)
    if user is None:
        raise Unauthorized("this account no longer exists")
    return MeRead(
        kind="user",
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        team_id=user.team_id,
        active=user.active,
        visible_team_ids=sorted(uuid.UUID(t) for t in principal.visible_team_ids),
        scopes=sorted(principal.scopes),
    )


async def change_own_password(
    db: Database,
    session: AsyncSession,
    authn: Authenticator,
    principal: Principal,
    access_token: str | None,
    current_password: str,
    new_password: str,
    address: str | None,
) -> None:
    """A user's own password; every other session of theirs ends, this one goes on. A wrong
    current password counts as a failed sign-in of the account from the caller's address (a
    stolen access token must not become a free password oracle)."""
    current_session = (
        uuid.UUID(authn.access_claims(access_token).session_id) if access_token else None
    )
    user_id = principal.user_id
    pool = db.primary()
    # The guard (and its slowdown) before the request's transaction takes the user's row.
    email = None if user_id is None else await repository.email_of(pool, user_id)
    if user_id is None or email is None:
        raise Unauthorized("this account is deactivated")
    try:
        account = email_key(email)
    except ValueError:  # stored before addresses were checked: its own spelling is its key
        account = email.lower()
    guard = SignInGuard(pool, authn.settings, authn.clock)
    attempt = guard.attempt(account, address)
    await _admit(
        guard,
        attempt,
        "user.password_change",
        actor=principal,
        subject_id=str(user_id),
        address=address,
        detail={},
    )
    user = await users.get_user(session, user_id, lock=True)
    if user is None or not user.active:
        raise Unauthorized("this account is deactivated")
    if not await authn.passwords.verify(user.password_hash, current_password):
        await audit_log.add_now(
            pool,
            "user.password_change.failed",
            **audit.actor(principal),
            subject_type="user",
            subject_id=str(user.id),
            client_address=address,
            detail="{}",
        )
        raise ValidationFailed.field("current_password", "is not the account's password")
    await guard.succeeded(attempt)
    user.password_hash = await authn.passwords.hash(new_password)
    user.version += 1
    user.updated_at = utcnow()
    await session.flush()
    await repository.end_sessions(
        session, reason="password_changed", user_id=user.id, keep=current_session
    )
    audit.record(
        session,
        "user.password_changed",
        principal,
        subject_type="user",
        subject_id=user.id,
        client_address=address,
    )
    await announce(session, authn, f"user:{user.id}")


async def purge(db: Database, authn: Authenticator) -> None:
    """Forget what can no longer matter; idempotent, so every replica may run it."""
    window = float(authn.settings.login_failure_window_seconds)
    await repository.purge(db.primary(), window, authn.clock.now())
