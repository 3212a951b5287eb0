"""Fixtures for every app's tests and the end-to-end tests.

- `fieldforce_template`: a database migrated to head for all five schemas, made once.
- `fresh_db`: a copy of it for one test (isolation by a fresh database from the template).
- `org`: a team tree with managers and reps (`servicekit.testing.org`), for the harness.
- `stack`: the five apps as real processes on free ports over real HTTP, one per session,
  on their own copy of the template; tests on it isolate themselves with unique data.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from fieldforce.apps import APPS
from fieldforce.stack import Stack, migrate_all
from servicekit.testing.org import Org, standard_org
from servicekit.testing.plugin import Databases, template_name
from servicekit.testing.tokens import TokenMinter

ADMIN_EMAIL = "admin@example.com"
# Kept in the environment: test modules that `import conftest` may load this file a second
# time, and both copies must agree on the secrets the stack was started with.
ADMIN_PASSWORD = os.environ.setdefault(
    "FIELDFORCE_TEST_ADMIN_PASSWORD", "admin-" + secrets.token_urlsafe(12)
)
EVENTS_API_KEY = os.environ.setdefault(
    "FIELDFORCE_TEST_EVENTS_API_KEY", "ffk_" + secrets.token_urlsafe(32)
)


@pytest.fixture(scope="session")
def fieldforce_template(databases: Databases) -> str:
    url = databases.create(prefix="fftmpl")
    migrate_all(url)
    return template_name(url)


@pytest.fixture
async def fresh_db(databases: Databases, fieldforce_template: str) -> AsyncIterator[str]:
    url = await databases.acreate(template=fieldforce_template)
    yield url
    await databases.adrop(url)


@pytest.fixture
def org() -> Org:
    """The standard organisation (`servicekit.testing.org.standard_org`), fresh ids each test;
    services' harness fixtures load it into their directory."""
    return standard_org()


def stack_env(minter: TokenMinter) -> dict[str, str]:
    return {
        "INTERNAL_TOKEN_PUBLIC_KEY": minter.public_pem,
        "GATEWAY_INTERNAL_TOKEN_PRIVATE_KEY": minter.private_pem,
        "GATEWAY_JWT_SECRET": secrets.token_urlsafe(48),
        "BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
        "BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "EVENTS_API_KEY": EVENTS_API_KEY,
    }


@pytest.fixture(scope="session")
def stack(
    databases: Databases,
    fieldforce_template: str,
    minter: TokenMinter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    url = databases.create(template=fieldforce_template, prefix="ffstack")
    stack = Stack(
        database_url=url,
        ports=dict.fromkeys((a.name for a in APPS), 0),
        log_dir=tmp_path_factory.mktemp("stack-logs"),
        env=stack_env(minter),
    )
    try:
        stack.start()
        stack.wait_ready(timeout=60)
        yield stack
    finally:
        stack.stop()


__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "EVENTS_API_KEY", "migrate_all"]
