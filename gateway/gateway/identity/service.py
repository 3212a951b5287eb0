"""Identity's rules: sign-in, sessions, users, teams, API keys, audit (flush, never commit)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.identity import events, repository
from gateway.identity.authn import Authenticator, announce
from gateway.identity.exceptions import (
    AccountDeactivated,
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    LastAdmin,
    LoginThrottled,
)
from gateway.identity.models import (
    API_KEYS,
    REFRESH_TOKENS,
    SESSIONS,
    USERS,
    ApiKey,
    AuthSession,
    RefreshToken,
    Team,
    User,
)
from gateway.identity.schemas import (
    ApiKeyCreate,
    TeamCreate,
    TeamUpdate,
    TokenResponse,
    UserCreate,
    UserUpdate,
)
from gateway.identity.scopes import EVENTS_READ, KNOWN_SCOPES
from gateway.identity.tokens import (
    digest,
    display_prefix,
    new_api_key,
    new_refresh_token,
)
from gateway.models import SCHEMA
from servicekit.auth import Principal
from servicekit.db import Database, utcnow
from servicekit.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from servicekit.outbox import record_event

log = logging.getLogger("gateway.identity")

EVENTS_KEY_NAME = "internal event consumers"
SIGN_INS = Counter("identity_sign_ins_total", "Sign-in attempts by outcome", ["outcome"])


def _actor(principal: Principal | None) -> dict[str, Any]:
    if principal is None:
        return {"actor_type": "system", "actor_id": None}
    return {"actor_type": principal.kind, "actor_id": principal.sub}


# --- sign-in ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Throttle:
    pool: Any
    settings: Settings

    def keys(self, email: str, address: str | None) -> list[tuple[str, int]]:
        s = self.settings
        keys = [(f"account:{email.strip().lower()}", s.login_max_failures_per_account)]
        if address:
            keys.append((f"address:{address}", s.login_max_failures_per_address))
        return keys

    async def check(self, keys: list[tuple[str, int]]) -> float:
        """429 while a key is locked; else how long to hold this attempt back."""
        s = self.settings
        rows = await self.pool.fetch(
            repository.THROTTLE_STATE,
            [k for k, _ in keys],
            float(s.login_failure_window_seconds),
        )
        failures = 0
        for row in rows:
            if row["locked_for"] is not None and row["locked_for"] > 0:
                raise LoginThrottled(row["locked_for"])
            if not row["window_over"]:
                failures = max(failures, row["failures"])
        over = failures - s.login_slowdown_after
        if over < 0:
            return 0.0
        return float(min(s.login_slowdown_max_seconds, s.login_slowdown_base_seconds * 2**over))

    async def charge(self, keys: list[tuple[str, int]]) -> None:
        """Count this attempt as a failure until its password proves right; 429 when attempts
        that raced past `check` went over a limit."""
        s = self.settings
        over: float | None = None
        async with self.pool.acquire() as conn, conn.transaction():
            for key, limit in keys:
                row = await conn.fetchrow(
                    repository.THROTTLE_CHARGE,
                    key,
                    limit,
                    float(s.login_failure_window_seconds),
                    float(s.login_lockout_seconds),
                )
                if row["failures"] > limit and (row["locked_for"] or 0) > 0:
                    over = max(over or 0.0, row["locked_for"])
        if over is not None:
            raise LoginThrottled(over)

    async def refund(self, keys: list[tuple[str, int]]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(repository.THROTTLE_RESET, keys[0][0])
            for key, limit in keys[1:]:
                await conn.execute(repository.THROTTLE_REFUND, key, limit)


_USER_BY_EMAIL = f"""
    SELECT id, email, password_hash, active FROM "{SCHEMA}".users WHERE lower(email) = lower($1)
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters


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
        expires_at = utcnow() + timedelta(seconds=authn.settings.refresh_token_ttl_seconds)
        auth_session = AuthSession(user_id=user_id, expires_at=expires_at, client_address=address)
        session.add(auth_session)
        await session.flush()
        session_id = auth_session.id
    else:
        session_id, expires_at = existing
    refresh = new_refresh_token()
    session.add(
        RefreshToken(session_id=session_id, token_hash=digest(refresh), expires_at=expires_at)
    )
    await session.flush()
    return TokenResponse(
        access_token=authn.tokens.mint(str(user_id), str(session_id)),
        expires_in=authn.tokens.ttl_seconds,
        refresh_token=refresh,
    )


