"""Authentication of public requests: bearer access tokens, API keys, and the calls a service
makes on a caller's behalf (delegation), kept off the database.

Per request the work is two dictionary lookups: a verified token (or a key's digest) and the
user's facts (active flag, role, team, visible teams, sessions ended lately). Facts are loaded
with one statement and cached; every change that matters (deactivation, logout, revocation,
team moves) is announced with NOTIFY in the changing transaction, so the cache entry is dropped
in this process as soon as it commits and on every other replica as soon as Postgres delivers
the notification. While the listener is down the cache lives one second at most.

Delegation (`servicekit.calls`): a service calling another app's public API on behalf of the
caller it serves presents the internal token it was given (X-Internal-Token) as the call's only
credential (beside a bearer token or an API key it is ignored, as it always was). It is taken
when it verifies with the gateway's own key, has not expired, and was minted for one of the
services; the call is then the caller's own: their current facts (a deactivated user or a
revoked key is refused, a changed role applies), their rate limit, their scopes. The principal
carries the acting service in `act` (RFC 8693), on to the target and into the access lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import sqlalchemy as sa
from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from starlette.requests import Request

from gateway.config import Settings
from gateway.identity.clock import Clock
from gateway.identity.passwords import Passwords
from gateway.identity.scopes import KEY_ROLE, ROLE_SCOPES
from gateway.identity.tokens import AccessClaims, AccessTokens, digest
from gateway.models import SCHEMA
from servicekit.auth import MAX_ACT_DEPTH, Principal, TokenVerifier
from servicekit.db import Database, to_asyncpg_dsn
from servicekit.errors import DATABASE_RETRY_AFTER_SECONDS, ServiceUnavailable, Unauthorized

log = logging.getLogger("gateway.identity")

CHANNEL = "identity_changed"
SIGN_IN_PATHS = frozenset({"/api/v1/auth/token", "/api/v1/auth/refresh"})
_MAX_ENTRIES = 50_000
_UNLISTENED_TTL = 1.0
_HEARTBEAT_SECONDS = 5.0

# Counted off the hot path only: refusals and cache loads, never cache hits.
AUTH_REFUSED = Counter(
    "identity_auth_refused_total", "Requests refused by the authenticator", ["credential"]
)
IDENTITY_LOADS = Counter(
    "identity_cache_loads_total", "Identity facts loaded from the database", ["kind"]
)
LISTENER_UP = Gauge(
    "identity_change_listener_up", "1 while identity change notifications are being received"
)

K = TypeVar("K")
V = TypeVar("V")

_USER_FACTS_SQL = f"""
    WITH RECURSIVE led(id) AS (
        SELECT t.id FROM "{SCHEMA}".teams t WHERE t.manager_id = $1
        UNION
        SELECT c.id FROM "{SCHEMA}".teams c JOIN led ON c.parent_id = led.id
    )
    SELECT u.role, u.team_id, u.active, u.name,
           CASE WHEN u.role = 'manager' THEN ARRAY(SELECT id FROM led) END AS led_team_ids,
           ARRAY(SELECT s.id FROM "{SCHEMA}".sessions s
                 WHERE s.user_id = $1
                   AND s.revoked_at > now() - make_interval(secs => $2)) AS ended_sessions
    FROM "{SCHEMA}".users u WHERE u.id = $1
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters
_KEY_SQL = f"""
    SELECT id, name, scopes, revoked_at FROM "{SCHEMA}".api_keys WHERE key_hash = $1
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters
_KEY_BY_ID_SQL = f"""
    SELECT id, name, scopes, revoked_at FROM "{SCHEMA}".api_keys WHERE id = $1
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters
_KEY_USAGE_SQL = f"""
    UPDATE "{SCHEMA}".api_keys k
    SET last_used_at = greatest(coalesce(k.last_used_at, v.at), v.at)
    FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at)
    WHERE k.id = v.id
"""  # noqa: S608 - the schema is our own identifier; values are bound parameters


def visible_teams(
    role: str, team_id: str | None, led_team_ids: Iterable[str] | None
) -> frozenset[str]:
    """A manager sees the teams they lead and everything below them (their own team when they
    lead none); a rep sees their own team; admins see everything and need no list."""
    own = frozenset({team_id}) if team_id else frozenset()
    if role == "manager":
        led = frozenset(led_team_ids or ())
        return led or own
    if role == "rep":
        return own
    return frozenset()


def user_principal(
    user_id: str,
    role: str,
    team_id: str | None,
    name: str | None,
    led_team_ids: Iterable[str] | None,
) -> Principal:
    return Principal(
        sub=user_id,
        kind="user",
        role=role,
        team_id=team_id,
        visible_team_ids=visible_teams(role, team_id, led_team_ids),
        scopes=ROLE_SCOPES.get(role, frozenset()),
        name=name,
    )


