"""Fixtures of the visits service tests: the app through the kit's harness, on a fresh copy of
the migrated template, its directory loaded with the standard organisation (`org`), its
customers read model fed over a stand-in of the customers feed (`add_customer` announces a
customer as the customers service would), its time a `FakeClock` the tests move.

Shared by every feature's tests: keep additions additive.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from servicekit.auth import Principal
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import ServiceClient, StandInFeeds, serve_service
from servicekit.testing.org import Org
from servicekit.testing.tokens import TokenMinter
from visits.config import Settings
from visits.customer_facts.service import SOURCE as CUSTOMERS_FEED
from visits.main import spec

# A Wednesday, 18:00 in Shanghai: tests read days and hours in the company's zone.
START = datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
ZONE = "Asia/Shanghai"
# A point in Shanghai, and one about 1.1 km north of it.
HERE = {"lat": 31.2304, "lon": 121.4737}
FAR = {"lat": 31.2404, "lon": 121.4737}


@dataclass
class VisitsApp(ServiceClient):
    HERE = HERE
    FAR = FAR

    @staticmethod
    def at(day_offset: int = 0, hour: int = 10, minute: int = 0) -> str:
        """An ISO moment (UTC, "Z") on the company day START + `day_offset`, at `hour` in the
        company's time (Shanghai)."""
        local = START.astimezone(ZoneInfo(ZONE)).replace(hour=hour, minute=minute, second=0)
        moment = (local + timedelta(days=day_offset)).astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z")

    @staticmethod
    def day(offset: int = 0) -> str:
        """The company day START + `offset` (YYYY-MM-DD)."""
        return (START.astimezone(ZoneInfo(ZONE)).date() + timedelta(days=offset)).isoformat()

    async def add_customer(
        self,
        owner: Principal | None,
        *,
        event: str = "customer.created",
        customer_id: uuid.UUID | None = None,
        **facts: Any,
    ) -> dict[str, Any]:
        """Announce a customer on the customers feed (payload as the customers service builds
        it) and wait until the read model has it; returns the facts."""
        cid = customer_id or uuid.uuid4()
        data: dict[str, Any] = {
            "id": str(cid),
            "code": f"EAST-{cid.hex[:6].upper()}",
            "name": f"Customer {cid.hex[:6]}",
            "region": "EAST",
            "level": "B",
            "status": "active",
            "owner_id": owner.sub if owner else None,
            "team_id": owner.team_id if owner else None,
            "industry": None,
            "source": None,
            "estimated_potential": None,
            "version": 1,
            "tags": [],
            "location": HERE,
            **facts,
        }
        await self.feed_event(CUSTOMERS_FEED, event, **data)
        return data

    async def ok(self, method: str, path: str, status: int = 200, **kw: Any) -> Any:
        resp = await self.request(method, path, **kw)
        assert resp.status_code == status, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


Serve = Callable[..., AbstractAsyncContextManager[VisitsApp]]


@pytest.fixture
def serve_visits(fresh_db: str, minter: TokenMinter, clock: FakeClock) -> Serve:
    """Serve the app on the test's database (again, e.g. after it was stopped): `org` loads
    the organisation, `feeds` hands in the stand-ins of a previous run."""

    @asynccontextmanager
    async def serve(
        org: Org | None = None, feeds: StandInFeeds | None = None
    ) -> AsyncIterator[VisitsApp]:
        async with serve_service(
            spec(),
            Settings,
            fresh_db,
            minter,
            org=org,
            clock=clock,
            client_class=VisitsApp,
            feeds=feeds,
            time_zone=ZONE,
        ) as svc:
            assert isinstance(svc, VisitsApp)
            yield svc

    return serve


@pytest.fixture
async def visits(serve_visits: Serve, org: Org) -> AsyncIterator[VisitsApp]:
    async with serve_visits(org=org) as svc:
        yield svc