async def login(
    db: Database, authn: Authenticator, email: str, password: str, address: str | None
) -> TokenResponse:
    pool = db.primary()
    throttle = _Throttle(pool, authn.settings)
    keys = throttle.keys(email, address)
    try:
        delay = await throttle.check(keys)
        if delay:
            await asyncio.sleep(delay)
        await throttle.charge(keys)
    except LoginThrottled:
        await repository.add_audit_now(
            pool,
            "login.throttled",
            actor_type="anonymous",
            actor_id=None,
            subject_type="user",
            subject_id=None,
            client_address=address,
            detail=orjson.dumps({"email": email}).decode(),
        )
        SIGN_INS.labels("throttled").inc()
        raise
    row = await pool.fetchrow(_USER_BY_EMAIL, email.strip())
    ok = await authn.passwords.verify(row["password_hash"] if row else None, password)
    if not ok or row is None:
        await repository.add_audit_now(
            pool,
            "login.failed",
            actor_type="anonymous",
            actor_id=None,
            subject_type="user",
            subject_id=str(row["id"]) if row else None,
            client_address=address,
            detail=orjson.dumps({"email": email}).decode(),
        )
        SIGN_INS.labels("failed").inc()
        raise InvalidCredentials()
    await throttle.refund(keys)
    if not row["active"]:
        await repository.add_audit_now(
            pool,
            "login.refused",
            actor_type="anonymous",
            actor_id=None,
            subject_type="user",
            subject_id=str(row["id"]),
            client_address=address,
            detail=orjson.dumps({"email": email, "reason": "deactivated"}).decode(),
        )
        SIGN_INS.labels("deactivated").inc()
        raise AccountDeactivated()
    user_id: uuid.UUID = row["id"]
    new_hash = None
    if authn.passwords.needs_rehash(row["password_hash"]):
        new_hash = await authn.passwords.hash(password)
    async with db.session() as session:
        if new_hash is not None:
            await session.execute(
                sa.update(USERS).where(USERS.c.id == user_id).values(password_hash=new_hash)
            )
        tokens = await _issue_session(session, authn, user_id, address)
        repository.add_audit(
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


async def refresh(
    db: Database, authn: Authenticator, token: str, address: str | None
) -> TokenResponse:
    """Rotate a refresh token. A token already rotated is a stolen copy (or the thief is the
    one who rotated it): the whole family ends, so neither side can go on."""
    rt, s = REFRESH_TOKENS, SESSIONS
    outcome = "ok"
    tokens: TokenResponse | None = None
    async with db.session() as session:
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
            .where(rt.c.token_hash == digest(token))
            .with_for_update(of=rt)
        )
        row = (await session.execute(stmt)).first()
        now = utcnow()
        if row is None:
            outcome = "unknown"
        elif row.rotated_at is not None:
            outcome = "reused"
            if row.revoked_at is None:
                await repository.end_sessions(
                    session, reason="refresh_token_reused", session_ids=[row.session_id]
                )
                await announce(session, authn, f"user:{row.user_id}")
            repository.add_audit(
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
            await session.execute(sa.update(rt).where(rt.c.id == row.id).values(rotated_at=now))
            tokens = await _issue_session(
                session, authn, row.user_id, address, (row.session_id, row.session_expires_at)
            )
    if tokens is None:
        raise InvalidRefreshToken(
            {
                "unknown": "the refresh token is not valid",
                "reused": "the refresh token was already used; the session has been ended",
                "revoked": "the session has ended; sign in again",
                "expired": "the refresh token has expired; sign in again",
                "inactive": "this account is deactivated",
            }[outcome]
        )
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
            found = (
                await session.execute(
                    sa.select(REFRESH_TOKENS.c.session_id).where(
                        REFRESH_TOKENS.c.token_hash == digest(refresh_token)
                    )
                )
            ).first()
            if found is not None:
                session_ids.append(found.session_id)
        if not session_ids:
            if refresh_token:
                return  # an unknown refresh token: nothing to end, and nothing to tell
            raise Unauthorized("send the access token or the refresh token of the session to end")
        users = await repository.end_sessions(session, reason="logout", session_ids=session_ids)
        for user_id in set(users):
            await announce(session, authn, f"user:{user_id}")
            repository.add_audit(
                session,
                "logout",
                actor_type="user",
                actor_id=str(user_id),
                subject_type="user",
                subject_id=user_id,
                client_address=address,
            )


# --- users ------------------------------------------------------------------------------------


async def _user_event(session: AsyncSession, type_: str, user: User, **extra: Any) -> None:
    _, managers = await repository.team_chain(session, user.team_id)
    await record_event(session, type_, user.id, events.user_data(user, managers, **extra))


async def _check_team(session: AsyncSession, team_id: uuid.UUID | None) -> None:
    if team_id is not None and not await repository.team_exists(session, team_id):
        raise ValidationFailed.field("team_id", f"no team {team_id}")


async def create_user(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    body: UserCreate,
    address: str | None,
) -> User:
    if await repository.email_taken(session, body.email):
        raise EmailTaken(body.email)
    await _check_team(session, body.team_id)
    user = User(
        email=body.email,
        name=body.name,
        role=body.role,
        team_id=body.team_id,
        active=body.active,
        password_hash=await authn.passwords.hash(body.password),
    )
    if not body.active:
        user.deactivated_at = utcnow()
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise EmailTaken(body.email) from None
    await _user_event(session, events.USER_CREATED, user)
    repository.add_audit(
        session,
        "user.created",
        **_actor(actor),
        subject_type="user",
        subject_id=user.id,
        client_address=address,
        detail={"email": user.email, "role": user.role},
    )
    return user


async def update_user(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    user: User,
    body: UserUpdate,
    address: str | None,
) -> User:
    changes = body.model_dump(exclude_unset=True)
    for field in ("email", "name", "role", "active", "password"):
        if field in changes and changes[field] is None:
            raise ValidationFailed.field(field, "may not be null")
    if not changes:
        return user
    before_team = user.team_id
    was_active = user.active
    was_admin = user.role == "admin" and user.active
    if (
        "email" in changes
        and changes["email"].lower() != user.email.lower()
        and await repository.email_taken(session, changes["email"], except_id=user.id)
    ):
        raise EmailTaken(changes["email"])
    if "team_id" in changes:
        await _check_team(session, changes["team_id"])
    stays_admin = changes.get("role", user.role) == "admin" and changes.get("active", user.active)
    if was_admin and not stays_admin:
        admins = await repository.active_admins(session, lock=True)
        if [a for a in admins if a != user.id] == []:
            raise LastAdmin()
    password = changes.pop("password", None)
    detail: dict[str, Any] = {k: v for k, v in changes.items() if k != "active"}
    for field, value in changes.items():
        setattr(user, field, value)
    if password is not None:
        user.password_hash = await authn.passwords.hash(password)
        detail["password"] = "changed"
    user.version += 1
    user.updated_at = utcnow()
    if was_active and not user.active:
        user.deactivated_at = user.updated_at
    elif user.active and not was_active:
        user.deactivated_at = None
    try:
        await session.flush()
    except IntegrityError:
        raise EmailTaken(str(changes.get("email"))) from None

    if was_active and not user.active:
        # Deactivation stops every session at once: refresh tokens die with their session,
        # access tokens are refused by the authenticator as soon as this commits.
        await repository.end_sessions(session, reason="user_deactivated", user_id=user.id)
        await _user_event(session, events.USER_DEACTIVATED, user)
        repository.add_audit(
            session,
            "user.deactivated",
            **_actor(actor),
            subject_type="user",
            subject_id=user.id,
            client_address=address,
            detail={"email": user.email},
        )
    elif user.active and not was_active:
        await _user_event(session, events.USER_REACTIVATED, user)
        repository.add_audit(
            session,
            "user.reactivated",
            **_actor(actor),
            subject_type="user",
            subject_id=user.id,
            client_address=address,
        )
    elif password is not None:
        await repository.end_sessions(session, reason="password_changed", user_id=user.id)
    if user.team_id != before_team:
        await _user_event(
            session,
            events.USER_TEAM_CHANGED,
            user,
            previous_team_id=None if before_team is None else str(before_team),
        )
    if {"email", "name", "role"} & changes.keys():
        await _user_event(session, events.USER_UPDATED, user)
    if detail:
        repository.add_audit(
            session,
            "user.updated",
            **_actor(actor),
            subject_type="user",
            subject_id=user.id,
            client_address=address,
            detail={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in detail.items()},
        )
    await announce(session, authn, f"user:{user.id}")
    return user


async def change_own_password(
    session: AsyncSession,
    authn: Authenticator,
    principal: Principal,
    current_session: uuid.UUID | None,
    current_password: str,
    new_password: str,
    address: str | None,
) -> None:
    """A user's own password; every other session of theirs ends, this one goes on."""
    user_id = principal.user_id
    user = None if user_id is None else await repository.get_user(session, user_id, lock=True)
    if user is None or not user.active:
        raise Unauthorized("this account is deactivated")
    if not await authn.passwords.verify(user.password_hash, current_password):
        raise ValidationFailed.field("current_password", "is not the account's password")
    user.password_hash = await authn.passwords.hash(new_password)
    user.version += 1
    user.updated_at = utcnow()
    await session.flush()
    await repository.end_sessions(
        session, reason="password_changed", user_id=user.id, keep=current_session
    )
    repository.add_audit(
        session,
        "user.password_changed",
        **_actor(principal),
        subject_type="user",
        subject_id=user.id,
        client_address=address,
    )
    await announce(session, authn, f"user:{user.id}")


def can_see_user(principal: Principal, user_id: uuid.UUID, team_id: uuid.UUID | None) -> bool:
    if principal.kind != "user":
        return False
    if principal.is_admin or principal.sub == str(user_id):
        return True
    return principal.is_manager and principal.sees_team(team_id)


# --- teams ------------------------------------------------------------------------------------


async def _check_manager(session: AsyncSession, manager_id: uuid.UUID | None) -> None:
    if manager_id is None:
        return
    row = (
        await session.execute(
            sa.select(USERS.c.role, USERS.c.active).where(USERS.c.id == manager_id)
        )
    ).first()
    if row is None:
        raise ValidationFailed.field("manager_id", f"no user {manager_id}")
    if row.role not in ("manager", "admin") or not row.active:
        raise ValidationFailed.field("manager_id", "must be an active manager (or admin)")


async def _team_events(session: AsyncSession, team_ids: Sequence[uuid.UUID], change: str) -> None:
    for team_id in team_ids:
        team = await session.get(Team, team_id)
        if team is None:
            continue
        ancestors, managers = await repository.team_chain(session, team_id)
        await record_event(
            session,
            events.TEAM_CHANGED,
            team.id,
            events.team_data(team, ancestors, managers, change),
        )


async def create_team(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    body: TeamCreate,
    address: str | None,
) -> Team:
    if body.parent_id is not None and not await repository.team_exists(session, body.parent_id):
        raise ValidationFailed.field("parent_id", f"no team {body.parent_id}")
    await _check_manager(session, body.manager_id)
    team = Team(name=body.name, parent_id=body.parent_id, manager_id=body.manager_id)
    session.add(team)
    await session.flush()
    await _team_events(session, [team.id], "created")
    repository.add_audit(
        session,
        "team.created",
        **_actor(actor),
        subject_type="team",
        subject_id=team.id,
        client_address=address,
        detail={"name": team.name},
    )
    # A new team below a manager's team widens what that manager sees.
    await announce(session, authn, "teams")
    return team


async def update_team(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    team: Team,
    body: TeamUpdate,
    address: str | None,
) -> Team:
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise ValidationFailed.field("name", "may not be null")
    if not changes:
        return team
    if changes.get("parent_id") is not None:
        parent_id = changes["parent_id"]
        if not await repository.team_exists(session, parent_id):
            raise ValidationFailed.field("parent_id", f"no team {parent_id}")
        if parent_id in await repository.subtree(session, team.id):
            raise ValidationFailed.field("parent_id", "a team cannot move below itself")
    if "manager_id" in changes:
        await _check_manager(session, changes["manager_id"])
    tree_changed = any(
        k in changes and changes[k] != getattr(team, k) for k in ("parent_id", "manager_id")
    )
    for field, value in changes.items():
        setattr(team, field, value)
    team.version += 1
    team.updated_at = utcnow()
    await session.flush()
    # Teams below see a new chain of managers when the tree above them changes.
    affected = await repository.subtree(session, team.id) if tree_changed else [team.id]
    await _team_events(session, affected, "updated")
    repository.add_audit(
        session,
        "team.updated",
        **_actor(actor),
        subject_type="team",
        subject_id=team.id,
        client_address=address,
        detail={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in changes.items()},
    )
    await announce(session, authn, "teams")
    return team


async def delete_team(
    session: AsyncSession, authn: Authenticator, actor: Principal, team: Team, address: str | None
) -> None:
    reason = await repository.team_has_dependants(session, team.id)
    if reason is not None:
        raise Conflict(f"the team cannot be deleted: {reason}")
    ancestors, managers = await repository.team_chain(session, team.id)
    await record_event(
        session,
        events.TEAM_CHANGED,
        team.id,
        events.team_data(team, ancestors, managers, "deleted"),
    )
    await session.delete(team)
    await session.flush()
    repository.add_audit(
        session,
        "team.deleted",
        **_actor(actor),
        subject_type="team",
        subject_id=team.id,
        client_address=address,
        detail={"name": team.name},
    )
    await announce(session, authn, "teams")


def can_see_team(principal: Principal, team_id: uuid.UUID) -> bool:
    return principal.kind == "user" and principal.sees_team(team_id)


# --- API keys ---------------------------------------------------------------------------------


def _check_scopes(scopes: Sequence[str]) -> list[str]:
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:
        raise ValidationFailed.field(
            "scopes",
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_SCOPES))}",
        )
    return sorted(set(scopes))