def key_principal(key_id: str, name: str, scopes: Iterable[str]) -> Principal:
    return Principal(sub=key_id, kind="key", role=KEY_ROLE, scopes=frozenset(scopes), name=name)


@dataclass(frozen=True, slots=True)
class _UserFacts:
    principal: Principal | None  # None: no such user, or deactivated
    ended_sessions: frozenset[str]
    loaded_at: float


@dataclass(frozen=True, slots=True)
class _KeyFacts:
    principal: Principal | None  # None: unknown or revoked
    key_id: str | None
    loaded_at: float


def _bounded_put(cache: dict[K, V], key: K, value: V) -> None:
    if len(cache) >= _MAX_ENTRIES:
        cache.clear()
    cache[key] = value


class Authenticator:
    """Created in lifespan (`identity_lifespan`), kept as `app.state.authenticator`."""

    def __init__(self, db: Database, settings: Settings) -> None:
        secret = settings.jwt_secret
        if not secret:
            secret = secrets.token_urlsafe(48)
            log.warning(
                "GATEWAY_JWT_SECRET is not set: using a random secret; access tokens will not "
                "survive a restart and will not be accepted by other gateway replicas"
            )
        self.tokens = AccessTokens(secret, settings.access_token_ttl_seconds)
        self.passwords = Passwords(
            time_cost=settings.argon2_time_cost,
            memory_kib=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.settings = settings
        # What failed sign-ins and session lifetimes are measured with (tests replace it).
        self.clock = Clock()
        self._db = db
        self._ttl = settings.identity_cache_ttl_seconds
        # Sessions ended longer ago than this can only hold expired access tokens.
        self._ended_window = float(settings.access_token_ttl_seconds + 60)
        self._flush_every = settings.api_key_last_used_flush_seconds
        self._tokens: dict[str, AccessClaims] = {}
        self._users: dict[str, _UserFacts] = {}
        self._keys: dict[bytes, _KeyFacts] = {}
        self._keys_by_id: dict[str, _KeyFacts] = {}
        # Verifies the internal tokens services present for delegated calls; set by the edge's
        # start-up, which holds the signing key (None: no delegated calls).
        self.delegations: TokenVerifier | None = None
        self._loading: dict[Any, asyncio.Future[Any]] = {}
        # Bumped by every invalidation: a load that overlapped one is used but not cached.
        self._generation = 0
        self._key_usage: dict[str, float] = {}
        self._listening = False
        self._listening_event = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # --- the per-request path -------------------------------------------------------------

    async def authenticate(self, request: Request) -> Principal | None:
        """The caller's principal; None when the request carries no credentials; 401 when the
        credentials are bad, expired, revoked or belong to a deactivated user."""
        if request.scope.get("path") in SIGN_IN_PATHS:
            # Signing in and refreshing never use the caller's identity; a client that sends
            # its expired access token along must not be refused the very call that renews it.
            return None
        # The raw header list, not `request.headers`: building that mapping cost more than
        # the whole cached check.
        authorization = api_key = None
        for name, value in request.scope["headers"]:
            if name == b"authorization" and authorization is None:
                authorization = value.decode("latin-1")
            elif name == b"x-api-key" and api_key is None:
                api_key = value.decode("latin-1")
        return await self.authenticate_credentials(authorization, api_key)

    async def authenticate_credentials(
        self, authorization: str | None, api_key: str | None, delegated: str | None = None
    ) -> Principal | None:
        # A bearer token or an API key is the call's credential, whatever else it carries:
        # an internal token counts only as the one credential of a delegated call.
        delegated = None if authorization or api_key else delegated
        try:
            if delegated:
                return await self.principal_for_delegation(delegated.strip())
            if authorization:
                scheme, _, token = authorization.partition(" ")
                token = token.strip()
                if scheme.lower() != "bearer" or not token:
                    raise Unauthorized("send 'Authorization: Bearer <access token>' or X-API-Key")
                return await self.principal_for_token(token)
            if api_key:
                return await self.principal_for_key(api_key.strip())
        except Unauthorized:
            kind = "delegated" if delegated else "bearer" if authorization else "api_key"
            AUTH_REFUSED.labels(kind).inc()
            raise
        return None

    def access_claims(self, token: str) -> AccessClaims:
        """The verified claims of an access token (signature checked once, then cached)."""
        claims = self._tokens.get(token)
        if claims is None:
            claims = self.tokens.verify(token)
            _bounded_put(self._tokens, token, claims)
        elif claims.expires_at <= time.time():
            self._tokens.pop(token, None)
            raise Unauthorized("the access token has expired; refresh it or sign in again")
        return claims

    async def principal_for_token(self, token: str) -> Principal:
        claims = self.access_claims(token)
        facts = await self._user_facts(claims.user_id)
        if facts.principal is None:
            raise Unauthorized("this account is deactivated")
        if claims.session_id in facts.ended_sessions:
            raise Unauthorized("this session has ended; sign in again")
        return facts.principal

    async def principal_for_key(self, secret: str) -> Principal:
        key_hash = digest(secret)
        now = time.monotonic()
        facts = self._keys.get(key_hash)
        if facts is None or now - facts.loaded_at >= self._current_ttl():
            facts = await self._load_once(("key", key_hash), self._key_cache, key_hash)
        if facts.principal is None or facts.key_id is None:
            raise Unauthorized("the API key is not valid or has been revoked")
        self._key_usage[facts.key_id] = time.time()
        return facts.principal

    async def principal_for_delegation(self, token: str) -> Principal:
        """The caller a service acts for, as they are now, with the service in `act`."""
        if self.delegations is None:
            raise Unauthorized("this gateway takes no delegated calls")
        claimed, acting = self.delegations.verify_with_audience(token)
        chain = (acting, *claimed.act)
        if len(chain) > MAX_ACT_DEPTH:
            raise Unauthorized("too many services acting on one another's behalf")
        if claimed.kind == "user":
            facts = await self._user_facts(claimed.sub)
            if facts.principal is None:
                raise Unauthorized("this account is deactivated")
            current = facts.principal
        else:
            current = await self.principal_for_key_id(claimed.sub)
        return dataclasses.replace(current, act=chain)

    async def principal_for_key_id(self, key_id: str) -> Principal:
        now = time.monotonic()
        facts = self._keys_by_id.get(key_id)
        if facts is None or now - facts.loaded_at >= self._current_ttl():
            facts = await self._load_once(("key-id", key_id), self._key_id_cache, key_id)
        if facts.principal is None:
            raise Unauthorized("the API key is not valid or has been revoked")
        return facts.principal

    # --- caches -----------------------------------------------------------------------------

    def _current_ttl(self) -> float:
        return self._ttl if self._listening else min(self._ttl, _UNLISTENED_TTL)

    async def _user_facts(self, user_id: str) -> _UserFacts:
        facts = self._users.get(user_id)
        if facts is not None and time.monotonic() - facts.loaded_at < self._current_ttl():
            return facts
        return await self._load_once(("user", user_id), self._user_cache, user_id)

    async def _load_once(self, token: Any, load: Callable[[Any], Awaitable[V]], arg: Any) -> V:
        """Concurrent misses for one entry share a single query (one that started before the
        latest invalidation is not joined: `invalidate` forgets the loads in flight)."""
        pending = self._loading.get(token)
        if pending is None:
            pending = asyncio.ensure_future(load(arg))
            self._loading[token] = pending

            def done(finished: asyncio.Future[Any]) -> None:
                if self._loading.get(token) is finished:
                    del self._loading[token]

            pending.add_done_callback(done)
        result: V = await asyncio.shield(pending)
        return result

    async def _user_cache(self, user_id: str) -> _UserFacts:
        generation = self._generation
        try:
            uid = uuid.UUID(user_id)
        except ValueError:
            raise Unauthorized("the access token is not valid") from None
        IDENTITY_LOADS.labels("user").inc()
        row = await self._fetchrow(_USER_FACTS_SQL, uid, self._ended_window)
        if row is None or not row["active"]:
            facts = _UserFacts(None, frozenset(), time.monotonic())
        else:
            team = str(row["team_id"]) if row["team_id"] else None
            led = [str(t) for t in row["led_team_ids"]] if row["led_team_ids"] else None
            facts = _UserFacts(
                user_principal(user_id, row["role"], team, row["name"], led),
                frozenset(str(s) for s in row["ended_sessions"]),
                time.monotonic(),
            )
        if generation == self._generation:
            _bounded_put(self._users, user_id, facts)
        return facts

    async def _key_cache(self, key_hash: bytes) -> _KeyFacts:
        generation = self._generation
        IDENTITY_LOADS.labels("api_key").inc()
        row = await self._fetchrow(_KEY_SQL, key_hash)
        if row is None or row["revoked_at"] is not None:
            facts = _KeyFacts(None, None, time.monotonic())
        else:
            key_id = str(row["id"])
            facts = _KeyFacts(
                key_principal(key_id, row["name"], row["scopes"]), key_id, time.monotonic()
            )
        if generation == self._generation:
            _bounded_put(self._keys, key_hash, facts)
        return facts

    async def _key_id_cache(self, key_id: str) -> _KeyFacts:
        generation = self._generation
        try:
            kid = uuid.UUID(key_id)
        except ValueError:
            raise Unauthorized("the API key is not valid or has been revoked") from None
        IDENTITY_LOADS.labels("api_key").inc()
        row = await self._fetchrow(_KEY_BY_ID_SQL, kid)
        if row is None or row["revoked_at"] is not None:
            facts = _KeyFacts(None, None, time.monotonic())
        else:
            facts = _KeyFacts(
                key_principal(key_id, row["name"], row["scopes"]), key_id, time.monotonic()
            )
        if generation == self._generation:
            _bounded_put(self._keys_by_id, key_id, facts)
        return facts

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        try:
            # The primary: a revoked key or a deactivated user must be seen at once.
            return await self._db.primary().fetchrow(sql, *args)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Credentials cannot be checked: say so (503), never let them through or crash.
            log.warning("identity lookup failed (%s)", type(exc).__name__)
            raise ServiceUnavailable(
                "sign-in checks are unavailable; retry shortly",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
            ) from None

    def invalidate(self, change: str) -> None:
        """Forget what a change made stale: `user:<id>`, `key:<id>`, `keys`, `teams` or `all`."""
        self._generation += 1
        # A load in flight may have read the state before the change: later callers must not
        # join it (those already waiting began before the change and may have its answer).
        self._loading.clear()
        kind, _, ident = change.partition(":")
        if kind == "user":
            self._users.pop(ident, None)
        elif kind == "key":
            for key_hash, facts in list(self._keys.items()):
                if facts.key_id == ident:
                    del self._keys[key_hash]
            self._keys_by_id.pop(ident, None)
        elif kind == "keys":
            self._keys.clear()
            self._keys_by_id.clear()
        elif kind == "teams":
            self._users.clear()
        else:
            self._users.clear()
            self._keys.clear()
            self._keys_by_id.clear()

    def clear(self) -> None:
        self.invalidate("all")

    # --- background work ----------------------------------------------------------------------

    async def start(self, wait_for_listener: float = 5.0) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_loop(), name="identity-listener"),
            asyncio.create_task(self._flush_loop(), name="identity-key-usage"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening_event.wait(), wait_for_listener)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.flush_key_usage()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for change in payload.split(",") if payload else ("all",):
            self.invalidate(change)

    async def _listen_loop(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    to_asyncpg_dsn(self._db.url),
                    server_settings={"application_name": "fieldforce-gateway-identity"},
                )
                await conn.add_listener(CHANNEL, self._on_notify)
                # Whatever changed while nobody listened is unknown: start from nothing.
                self.clear()
                self._listening = True
                LISTENER_UP.set(1)
                self._listening_event.set()
                while True:
                    await asyncio.sleep(_HEARTBEAT_SECONDS)
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), _HEARTBEAT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("identity change listener lost (%s); retrying", type(exc).__name__)
            finally:
                self._listening = False
                LISTENER_UP.set(0)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2.0)
            await asyncio.sleep(1.0)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every)
            try:
                await self.flush_key_usage()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("could not record API key use (%s)", type(exc).__name__)

    async def flush_key_usage(self) -> None:
        """Write the keys' last use in one statement (batched, never per request)."""
        if not self._key_usage:
            return
        usage, self._key_usage = self._key_usage, {}
        ids = [uuid.UUID(k) for k in usage]
        ats = [datetime.fromtimestamp(t, UTC) for t in usage.values()]
        try:
            await self._db.primary().execute(_KEY_USAGE_SQL, ids, ats)
        except BaseException:
            for key_id, at in usage.items():
                self._key_usage[key_id] = max(at, self._key_usage.get(key_id, at))
            raise


async def announce(
    session: AsyncSession, authenticator: Authenticator | None, *changes: str
) -> None:
    """Make cached identity facts stale when this transaction commits: here at once (after the
    commit, so no request can cache the old state again) and on other replicas by NOTIFY,
    which Postgres delivers only if the transaction commits."""
    payload = ",".join(changes)
    await session.execute(
        sa.text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
    )
    if authenticator is None:
        return
    pending: list[str] | None = session.info.get("identity_changes")
    if pending is None:
        pending = []
        session.info["identity_changes"] = pending

        def after_commit(_session: Session) -> None:
            for change in pending:
                authenticator.invalidate(change)
            pending.clear()

        def after_rollback(_session: Session) -> None:
            pending.clear()

        sa.event.listen(session.sync_session, "after_commit", after_commit)
        sa.event.listen(session.sync_session, "after_rollback", after_rollback)
    pending.extend(changes)
