"""Identity's lifespan hook: the Authenticator, the first admin, the events key, housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI

from gateway.clientaddr import TrustedProxies
from gateway.config import Settings
from gateway.identity.api_keys.service import ensure_events_key
from gateway.identity.auth.service import purge
from gateway.identity.authn import Authenticator
from gateway.identity.users.service import ensure_admin
from servicekit.db import Database

log = logging.getLogger("gateway.identity")
PURGE_EVERY_SECONDS = 900.0


async def bootstrap(db: Database, authn: Authenticator) -> None:
    """An admin when there is none; the event consumers' key when EVENTS_API_KEY is set. Runs
    under an advisory lock so that replicas starting together do it once."""
    async with db.session() as session:
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext('identity.bootstrap'))")
        )
        await ensure_admin(session, authn)
        if authn.settings.events_api_key:
            await ensure_events_key(session, authn, authn.settings.events_api_key)


async def _housekeeping(db: Database, authn: Authenticator) -> None:
    while True:
        try:
            await purge(db, authn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("identity housekeeping failed (%s)", type(exc).__name__)
        await asyncio.sleep(PURGE_EVERY_SECONDS)


@asynccontextmanager
async def identity_lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = app.state.settings
    if not isinstance(settings, Settings):
        settings = Settings.model_validate(settings.model_dump())
    app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
    authenticator = Authenticator(app.state.db, settings)
    app.state.authenticator = authenticator
    await bootstrap(app.state.db, authenticator)
    await authenticator.start()
    housekeeping = asyncio.create_task(_housekeeping(app.state.db, authenticator))
    try:
        yield
    finally:
        housekeeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await housekeeping
        await authenticator.stop()
