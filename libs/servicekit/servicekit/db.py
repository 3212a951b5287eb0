"""Database access: one engine for transactions, two raw asyncpg pools for the kit's own work.

- **The engine** (`new_session`, `session`): SQLAlchemy `AsyncSession`s. Every request's
  transaction (opened lazily and committed once by `KitRoute`) and every unit of work outside
  a request (consumers, jobs) go through it. This is the only way services reach the database.
  A read request's session runs without a transaction (`new_session(autocommit=True)`): each
  statement is one round trip, without BEGIN and COMMIT around it.
- **`reads()`**: an asyncpg pool for reads outside a request's transaction that may lag by a
  replica's delay: event feeds, readiness, outbox stats. Its connections are read-only
  (`default_transaction_read_only`), so pointing it at a replica later changes nothing.
- **`primary()`**: an asyncpg pool on the primary for statements outside a request's
  transaction that write, or that must see the latest commit: rate-limit counters, audit
  lines, login throttles, purges, credential checks.

Statements are SQLAlchemy Core. Those the kit runs on its raw pools are rendered once into
asyncpg's `$n` form with `pool_statement`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel import SQLModel

# The clock's, importable from here too, where the apps have always read it.
from servicekit import pgtime
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


# `session.info` key set on a read's session (`new_session(autocommit=True)`).
AUTOCOMMIT_INFO = "autocommit"

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


def json_text(value: Any) -> str:
    """JSON for the database's json/jsonb columns: UUIDs, times and exact decimals (as their
    strings) the way the API writes them. Non-string keys are allowed only on a second try:
    orjson is slower with them allowed, and few values have them. Text, not orjson's bytes:
    a bulk write keeps thousands of cells until its COPY, and `decode` makes each an
    exact-size string, where orjson's result keeps more memory (bench/README.md)."""
    try:
        return orjson.dumps(value, default=str).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True, slots=True)
class PoolStatement:
    """A Core statement rendered into asyncpg's `$n` form, for the raw pools."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    def args(self, **values: Any) -> list[Any]:
        """The positional arguments, from the bound parameters' names."""
        return [values[n] if n in values else self.defaults[n] for n in self.names]


def pool_statement(stmt: sa.sql.ClauseElement) -> PoolStatement:
    compiled = cast(SQLCompiler, stmt.compile(dialect=_ASYNCPG_DIALECT))
    return PoolStatement(str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params))


def _install_codecs(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.run_async(pgtime.install)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release hook of the raw pools. asyncpg's default sends `RESET ALL; UNLISTEN *; ...` on
    every release: a second round trip per statement. Their connections never take session
    state (no SET, LISTEN, advisory locks), and asyncpg itself still ends any open transaction
    before calling this, so there is nothing to reset."""


class Database:
    """One app's connections: created in `lifespan`, closed on shutdown."""

    def __init__(
        self,
        url: str,
        *,
        app_name: str,
        schema: str,
        pool_size: int = 10,
        max_overflow: int = 0,
        read_pool_size: int = 10,
        primary_pool_size: int = 5,
        statement_timeout_ms: int = 15000,
    ) -> None:
        self.url = url
        self.app_name = app_name
        self.schema = schema
        self._pool_size = pool_size
        self._max_overflow = max_overflow
        self._read_pool_size = read_pool_size
        self._primary_pool_size = primary_pool_size
        self._statement_timeout_ms = statement_timeout_ms
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._autocommit_sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._reads: asyncpg.Pool | None = None
        self._primary: asyncpg.Pool | None = None
        self.outbox_source = app_name

    async def connect(self) -> None:
        server_settings = {
            "application_name": f"fieldforce-{self.app_name}",
            "statement_timeout": str(self._statement_timeout_ms),
        }
        # No pre-ping: with asyncpg it is BEGIN, a ping and ROLLBACK on every checkout, three
        # round trips per request. A connection a database restart broke fails its statement
        # once; SQLAlchemy then discards every connection of the pool made before it.
        self.engine = create_async_engine(
            to_sqlalchemy_url(self.url),
            pool_size=self._pool_size,
            max_overflow=self._max_overflow,
            connect_args={"server_settings": server_settings},
            json_serializer=json_text,
            json_deserializer=orjson.loads,
        )
        # The sessions' connections encode times with the kit's codec (`pgtime`): a bulk
        # write's times were the largest piece of its encoding.
        sa.event.listen(self.engine.sync_engine, "connect", _install_codecs)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit_sessionmaker = async_sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )
        dsn = to_asyncpg_dsn(self.url)
        self._reads = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=self._read_pool_size,
            server_settings={**server_settings, "default_transaction_read_only": "on"},
            reset=_keep_session,
        )
        self._primary = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=self._primary_pool_size,
            server_settings=server_settings,
            reset=_keep_session,
        )
        engine = self.engine

        def engine_stats() -> tuple[int, int]:
            p: Any = engine.pool
            return p.checkedout(), p.checkedin()

        POOLS.sources[f"{self.app_name}/session"] = engine_stats
        POOLS.sources[f"{self.app_name}/reads"] = _pool_stats(self._reads)
        POOLS.sources[f"{self.app_name}/primary"] = _pool_stats(self._primary)

    async def close(self) -> None:
        for name in ("session", "reads", "primary"):
            POOLS.sources.pop(f"{self.app_name}/{name}", None)
        for pool in (self._reads, self._primary):
            if pool is not None:
                await pool.close()
        if self.engine is not None:
            await self.engine.dispose()

    def new_session(self, *, autocommit: bool = False) -> AsyncSession:
        """A session in one transaction, or (`autocommit`) one whose statements each commit on
        their own: for reads, which need no BEGIN and COMMIT around them."""
        makers = self._autocommit_sessionmaker if autocommit else self.sessionmaker
        assert makers is not None, "Database.connect() was not awaited"
        session = makers()
        session.info["outbox_schema"] = self.schema
        session.info["outbox_source"] = self.outbox_source
        if autocommit:
            session.info[AUTOCOMMIT_INFO] = True
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

    def reads(self) -> asyncpg.Pool:
        """Read-only statements that may lag by a replica's delay (see the module)."""
        assert self._reads is not None, "Database.connect() was not awaited"
        return self._reads

    def primary(self) -> asyncpg.Pool:
        """Statements outside a request's transaction that write or must see the latest
        commit (see the module)."""
        assert self._primary is not None, "Database.connect() was not awaited"
        return self._primary


def _pool_stats(pool: asyncpg.Pool) -> Any:
    def stats() -> tuple[int, int]:
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle

    return stats


__all__ = [
    "AUTOCOMMIT_INFO",
    "NAMING_CONVENTION",
    "Database",
    "PoolStatement",
    "SQLModel",
    "json_text",
    "make_metadata",
    "make_registry",
    "money_type",
    "pool_statement",
    "utcnow",
]
