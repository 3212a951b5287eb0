"""Fixtures of the opportunities service tests: the app through the kit's harness, on a fresh
copy of the migrated template, its directory loaded with the standard organisation (`org`),
its time a `FakeClock` (`clock`) that tests move instead of sleeping. Customers reach its
index over a stand-in of the customers feed (`customer(...)`), as the customers service
announces them.

Shared by every feature's tests: keep additions additive.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from opportunities.config import Settings
from opportunities.main import spec
from servicekit.auth import Principal
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import ServiceClient, serve_service
from servicekit.testing.org import Org
from servicekit.testing.tokens import TokenMinter

LEADS = "/api/v1/leads"
OPPORTUNITIES = "/api/v1/opportunities"
MODELS = "/api/v1/scoring-models"
RULES = "/api/v1/leads/assignment-rules"
# Inputs the default model scores 100 (qualified) and 25 (nurtured), of 100 points.
HOT = {
    "need_urgency": "high",
    "purchase_timing": "within_1_month",
    "purchase_cycle": "short",
    "decision_maker_identified": "yes",
    "budget_confirmed": "yes",
}
COLD = {"need_urgency": "low", "purchase_timing": "later", "decision_maker_identified": "no"}


def key(*scopes: str) -> Principal:
    """An integration's API key with these scopes, as the gateway vouches for it."""
    return Principal(
        sub=str(uuid.uuid4()),
        kind="key",
        role="integration",
        scopes=frozenset(scopes),
        name="test integration",
    )


@dataclass
class OpportunitiesApp(ServiceClient):
    HOT = HOT
    COLD = COLD

    async def ok(self, resp: Any, status: int = 200) -> Any:
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    async def push(self, as_: Principal | None = None, **fields: Any) -> dict[str, Any]:
        """Push one lead (a web form's, qualified unless told otherwise); its JSON."""
        body = {
            "source": "web_form",
            "external_id": uuid.uuid4().hex,
            "company": f"Company {uuid.uuid4().hex[:8]}",
            "region": "east",
            "evaluation": HOT,
            **fields,
        }
        resp = await self.post(LEADS, json=body, as_=as_ or key("leads:write"))
        assert resp.status_code in (200, 201), resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def bulk(
        self, rows: Iterable[dict[str, Any]], as_: Principal | None = None, **kwargs: Any
    ) -> Any:
        return await self.post(
            LEADS + "/bulk", json={"rows": list(rows)}, as_=as_ or key("leads:write"), **kwargs
        )

    async def lead(self, lead_id: str, as_: Principal) -> dict[str, Any]:
        return await self.ok(await self.get(f"{LEADS}/{lead_id}", as_=as_))  # type: ignore[no-any-return]

    async def rule(self, as_: Principal, **fields: Any) -> dict[str, Any]:
        return await self.ok(await self.post(RULES, json=fields, as_=as_), 201)  # type: ignore[no-any-return]

    async def customer(self, **facts: Any) -> dict[str, Any]:
        """Announce a customer on the customers feed (as the customers service does) and wait
        until the app's index holds it."""
        data = {
            "id": str(uuid.uuid4()),
            "code": f"EAST-C-{uuid.uuid4().int % 10**6:06d}",
            "name": f"Customer {uuid.uuid4().hex[:8]}",
            "region": "EAST",
            "level": "C",
            "status": "active",
            "owner_id": None,
            "team_id": None,
            "phone": None,
            "email": None,
            "version": 1,
            **facts,
        }
        await self.feed_event("customers", "customer.created", **data)
        return data

    async def assigned_lead(self, manager: Principal, rep: Principal, **fields: Any) -> Any:
        """A lead (qualified or nurtured: no rule placed it) that `manager` assigns to `rep`."""
        lead = await self.push(**fields)
        assert lead["status"] in ("qualified", "nurturing"), lead
        resp = await self.post(
            f"{LEADS}/{lead['id']}/assign", json={"owner_id": rep.sub}, as_=manager
        )
        return await self.ok(resp)

    async def opportunity(
        self,
        manager: Principal,
        rep: Principal,
        lead: dict[str, Any] | None = None,
        **convert: Any,
    ) -> dict[str, Any]:
        """An opportunity of `rep`'s, converted from a lead (`lead`: its fields) whose customer
        is known already."""
        phone = f"138{uuid.uuid4().int % 10**8:08d}"
        customer = await self.customer(phone=phone)
        lead = await self.assigned_lead(manager, rep, **{**(lead or {}), "phone": phone})
        assert lead["customer_id"] == customer["id"]
        resp = await self.post(f"{LEADS}/{lead['id']}/convert", json=convert, as_=rep)
        return (await self.ok(resp, 201))["opportunity"]  # type: ignore[no-any-return]

    async def move(self, opportunity_id: str, as_: Principal, stage: str, **body: Any) -> Any:
        return await self.post(
            f"{OPPORTUNITIES}/{opportunity_id}/stage", json={"stage": stage, **body}, as_=as_
        )


@pytest.fixture(name="key")
def key_factory() -> Any:
    """`key(*scopes)`: an integration's API key principal (test modules cannot import this
    file: the suite runs with importlib, beside the other apps' conftests)."""
    return key


@pytest.fixture
def clock() -> FakeClock:
    """The service's time: it stands still unless a test moves it (`clock.advance(...)`)."""
    return FakeClock()


@pytest.fixture
async def opportunities(
    fresh_db: str, minter: TokenMinter, org: Org, clock: FakeClock
) -> AsyncIterator[OpportunitiesApp]:
    async with serve_service(
        spec(),
        Settings,
        fresh_db,
        minter,
        org=org,
        clock=clock,
        client_class=OpportunitiesApp,
        # The usual times are learned when a test asks (`learn`), not on a timer.
        norms_refresh_seconds=10**9,
    ) as svc:
        assert isinstance(svc, OpportunitiesApp)
        yield svc