async def create_api_key(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    body: ApiKeyCreate,
    address: str | None,
) -> tuple[ApiKey, str]:
    scopes = _check_scopes(body.scopes)
    secret = new_api_key()
    key = ApiKey(
        name=body.name,
        prefix=display_prefix(secret),
        key_hash=digest(secret),
        scopes=scopes,
        created_by=actor.user_id,
    )
    session.add(key)
    await session.flush()
    repository.add_audit(
        session,
        "api_key.created",
        **_actor(actor),
        subject_type="api_key",
        subject_id=key.id,
        client_address=address,
        detail={"name": key.name, "scopes": scopes, "prefix": key.prefix},
    )
    # A key someone tried before it existed is cached as unknown: forget those.
    await announce(session, authn, "keys")
    return key, secret


async def revoke_api_key(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    key_id: uuid.UUID,
    address: str | None,
) -> ApiKey:
    key = await session.get(ApiKey, key_id, with_for_update=True)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        key.revoked_by = actor.user_id
        await session.flush()
        repository.add_audit(
            session,
            "api_key.revoked",
            **_actor(actor),
            subject_type="api_key",
            subject_id=key.id,
            client_address=address,
            detail={"name": key.name},
        )
        await announce(session, authn, f"key:{key.id}")
    return key


# --- first start ------------------------------------------------------------------------------


