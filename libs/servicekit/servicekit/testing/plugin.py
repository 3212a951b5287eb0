"""pytest plugin (loaded with `-p servicekit.testing.plugin`): the database fixtures."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator

import asyncpg
import pytest

from servicekit.auth import generate_keypair
from servicekit.db import to_asyncpg_dsn
from servicekit.devdb import throwaway_postgres
from servicekit.testing.tokens import TokenMinter


def _with_database(url: str, name: str) -> str:
    base, _, _ = to_asyncpg_dsn(url).rpartition("/")
    return f"{base}/{name}"


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(to_asyncpg_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


class Databases:
    """Creates databases on the test server (fresh, or copies of a migrated template)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create(self, template: str | None = None, prefix: str = "fft") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        asyncio.run(_admin(self.admin_url, sql))
        self.created.append(name)
        return _with_database(self.admin_url, name)

    async def acreate(self, template: str | None = None, prefix: str = "fft") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        await _admin(self.admin_url, sql)
        self.created.append(name)
        return _with_database(self.admin_url, name)

    async def adrop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        await _admin(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        if self.created:
            asyncio.run(
                _admin(
                    self.admin_url,
                    *[f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in self.created],
                )
            )


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """DATABASE_URL when set (tests then create and drop their own databases on that server),
    else a throwaway embedded PostgreSQL in a temporary folder, on a free port.

    The folder is our own, not pytest's rotating temp root, which a concurrent run may prune
    (and which is private to its user: the server's own user could not enter it as root).
    """
    given = os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    with throwaway_postgres() as server:
        yield server.url


@pytest.fixture(scope="session")
def databases(pg_admin_url: str) -> Iterator[Databases]:
    dbs = Databases(pg_admin_url)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def minter() -> TokenMinter:
    private, public = generate_keypair()
    return TokenMinter(private, public)


def template_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


FreshDb = Callable[[], str]
