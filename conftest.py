"""Fixtures for every app's tests and the end-to-end tests, and the end-to-end tests' helpers.

- `fieldforce_template`: a database migrated to head for all five schemas, made once.
- `fresh_db`: a copy of it for one test (isolation by a fresh database from the template).
- `org`: a team tree with managers and reps (`servicekit.testing.org`), for the harness.
- `stack`: the five apps as real processes on free ports over real HTTP, one per session,
  on their own copy of the template; tests on it isolate themselves with unique data.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldforce.apps import APPS
from fieldforce.stack import Stack, migrate_all
from servicekit.testing.harness import wait_until
from servicekit.testing.org import Org, standard_org
from servicekit.testing.plugin import Databases, template_name
from servicekit.testing.tokens import TokenMinter


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `long` first, in their order: with test workers (`make test`), the
    one that takes them runs them while the others share the rest, instead of a test of
    minutes left for the end, running alone."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


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


@contextlib.contextmanager
def running_stack(
    databases: Databases,
    template: str,
    minter: TokenMinter,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[Stack]:
    """The five apps on their own copy of the template (dropped with the session's databases)."""
    url = databases.create(template=template, prefix="ffstack")
    stack = Stack(
        database_url=url,
        ports=dict.fromkeys((a.name for a in APPS), 0),
        log_dir=log_dir,
        env={**stack_env(minter), **(env or {})},
    )
    try:
        stack.start()
        stack.wait_ready(timeout=60)
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def stack(
    databases: Databases,
    fieldforce_template: str,
    minter: TokenMinter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    # The suite signs its people in from one address, faster than 120 a minute on a quick
    # machine; the anonymous limit itself is pinned by the gateway's tests and the contract run.
    with running_stack(
        databases,
        fieldforce_template,
        minter,
        tmp_path_factory.mktemp("stack-logs"),
        {"GATEWAY_RATE_LIMIT_ANONYMOUS": "100000/60"},
    ) as running:
        yield running


@pytest.fixture
async def gw(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the running stack's gateway: the only door the end-to-end tests use."""
    async with httpx.AsyncClient(base_url=stack.running["gateway"].url, timeout=60) as client:
        yield client


@pytest.fixture
def admin_login(stack: Stack) -> tuple[str, str]:
    """The stack's bootstrap admin, read from the env it was started with (importing this
    conftest again would re-run it and draw a new random password)."""
    return stack.env["BOOTSTRAP_ADMIN_EMAIL"], stack.env["BOOTSTRAP_ADMIN_PASSWORD"]


# --- helpers of the end-to-end tests (`from conftest import ...`) ------------------------------


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    """The bearer header of a user signed in through the gateway."""
    resp = await client.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json() if resp.content else None


async def wait_for(check: Callable[[], Awaitable[Any]], within: float = 20.0) -> Any:
    """The first truthy answer of `check`, asked every 0.2 s for at most `within` seconds."""
    return await wait_until(check, within=within, every=0.2)


async def organisation(
    gw: httpx.AsyncClient, admin_login: tuple[str, str], password: str
) -> dict[str, Any]:
    """A manager leading team north (with a sub-team), two reps in north, one in the sub-team,
    and a manager leading south; every name unique so tests sharing a stack never collide.
    Everyone signs in with `password`; `h` holds their bearer headers."""
    admin = await login(gw, *admin_login)
    tag = uuid.uuid4().hex[:8]

    async def user(role: str, name: str, team_id: str | None = None) -> dict[str, Any]:
        body = {
            "email": f"{name}-{tag}@example.com",
            "name": f"{name} {tag}",
            "role": role,
            "password": password,
        }
        if team_id:
            body["team_id"] = team_id
        created: dict[str, Any] = await ok(
            await gw.post("/api/v1/users", json=body, headers=admin), 201
        )
        return created

    async def team(name: str, **fields: Any) -> dict[str, Any]:
        made: dict[str, Any] = await ok(
            await gw.post("/api/v1/teams", json={"name": f"{name} {tag}", **fields}, headers=admin),
            201,
        )
        return made

    manager = await user("manager", "manager")
    other_manager = await user("manager", "other")
    north = await team("North", manager_id=manager["id"])
    sub = await team("North sub", parent_id=north["id"])
    south = await team("South", manager_id=other_manager["id"])
    for person, leads in ((manager, north), (other_manager, south)):
        await ok(
            await gw.patch(
                f"/api/v1/users/{person['id']}", json={"team_id": leads["id"]}, headers=admin
            )
        )
    people = {
        "manager": manager,
        "other_manager": other_manager,
        "rep_a": await user("rep", "rep-a", north["id"]),
        "rep_b": await user("rep", "rep-b", north["id"]),
        "rep_sub": await user("rep", "rep-sub", sub["id"]),
    }
    headers = {k: await login(gw, v["email"], password) for k, v in people.items()}
    return {
        "admin": admin,
        "teams": {"north": north, "sub": sub, "south": south},
        "users": people,
        "h": headers,
    }


__all__ = [
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "EVENTS_API_KEY",
    "login",
    "migrate_all",
    "ok",
    "organisation",
    "running_stack",
    "wait_for",
]