async def bootstrap(db: Database, authn: Authenticator) -> None:
    """An admin when there is none; the event consumers' key when EVENTS_API_KEY is set. Runs
    under an advisory lock so that replicas starting together do it once."""
    settings = authn.settings
    async with db.session() as session:
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('identity.bootstrap'))")
        )
        if not await repository.active_admins(session):
            await _bootstrap_admin(session, authn, settings)
        if settings.events_api_key:
            await _bootstrap_events_key(session, authn, settings.events_api_key)


async def _bootstrap_admin(session: AsyncSession, authn: Authenticator, settings: Settings) -> None:
    email = settings.bootstrap_admin_email.strip()
    password = settings.bootstrap_admin_password
    generated = not password
    if generated:
        password = secrets.token_urlsafe(18)
    password_hash = await authn.passwords.hash(password)
    user = await repository.user_by_email(session, email)
    if user is None:
        user = User(email=email, name="Administrator", role="admin", password_hash=password_hash)
        session.add(user)
        await session.flush()
        await _user_event(session, events.USER_CREATED, user)
    else:
        # The address exists but no admin is active: give it back the keys of the house.
        user.role, user.active, user.deactivated_at = "admin", True, None
        user.password_hash = password_hash
        user.version += 1
        user.updated_at = utcnow()
        await session.flush()
        await _user_event(session, events.USER_UPDATED, user)
    repository.add_audit(
        session,
        "user.bootstrapped",
        actor_type="system",
        actor_id=None,
        subject_type="user",
        subject_id=user.id,
        detail={"email": email},
    )
    await announce(session, authn, f"user:{user.id}")
    log.warning("created the first admin %s", email)
    if generated:
        # Printed once, on the console only: it is not kept anywhere else.
        print(
            f"\n*** Fieldforce first admin: {email} / password: {password}\n"
            "*** (set BOOTSTRAP_ADMIN_PASSWORD to choose it; change it after signing in)\n",
            file=sys.stderr,
            flush=True,
        )


