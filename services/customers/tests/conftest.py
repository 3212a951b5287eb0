"""Fixtures of the customers service tests: the app through the kit's harness
(`servicekit.testing.harness`), on a fresh copy of the migrated template, its directory
loaded with the standard organisation (`org`, from the root conftest) over the identity feed,
its time a `FakeClock` (`clock`) that tests move instead of sleeping.

Shared by every feature's tests: keep additions additive.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from customers.archive.extensions import STATE_KEY, ArchiveExtensions
from customers.config import Settings
from customers.main import spec
from servicekit.auth import Principal
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import ServiceClient, serve_service, wait_until
from servicekit.testing.org import Org
from servicekit.testing.tokens import TokenMinter

API = "/api/v1/customers"


@dataclass
class CustomersApp(ServiceClient):
    @property
    def extensions(self) -> ArchiveExtensions:
        """What customers.main wired into the archive (sections, hooks) for this app."""
        extensions: ArchiveExtensions = getattr(self.app.state, STATE_KEY)
        return extensions

    async def create(self, principal: Principal, **fields: Any) -> dict[str, Any]:
        """Create a customer (duplicates confirmed) and return its JSON; fails loudly."""
        body = {"name": f"Customer {uuid.uuid4().hex[:8]}", "region": "EAST", **fields}
        resp = await self.post(API, json=body, params={"confirm_duplicates": "true"}, as_=principal)
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def product(self, admin: Principal, sku: str, **fields: Any) -> dict[str, Any]:
        """Add a product to the catalogue (as an admin) and return its JSON."""
        body = {"sku": sku, "name": f"Product {sku}", **fields}
        resp = await self.post("/api/v1/products", json=body, as_=admin)
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> FakeClock:
    """The service's time: it stands still unless a test moves it (`clock.advance(...)`)."""
    return FakeClock()


@pytest.fixture
async def customers(
    fresh_db: str, minter: TokenMinter, org: Org, clock: FakeClock
) -> AsyncIterator[CustomersApp]:
    async with serve_service(
        spec(), Settings, fresh_db, minter, org=org, clock=clock, client_class=CustomersApp
    ) as svc:
        assert isinstance(svc, CustomersApp)
        yield svc


# The service's periodic passes (dormancy, data-quality freshness) run this often.
PASS_INTERVAL: float = Settings.model_fields["maintenance_interval_seconds"].default


@pytest.fixture
def after_passes(clock: FakeClock) -> Callable[..., Awaitable[Any]]:
    """Wait for what the periodic passes do after the clock moved, moving it on one pass
    interval at a time while the condition does not hold: a pass that was already running
    when the clock moved saw the earlier time, and the next one sees the new. Nothing depends
    on how fast the machine is."""

    async def wait(condition: Callable[[], Awaitable[Any]], *, what: str) -> Any:
        async def passed() -> Any:
            result = await condition()
            if not result:
                clock.advance(PASS_INTERVAL)
            return result

        return await wait_until(passed, within=60, every=0.2, what=what)

    return wait
