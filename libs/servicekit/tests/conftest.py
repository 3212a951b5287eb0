from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from servicekit.db import Database
from servicekit.migrations import upgrade_head
from servicekit.settings import KitSettings
from servicekit.testing.plugin import Databases, template_name
from servicekit.testing.sample.app import MIGRATIONS, SCHEMA, build, settings_for
from servicekit.testing.servers import serve
from servicekit.testing.tokens import TokenMinter, make_principal


@pytest.fixture(scope="session")
def sample_template(databases: Databases) -> Iterator[str]:
    url = databases.create(prefix="kittmpl")
    upgrade_head(MIGRATIONS, url, SCHEMA)
    yield template_name(url)


@pytest.fixture
async def sample_db(databases: Databases, sample_template: str) -> AsyncIterator[str]:
    url = await databases.acreate(template=sample_template)
    yield url
    await databases.adrop(url)


@pytest.fixture
async def db(sample_db: str) -> AsyncIterator[Database]:
    """The kit's own `Database` on a fresh copy of the sample app's database."""
    database = Database(sample_db, app_name="kitsample", schema=SCHEMA)
    await database.connect()
    try:
        yield database
    finally:
        await database.close()


def sample_settings(url: str, minter: TokenMinter) -> KitSettings:
    return settings_for(url, minter.public_pem)


@dataclass
class Sample:
    app: FastAPI
    url: str
    client: httpx.AsyncClient
    minter: TokenMinter
    database_url: str

    def headers(self, principal=None, **kw) -> dict[str, str]:
        return self.minter.headers(principal or make_principal(**kw), "kitsample")


@pytest.fixture
async def sample(sample_db: str, minter: TokenMinter) -> AsyncIterator[Sample]:
    app = build(sample_settings(sample_db, minter))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Sample(app, url, client, minter, sample_db)
