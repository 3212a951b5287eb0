"""Sign-in, refresh rotation, logout, token checks, lock-out: real Postgres, real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from servicekit.testing.tokens import TokenMinter

from .conftest import (
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    identity_settings,
    serve_identity,
)


class Api:
    def __init__(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        self.client = client
        self.app = app

    async def login(self, email: str, password: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )

    async def tokens(self, email: str, password: str) -> dict[str, Any]:
        r = await self.login(email, password)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    @staticmethod
    def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
        token = tokens if isinstance(tokens, str) else tokens["access_token"]
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api(fresh_db: str, minter: TokenMinter) -> AsyncIterator[Api]:
    async with (
        serve_identity(identity_settings(fresh_db, minter)) as (url, app),
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield Api(client, app)


async def test_login_and_me(api: Api) -> None:
    tokens = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    assert tokens["token_type"] == "bearer"
    assert 800 <= tokens["expires_in"] <= 900
    assert tokens["refresh_token"]
    me = await api.client.get("/api/v1/me", headers=api.bearer(tokens))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["email"] == IDENTITY_ADMIN_EMAIL
    assert body["role"] == "admin"
    assert "events:read" in body["scopes"]
