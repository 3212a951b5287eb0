"""API keys' rules: which scopes a key may carry, creation, revocation, and the events key
the services follow feeds with (flush, never commit)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.api_keys import repository
from gateway.identity.api_keys.exceptions import ApiKeyNotFound
from gateway.identity.api_keys.schemas import ApiKeyCreate
from gateway.identity.audit import service as audit
from gateway.identity.authn import Authenticator, announce
from gateway.identity.models import ApiKey
from gateway.identity.scopes import EVENTS_READ, KNOWN_SCOPES
from gateway.identity.tokens import digest, display_prefix, new_api_key
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import ValidationFailed
from servicekit.pagination import PageParams

log = logging.getLogger("gateway.identity")

EVENTS_KEY_NAME = "internal event consumers"


def _check_scopes(scopes: Sequence[str]) -> list[str]:
    unknown = sorted(set(scopes) - KNOWN_SCOPES)
    if unknown:
        raise ValidationFailed.field(
            "scopes",
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_SCOPES))}",
        )
    return sorted(set(scopes))


async def list_api_keys(
    session: AsyncSession, authn: Authenticator, page: PageParams, *, include_revoked: bool
) -> Sequence[ApiKey]:
    # Last-used times are batched in memory: write them first, so the list shows them.
    await authn.flush_key_usage()
    return await repository.list_keys(session, page, include_revoked=include_revoked)


async def get_api_key(session: AsyncSession, authn: Authenticator, key_id: uuid.UUID) -> ApiKey:
    await authn.flush_key_usage()
    key = await repository.get(session, key_id)
    if key is None:
        raise ApiKeyNotFound(key_id)
    return key


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
    await repository.add(session, key)
    audit.record(
        session,
        "api_key.created",
        actor,
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
    key = await repository.get(session, key_id, lock=True)
    if key is None:
        raise ApiKeyNotFound(key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        key.revoked_by = actor.user_id
        await session.flush()
        audit.record(
            session,
            "api_key.revoked",
            actor,
            subject_type="api_key",
            subject_id=key.id,
            client_address=address,
            detail={"name": key.name},
        )
        await announce(session, authn, f"key:{key.id}")
    return key


async def ensure_events_key(session: AsyncSession, authn: Authenticator, secret: str) -> None:
    """The key (scope events:read) the services follow feeds with, from EVENTS_API_KEY. Run by
    the start-up hook under its advisory lock."""
    key_hash = digest(secret)
    existing = await repository.by_hash(session, key_hash)
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
    await repository.add(session, key)
    audit.record(
        session,
        "api_key.created",
        None,
        subject_type="api_key",
        subject_id=key.id,
        detail={"name": key.name, "scopes": [EVENTS_READ]},
    )
    await announce(session, authn, "keys")
