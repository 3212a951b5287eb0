"""Identity's decisions as a real service sees them: the assembled gateway in front of the
real customers service, over real HTTP."""

from __future__ import annotations

import httpx

from servicekit.testing.tokens import TokenMinter

from .conftest import (
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    assert_problem,
    identity_settings,
    serve_customers,
    serve_gateway,
)


async def _bearer(c: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    r = await c.post("/api/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def test_scopes_revocation_and_deactivation_reach_the_service(
    fresh_db: str, minter: TokenMinter
) -> None:
    async with serve_customers(fresh_db, minter) as customers:
        settings = identity_settings(fresh_db, minter, upstream_customers=customers)
        async with serve_gateway(settings) as (url, _app), httpx.AsyncClient(base_url=url) as c:
            admin = await _bearer(c, IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)

            async def key(*scopes: str) -> dict[str, str]:
                r = await c.post(
                    "/api/v1/api-keys", json={"name": "e2e", "scopes": list(scopes)}, headers=admin
                )
                assert r.status_code == 201, r.text
                return {"X-API-Key": r.json()["key"], "X-Key-Id": r.json()["id"]}

            reader = await key("customers:read")
            other = await key("kpis:read")
            listed = await c.get("/api/v1/customers", headers=reader)
            assert listed.status_code == 200, listed.text
            # The service enforces the key's scopes as the gateway signed them.
            assert_problem(await c.get("/api/v1/customers", headers=other), 403)
            new = {"name": "Acme", "region": "north"}
            assert_problem(await c.post("/api/v1/customers", json=new, headers=reader), 403)

            r = await c.delete(f"/api/v1/api-keys/{reader['X-Key-Id']}", headers=admin)
            assert r.status_code == 204
            assert_problem(await c.get("/api/v1/customers", headers=reader), 401)

            r = await c.post(
                "/api/v1/users",
                json={"email": "ed@example.com", "name": "Ed", "role": "rep", "password": "e" * 10},
                headers=admin,
            )
            assert r.status_code == 201, r.text
            ed = await _bearer(c, "ed@example.com", "e" * 10)
            assert (await c.get("/api/v1/customers", headers=ed)).status_code == 200
            r = await c.post(f"/api/v1/users/{r.json()['id']}/deactivate", headers=admin)
            assert r.status_code == 200
            assert_problem(await c.get("/api/v1/customers", headers=ed), 401)
