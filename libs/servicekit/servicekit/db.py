"""Database access: an ORM engine for writes, a raw asyncpg pool for the hot read path.

Writes go through an SQLAlchemy `AsyncSession` (unit of work, flush in services, one commit per
request made by `KitRoute`). Reads that sit on the hottest paths use the asyncpg pool directly
with statements compiled once at import: profiling showed the per-request ORM session
(checkout, identity map, object construction) costing about 3x the whole raw request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry
from sqlmodel import SQLModel

# The clock's, importable from here too, where the apps have always read it.
from servicekit.clock import utcnow as utcnow
from servicekit.metrics import POOLS

NAMING_CONVENTION = {
    # Table names, not column labels: a label carries the schema, which names need not repeat.
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


_ASYNCPG_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


def make_metadata(schema: str) -> sa.MetaData:
    return sa.MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def make_registry(schema: str) -> registry:
    """Each app keeps its own registry so two apps' models never share a MetaData."""
    return registry(metadata=make_metadata(schema))


def money_type() -> sa.Numeric[Any]:
    return sa.Numeric(14, 2, asdecimal=True)


def to_sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("DATABASE_URL must be a postgresql:// URL")


def to_asyncpg_dsn(url: str) -> str:
    return "postgresql://" + to_sqlalchemy_url(url)[len("postgresql+asyncpg://") :]


def compile_sql(stmt: sa.sql.ClauseElement) -> str:
    """Render a Core statement once into asyncpg's `$n` form, for the raw read path."""
    return str(stmt.compile(dialect=_ASYNCPG_DIALECT))


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release hook of the read pool. asyncpg's default sends `RESET ALL; UNLISTEN *; ...` on
    every release: a second round trip per read. Read-pool connections never take session
    state (no SET, LISTEN, advisory locks), and asyncpg itself still ends any open transaction
    before calling this, so there is nothing to reset."""


class DirectReads:
    """One-statement reads on connections of their own, for the hottest paths.

    asyncpg's pool costs more CPU per statement than the statement itself on a primary-key
    read (measured: ~200 us vs ~80 us client CPU per `fetchrow`): a proxy object, a shielded
    release task, timeouts and an inactivity timer per acquire. Here a read takes a slot
    (a semaphore: no more connections than slots), an idle connection or a new one, runs the
    statement and puts the connection back. A connection whose statement did not finish
    cleanly (cancelled, broken) is terminated, never reused; a server-side error (bad input,
    statement timeout) leaves it idle and reusable, as no transaction is ever opened here.
    """

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], size: int) -> None:
        self._connect = connect
        self._slots = asyncio.Semaphore(size)
        self._size = size
        self._idle: list[asyncpg.Connection] = []
        self._busy = 0
        self._closed = False

    async def _run(self, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        if self._closed:
            raise asyncpg.InterfaceError("the database is closed")
        async with self._slots:
            conn = None
            while self._idle and conn is None:
                candidate = self._idle.pop()
                conn = None if candidate.is_closed() else candidate
            if conn is None:
                conn = await self._connect()
            self._busy += 1
            try:
                result = await getattr(conn, method)(sql, *args)
            except asyncpg.PostgresError:
                self._give_back(conn)
                raise
            except BaseException:
                self._busy -= 1
                conn.terminate()
                raise
            self._give_back(conn)
            return result

    def _give_back(self, conn: asyncpg.Connection) -> None:
        self._busy -= 1
        if self._closed:
            conn.terminate()
        else:
            self._idle.append(conn)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self._run("fetchrow", sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._run("fetch", sql, args)  # type: ignore[no-any-return]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._run("fetchval", sql, args)

    def stats(self) -> tuple[int, int]:
        return self._busy, len(self._idle)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


class Database:
    """One app's connections: created in `lifespan`, closed on shutdown."""

    def __init__(
        self,
        url: str,
        *,
        app_name: str,
        schema: str,
        pool_size: int = 10,
        max_overflow: int = 10,
        read_pool_size: int = 10,
        statement_timeout_ms: int = 15000,
    ) -> None:
        self.url = url
        self.app_name = app_name
        self.schema = schema
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self._read_pool_size = read_pool_size
        self._statement_timeout_ms = statement_timeout_ms
        self.engine: AsyncEngine | None = None
        self.pool: asyncpg.Pool | None = None
        self._direct: DirectReads | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.outbox_source = app_name

    async def connect(self) -> None:
        server_settings = {
            "application_name": f"fieldforce-{self.app_name}",
            "statement_timeout": str(self._statement_timeout_ms),
        }
        self.engine = create_async_engine(
            to_sqlalchemy_url(self.url),
            pool_size=self._pool_size,
            max_overflow=self._max_overflow,
            pool_pre_ping=True,
            connect_args={"server_settings": server_settings},
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.pool = await asyncpg.create_pool(
            to_asyncpg_dsn(self.url),
            min_size=1,
            max_size=self._read_pool_size,
            server_settings=server_settings,
            reset=_keep_session,
        )
        dsn = to_asyncpg_dsn(self.url)

        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(dsn, server_settings=server_settings)

        self._direct = direct = DirectReads(connect, self._read_pool_size)
        engine, pool = self.engine, self.pool

        def engine_stats() -> tuple[int, int]:
            p: Any = engine.pool
            return p.checkedout(), p.checkedin()

        def read_stats() -> tuple[int, int]:
            idle = pool.get_idle_size()
            return pool.get_size() - idle, idle

        POOLS.sources[f"{self.app_name}/orm"] = engine_stats
        POOLS.sources[f"{self.app_name}/read"] = read_stats
        POOLS.sources[f"{self.app_name}/direct"] = direct.stats

    async def close(self) -> None:
        POOLS.sources.pop(f"{self.app_name}/orm", None)
        POOLS.sources.pop(f"{self.app_name}/read", None)
        POOLS.sources.pop(f"{self.app_name}/direct", None)
        if self._direct is not None:
            await self._direct.close()
        if self.pool is not None:
            await self.pool.close()
        if self.engine is not None:
            await self.engine.dispose()

    def new_session(self) -> AsyncSession:
        assert self.sessionmaker is not None, "Database.connect() was not awaited"
        session = self.sessionmaker()
        session.info["outbox_schema"] = self.schema
        session.info["outbox_source"] = self.outbox_source
        return session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work outside a request (consumers, jobs): commit on success."""
        session = self.new_session()
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
        finally:
            await session.close()

    def read_pool(self) -> asyncpg.Pool:
        assert self.pool is not None, "Database.connect() was not awaited"
        return self.pool

    def direct_reads(self) -> DirectReads:
        """One-statement reads for the hottest paths (see `DirectReads`); up to
        `read_pool_size` connections of their own besides the read pool's."""
        assert self._direct is not None, "Database.connect() was not awaited"
        return self._direct


__all__ = [
    "NAMING_CONVENTION",
    "Database",
    "DirectReads",
    "SQLModel",
    "compile_sql",
    "make_metadata",
    "make_registry",
    "money_type",
    "utcnow",
]