async def _bootstrap_events_key(session: AsyncSession, authn: Authenticator, secret: str) -> None:
    key_hash = digest(secret)
    existing = (
        (await session.execute(sa.select(ApiKey).where(API_KEYS.c.key_hash == key_hash)))
        .scalars()
        .first()
    )
    if existing is not None:
        if existing.revoked_at is not None:
            log.warning("the EVENTS_API_KEY key was revoked; set a new EVENTS_API_KEY")
        elif EVENTS_READ not in existing.scopes:
            existing.scopes = sorted({*existing.scopes, EVENTS_READ})
            await session.flush()
            await announce(session, authn, f"key:{existing.id}")
        return
    key = ApiKey(
        name=EVENTS_KEY_NAME, prefix=display_prefix(secret), key_hash=key_hash, scopes=[EVENTS_READ]
    )
    session.add(key)
    await session.flush()
    repository.add_audit(
        session,
        "api_key.created",
        actor_type="system",
        actor_id=None,
        subject_type="api_key",
        subject_id=key.id,
        detail={"name": key.name, "scopes": [EVENTS_READ]},
    )
    await announce(session, authn, "keys")


# --- housekeeping -----------------------------------------------------------------------------

_PURGE = (
    # Ended or expired sessions, a day on (their refresh tokens go with them).
    f"""DELETE FROM "{SCHEMA}".sessions
        WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'""",  # noqa: S608 - the schema is our own identifier; values are bound parameters
    # Rotated refresh tokens are kept a week to catch a stolen copy coming back.
    f"""DELETE FROM "{SCHEMA}".refresh_tokens WHERE rotated_at < now() - interval '7 days'""",  # noqa: S608 - the schema is our own identifier; values are bound parameters
    f"""DELETE FROM "{SCHEMA}".login_throttle
        WHERE window_started_at < now() - make_interval(secs => $1)
          AND (locked_until IS NULL OR locked_until < now())""",  # noqa: S608 - the schema is our own identifier; values are bound parameters
)


async def purge(db: Database, settings: Settings) -> None:
    """Forget what can no longer matter; idempotent, so every replica may run it."""
    pool = db.primary()
    await pool.execute(_PURGE[0])
    await pool.execute(_PURGE[1])
    await pool.execute(_PURGE[2], float(settings.login_failure_window_seconds))
