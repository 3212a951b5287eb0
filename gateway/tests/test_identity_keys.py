"""API keys (secret once, scopes, last use, revocation), the audit trail, the bootstrap, and
identity through the assembled gateway."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from servicekit.testing.tokens import TokenMinter

from .conftest import (
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    Api,
    ApiFactory,
    assert_problem,
    identity_settings,
    serve_gateway,
)

KEY_FIELDS = {"id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at"}


async def test_api_key_lifecycle(api: Api) -> None:
    admin = await api.admin()
    r = await api.client.post(
        "/api/v1/api-keys",
        json={"name": "CRM sync", "scopes": ["leads:write", "customers:read", "leads:write"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["key"]
    assert set(created) == KEY_FIELDS | {"key"}
    assert created["scopes"] == ["customers:read", "leads:write"]
    assert secret.startswith(created["prefix"]) and len(secret) > 40
    assert r.headers["cache-control"] == "no-store"

    # Used: the key is a principal with exactly its scopes.
    me = await api.me({"X-API-Key": secret})
    assert me.status_code == 200, me.text
    assert me.json() == {
        "kind": "key",
        "id": created["id"],
        "email": None,
        "name": "CRM sync",
        "role": "integration",
        "team_id": None,
        "active": True,
        "visible_team_ids": [],
        "scopes": ["customers:read", "leads:write"],
    }
    # Keys are for integrations, not for managing identity.
    assert_problem(await api.client.get("/api/v1/users", headers={"X-API-Key": secret}), 403)
    assert_problem(await api.client.get("/api/v1/api-keys", headers={"X-API-Key": secret}), 403)

    # Listed without the secret, with the last use recorded (batched, not per request).
    listed = (await api.client.get("/api/v1/api-keys", headers=admin)).json()
    (row,) = [k for k in listed["items"] if k["id"] == created["id"]]
    assert set(row) == KEY_FIELDS
    assert row["last_used_at"] is not None and row["revoked_at"] is None
    assert secret not in str(listed)

    # Revoked: refused at once.
    r = await api.client.post(f"/api/v1/api-keys/{created['id']}/revoke", headers=admin)
    assert r.status_code == 200 and r.json()["revoked_at"] is not None
    assert "revoked" in assert_problem(await api.me({"X-API-Key": secret}), 401)["detail"]
    again = await api.client.post(f"/api/v1/api-keys/{created['id']}/revoke", headers=admin)
    assert again.json()["revoked_at"] == r.json()["revoked_at"]

    # DELETE revokes as well.
    other = (
        await api.client.post(
            "/api/v1/api-keys", json={"name": "BI", "scopes": ["events:read"]}, headers=admin
        )
    ).json()
    assert (await api.me({"X-API-Key": other["key"]})).status_code == 200
    r = await api.client.delete(f"/api/v1/api-keys/{other['id']}", headers=admin)
    assert r.status_code == 204
    assert_problem(await api.me({"X-API-Key": other["key"]}), 401)
    fetched = await api.client.get(f"/api/v1/api-keys/{other['id']}", headers=admin)
    assert fetched.json()["revoked_at"] is not None
    active = (await api.client.get("/api/v1/api-keys?include_revoked=false", headers=admin)).json()
    assert {created["id"], other["id"]}.isdisjoint({k["id"] for k in active["items"]})

    assert_problem(await api.me({"X-API-Key": "ffk_" + secrets.token_urlsafe(32)}), 401)
    missing = await api.client.get(
        "/api/v1/api-keys/00000000-0000-0000-0000-000000000000", headers=admin
    )
    assert_problem(missing, 404)


async def test_api_key_input_is_checked(api: Api) -> None:
    admin = await api.admin()
    for body, field in [
        ({"name": "x", "scopes": ["leads:write", "root:everything"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "", "scopes": ["leads:read"]}, "name"),
        ({"scopes": ["leads:read"]}, "name"),
    ]:
        r = await api.client.post("/api/v1/api-keys", json=body, headers=admin)
        problem = assert_problem(r, 422)
        assert any(e["loc"][-1] == field for e in problem["errors"]), problem


async def test_idempotent_user_creation(api: Api) -> None:
    admin = await api.admin()
    body = {"email": "ida@example.com", "name": "Ida", "role": "rep", "password": "x" * 12}
    headers = {**admin, "Idempotency-Key": "create-ida-1"}
    first = await api.client.post("/api/v1/users", json=body, headers=headers)
    second = await api.client.post("/api/v1/users", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    users = (await api.client.get("/api/v1/users", headers=admin)).json()
    assert [u["email"] for u in users["items"]].count("ida@example.com") == 1
    anonymous = await api.client.post(
        "/api/v1/users", json=body, headers={"Idempotency-Key": "create-ida-2"}
    )
    assert_problem(anonymous, 401)
    # Signing in carries no caller to key answers by: the header is ignored, not refused.
    for attempt in ("k-1", "k-1"):
        r = await api.client.post(
            "/api/v1/auth/token",
            data={"username": IDENTITY_ADMIN_EMAIL, "password": IDENTITY_ADMIN_PASSWORD},
            headers={"Idempotency-Key": attempt},
        )
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers


async def test_audit_lists_the_events(api: Api) -> None:
    admin = await api.admin()
    assert (await api.login(IDENTITY_ADMIN_EMAIL, "wrong-password")).status_code == 401
    user = (
        await api.client.post(
            "/api/v1/users",
            json={"email": "al@example.com", "name": "Al", "role": "rep", "password": "p" * 10},
            headers=admin,
        )
    ).json()
    key = (
        await api.client.post(
            "/api/v1/api-keys", json={"name": "audit me", "scopes": ["kpis:read"]}, headers=admin
        )
    ).json()
    await api.client.delete(f"/api/v1/api-keys/{key['id']}", headers=admin)
    await api.client.post(f"/api/v1/users/{user['id']}/deactivate", headers=admin)

    r = await api.client.get("/api/v1/audit", headers=admin)
    assert r.status_code == 200, r.text
    trail: list[dict[str, Any]] = r.json()["items"]
    actions = [a["action"] for a in trail]
    # Newest first.
    assert actions[:4] == ["user.deactivated", "api_key.revoked", "api_key.created", "user.created"]
    assert {"login.succeeded", "login.failed", "user.bootstrapped"} <= set(actions)
    failed = next(a for a in trail if a["action"] == "login.failed")
    assert failed["detail"]["email"] == IDENTITY_ADMIN_EMAIL
    assert failed["client_address"] == "127.0.0.1"
    deactivated = trail[0]
    assert deactivated["subject_id"] == user["id"] and deactivated["actor_type"] == "user"
    assert {a["subject_id"] for a in trail if a["action"].startswith("api_key.")} >= {key["id"]}

    logins = (await api.client.get("/api/v1/audit?action=login", headers=admin)).json()
    assert {a["action"] for a in logins["items"]} == {"login.succeeded", "login.failed"}
    page = (await api.client.get("/api/v1/audit?limit=2", headers=admin)).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await api.client.get(
        "/api/v1/audit", params={"limit": 200, "cursor": page["next_cursor"]}, headers=admin
    )
    assert [a["id"] for a in page["items"] + rest.json()["items"]] == [a["id"] for a in trail]


async def test_bootstrap_creates_the_admin_and_the_events_key_once(
    make_api: ApiFactory,
) -> None:
    events_key = "ffk_" + secrets.token_urlsafe(32)
    async with make_api(events_api_key=events_key) as api:
        admin = await api.admin()
        me = await api.me({"X-API-Key": events_key})
        assert me.status_code == 200 and me.json()["scopes"] == ["events:read"]
    # A second start (another replica, a restart) finds both and creates nothing.
    async with make_api(events_api_key=events_key, bootstrap_admin_password="other-pw-1") as api:
        admin = await api.admin()
        keys = (await api.client.get("/api/v1/api-keys", headers=admin)).json()["items"]
        (events,) = [k for k in keys if k["name"] == "internal event consumers"]
        assert events["scopes"] == ["events:read"] and events_key.startswith(events["prefix"])
        admins = (await api.client.get("/api/v1/users?role=admin", headers=admin)).json()
        assert [u["email"] for u in admins["items"]] == [IDENTITY_ADMIN_EMAIL]


async def test_bootstrap_generates_a_password_when_none_is_given(
    make_api: ApiFactory, capfd: Any
) -> None:
    async with make_api(bootstrap_admin_password="") as api:
        printed = capfd.readouterr().err
        line = next(x for x in printed.splitlines() if "first admin" in x and "password: " in x)
        password = line.rsplit("password: ", 1)[1].strip()
        assert len(password) >= 20
        assert (await api.login(IDENTITY_ADMIN_EMAIL, password)).status_code == 200
        assert (await api.login(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)).status_code == 401


async def test_identity_through_the_assembled_gateway(fresh_db: str, minter: TokenMinter) -> None:
    """gateway.main: login, /me, and identity's feed read through the public path with the
    events key, as the services follow it."""
    events_key = "ffk_" + secrets.token_urlsafe(32)
    settings = identity_settings(fresh_db, minter, events_api_key=events_key)
    async with serve_gateway(settings) as (url, _app), httpx.AsyncClient(base_url=url) as c:
        r = await c.post(
            "/api/v1/auth/token",
            data={"username": IDENTITY_ADMIN_EMAIL, "password": IDENTITY_ADMIN_PASSWORD},
        )
        assert r.status_code == 200, r.text
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = await c.post(
            "/api/v1/users",
            json={"email": "gail@example.com", "name": "Gail", "role": "rep", "password": "g" * 10},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        gail = r.json()
        assert (await c.get("/api/v1/me", headers=admin)).json()["role"] == "admin"
        feed = await c.get("/api/v1/events/identity", headers={"X-API-Key": events_key})
        assert feed.status_code == 200, feed.text
        created = [e for e in feed.json()["items"] if e["type"] == "user.created"]
        assert gail["id"] in {e["subject"] for e in created}
        # The page names the feed's head: here its last event, the page holding them all.
        assert not feed.json()["has_more"]
        assert feed.json()["head"] == feed.json()["items"][-1]["cursor"]
        assert_problem(await c.get("/api/v1/me", headers={"X-API-Key": "ffk_wrong"}), 401)
