"""Fixtures of the customers service tests: the app in-process over real HTTP, on a fresh copy
of the migrated template, with tokens minted the way the gateway mints them.

Shared by every feature's tests: keep additions additive.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from customers.archive.ownership import on_identity_change
from customers.config import Settings
from customers.main import create_app
from customers.models import directory
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.directory import IdentityFollower
from servicekit.outbox import Event
from servicekit.testing.servers import serve
from servicekit.testing.tokens import TokenMinter, make_principal

API = "/api/v1/customers"


@dataclass
class CustomersApp:
    app: FastAPI
    url: str
    client: httpx.AsyncClient
    minter: TokenMinter
    database_url: str

    def headers(self, principal: Principal, **extra: str) -> dict[str, str]:
        return {**self.minter.headers(principal, "customers"), **extra}

    async def create(self, principal: Principal, **fields: Any) -> dict[str, Any]:
        """Create a customer (duplicates confirmed) and return its JSON; fails loudly."""
        body = {"name": f"Customer {uuid.uuid4().hex[:8]}", "region": "EAST", **fields}
        resp = await self.client.post(
            API, json=body, params={"confirm_duplicates": "true"}, headers=self.headers(principal)
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def identity_event(self, type_: str, **data: Any) -> None:
        """Apply one identity event with the consumer's own handler, in its own transaction."""
        event = Event(
            id=uuid.uuid4(),
            type=type_,
            source="identity",
            subject=str(data.get("id")),
            time=utcnow(),
            data=data,
            dataversion="1",
            cursor="",
        )
        follower = IdentityFollower(directory, [on_identity_change], "customers.identity")
        async with self.app.state.db.session() as session:
            await follower(session, event)

    async def known_user(self, principal: Principal, **data: Any) -> None:
        """Tell the directory about a user (as identity's user.created would)."""
        await self.identity_event(
            "user.created",
            id=principal.sub,
            role=principal.role,
            team_id=principal.team_id,
            active=True,
            **data,
        )

    async def events(self, types: set[str] | None = None) -> list[dict[str, Any]]:
        """Every event in this app's feed so far (optionally of some types), read over HTTP."""
        reader = make_principal("integration", kind="key", scopes=["events:read"])
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {"limit": "1000", **({"after": after} if after else {})}
            resp = await self.client.get("/events", params=params, headers=self.headers(reader))
            assert resp.status_code == 200, resp.text
            doc = resp.json()
            out.extend(doc["items"])
            after = doc["next_cursor"]
            if not doc["has_more"]:
                break
        return [e for e in out if types is None or e["type"] in types]


@dataclass
class Org:
    """Two teams (north, with a sub-team; south), their managers and reps."""

    team_north: str
    team_north_sub: str
    team_south: str
    admin: Principal
    manager_north: Principal  # sees north and its sub-team
    manager_south: Principal
    rep_a: Principal  # north
    rep_b: Principal  # north
    rep_sub: Principal  # north's sub-team
    rep_south: Principal


@pytest.fixture
def org() -> Org:
    north, sub, south = (str(uuid.uuid4()) for _ in range(3))
    return Org(
        team_north=north,
        team_north_sub=sub,
        team_south=south,
        admin=make_principal("admin", team_id=north, visible_team_ids=[north, sub, south]),
        manager_north=make_principal("manager", team_id=north, visible_team_ids=[north, sub]),
        manager_south=make_principal("manager", team_id=south),
        rep_a=make_principal("rep", team_id=north),
        rep_b=make_principal("rep", team_id=north),
        rep_sub=make_principal("rep", team_id=sub),
        rep_south=make_principal("rep", team_id=south),
    )


def customers_settings(database_url: str, minter: TokenMinter, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "internal_token_public_key": minter.public_pem,
        "gateway_url": "",
        "events_api_key": "",
        "outbox_metrics_interval_seconds": 0.5,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def customers(fresh_db: str, minter: TokenMinter) -> AsyncIterator[CustomersApp]:
    app = create_app(customers_settings(fresh_db, minter))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield CustomersApp(app, url, client, minter, fresh_db)
