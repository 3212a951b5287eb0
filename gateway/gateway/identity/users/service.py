"""Users' rules: who sees whom, what a user may become, the last admin, and the events that
tell consumers (flush, never commit)."""

from __future__ import annotations

import logging
import secrets
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.audit import service as audit
from gateway.identity.auth import repository as sessions
from gateway.identity.authn import Authenticator, announce
from gateway.identity.emails import normalize_email
from gateway.identity.models import User
from gateway.identity.teams import repository as teams
from gateway.identity.teams.service import check_team
from gateway.identity.users import events, repository
from gateway.identity.users.exceptions import EmailTaken, LastAdmin, UserNotFound
from gateway.identity.users.schemas import UserCreate, UserUpdate
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import ValidationFailed
from servicekit.outbox import record_event
from servicekit.pagination import PageParams

log = logging.getLogger("gateway.identity")


def can_see_user(principal: Principal, user_id: uuid.UUID, team_id: uuid.UUID | None) -> bool:
    if principal.kind != "user":
        return False
    if principal.is_admin or principal.sub == str(user_id):
        return True
    return principal.is_manager and principal.sees_team(team_id)


async def visible_user(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, *, lock: bool
) -> User:
    """The user (locked when it is about to change); 404 when the caller may not see it."""
    user = await repository.get_user(session, user_id, lock=lock)
    if user is None or not can_see_user(principal, user.id, user.team_id):
        raise UserNotFound(user_id)
    return user


async def list_users(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    team_id: uuid.UUID | None,
    role: str | None,
    active: bool | None,
) -> Sequence[User]:
    """All for admins, the subtree's for managers, oneself for reps."""
    visible: frozenset[str] | None = None
    if not principal.is_admin:
        visible = principal.visible_team_ids if principal.is_manager else frozenset()
    return await repository.list_users(
        session,
        page,
        visible_team_ids=visible,
        self_id=principal.user_id,
        team_id=team_id,
        role=role,
        active=active,
    )


async def _user_event(session: AsyncSession, type_: str, user: User, **extra: Any) -> None:
    _, managers = await teams.team_chain(session, user.team_id)
    await record_event(session, type_, user.id, events.user_data(user, managers, **extra))


async def create_user(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    body: UserCreate,
    address: str | None,
) -> User:
    if await repository.email_taken(session, body.email):
        raise EmailTaken(body.email)
    await check_team(session, body.team_id, "team_id")
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
    if not await repository.save(session, user):
        raise EmailTaken(body.email)
    await _user_event(session, events.USER_CREATED, user)
    audit.record(
        session,
        "user.created",
        actor,
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
        await check_team(session, changes["team_id"], "team_id")
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
    if not await repository.save(session, user):
        raise EmailTaken(str(changes.get("email")))

    if was_active and not user.active:
        # Deactivation stops every session at once: refresh tokens die with their session,
        # access tokens are refused by the authenticator as soon as this commits.
        await sessions.end_sessions(session, reason="user_deactivated", user_id=user.id)
        await _user_event(session, events.USER_DEACTIVATED, user)
        audit.record(
            session,
            "user.deactivated",
            actor,
            subject_type="user",
            subject_id=user.id,
            client_address=address,
            detail={"email": user.email},
        )
    elif user.active and not was_active:
        await _user_event(session, events.USER_REACTIVATED, user)
        audit.record(
            session,
            "user.reactivated",
            actor,
            subject_type="user",
            subject_id=user.id,
            client_address=address,
        )
    elif password is not None:
        await sessions.end_sessions(session, reason="password_changed", user_id=user.id)
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
        audit.record(
            session,
            "user.updated",
            actor,
            subject_type="user",
            subject_id=user.id,
            client_address=address,
            detail={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in detail.items()},
        )
    await announce(session, authn, f"user:{user.id}")
    return user


async def deactivate_user(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    user: User,
    address: str | None,
) -> User:
    """Deactivate (users are never erased: their records keep an owner); a no-op when done."""
    if not user.active:
        return user
    return await update_user(session, authn, actor, user, UserUpdate(active=False), address)


async def ensure_admin(session: AsyncSession, authn: Authenticator) -> None:
    """An active admin when there is none: the bootstrap address, created or given back the
    keys of the house. Run by the start-up hook under its advisory lock."""
    if await repository.active_admins(session):
        return
    settings = authn.settings
    try:
        email = normalize_email(settings.bootstrap_admin_email)
    except ValueError as exc:
        raise RuntimeError(f"BOOTSTRAP_ADMIN_EMAIL {exc}") from None
    password = settings.bootstrap_admin_password
    generated = not password
    if generated:
        password = secrets.token_urlsafe(18)
    password_hash = await authn.passwords.hash(password)
    user = await repository.user_by_email(session, email)
    if user is None:
        user = User(email=email, name="Administrator", role="admin", password_hash=password_hash)
        if not await repository.save(session, user):
            raise EmailTaken(email)
        await _user_event(session, events.USER_CREATED, user)
    else:
        # The address exists but no admin is active: give it back the keys of the house.
        user.role, user.active, user.deactivated_at = "admin", True, None
        user.password_hash = password_hash
        user.version += 1
        user.updated_at = utcnow()
        await session.flush()
        await _user_event(session, events.USER_UPDATED, user)
    audit.record(
        session,
        "user.bootstrapped",
        None,
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
