"""Users and teams: who sees and changes whom, deactivation at once, identity's event feed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from servicekit.testing.tokens import TokenMinter, make_principal

from .conftest import Api, assert_problem, identity_settings, serve_identity

PASSWORD = "correct-horse-battery"


@dataclass
class Org:
    """root ── north (led by manager) ── north_east
    └─ south (a sibling of north)"""

    admin: dict[str, str]
    root: str
    north: str
    north_east: str
    south: str
    manager: dict[str, Any]
    rep_ne: dict[str, Any]
    rep_south: dict[str, Any]


async def create_team(api: Api, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await api.client.post("/api/v1/teams", json=body, headers=admin)
    assert r.status_code == 201, r.text
    team: dict[str, Any] = r.json()
    return team


async def create_user(api: Api, admin: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("password", PASSWORD)
    r = await api.client.post("/api/v1/users", json=body, headers=admin)
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()
    return user


async def build_org(api: Api) -> Org:
    admin = await api.admin()
    root = await create_team(api, admin, name="Root")
    manager = await create_user(
        api, admin, email="Mia.Manager@example.com", name="Mia", role="manager"
    )
    north = await create_team(api, admin, name="North", parent_id=root["id"])
    patch = await api.client.patch(
        f"/api/v1/teams/{north['id']}", json={"manager_id": manager["id"]}, headers=admin
    )
    assert patch.status_code == 200, patch.text
    north_east = await create_team(api, admin, name="North-East", parent_id=north["id"])
    south = await create_team(api, admin, name="South", parent_id=root["id"])
    patch = await api.client.patch(
        f"/api/v1/users/{manager['id']}", json={"team_id": north["id"]}, headers=admin
    )
    assert patch.status_code == 200, patch.text
    rep_ne = await create_user(
        api, admin, email="rick@example.com", name="Rick", role="rep", team_id=north_east["id"]
    )
    rep_south = await create_user(
        api, admin, email="sue@example.com", name="Sue", role="rep", team_id=south["id"]
    )
    return Org(
        admin, root["id"], north["id"], north_east["id"], south["id"], manager, rep_ne, rep_south
    )


@pytest.fixture
async def org_api(api: Api) -> AsyncIterator[tuple[Api, Org]]:
    yield api, await build_org(api)


async def login_as(api: Api, email: str) -> dict[str, str]:
    return api.bearer(await api.tokens(email, PASSWORD))


def ids(page: dict[str, Any]) -> set[str]:
    return {item["id"] for item in page["items"]}


async def test_manager_sees_the_subtree_and_nothing_else(org_api: tuple[Api, Org]) -> None:
    api, org = org_api
    mia = await login_as(api, "mia.manager@example.com")
    me = (await api.me(mia)).json()
    assert set(me["visible_team_ids"]) == {org.north, org.north_east}
    assert me["team_id"] == org.north and me["role"] == "manager"
    assert "events:read" not in me["scopes"] and "customers:write" in me["scopes"]

    users = (await api.client.get("/api/v1/users", headers=mia)).json()
    assert ids(users) == {org.manager["id"], org.rep_ne["id"]}
    assert users["next_cursor"] is None
    teams = (await api.client.get("/api/v1/teams", headers=mia)).json()
    assert ids(teams) == {org.north, org.north_east}
    ok = await api.client.get(f"/api/v1/users/{org.rep_ne['id']}", headers=mia)
    assert ok.status_code == 200 and ok.json()["team_id"] == org.north_east
    assert_problem(await api.client.get(f"/api/v1/users/{org.rep_south['id']}", headers=mia), 404)
    assert_problem(await api.client.get(f"/api/v1/teams/{org.south}", headers=mia), 404)
    assert_problem(await api.client.get(f"/api/v1/teams/{org.root}", headers=mia), 404)
    # Reading is not managing.
    r = await api.client.patch(f"/api/v1/users/{org.rep_ne['id']}", json={"name": "R"}, headers=mia)
    assert_problem(r, 403)

    # Moving South under North widens what Mia sees, at once, without signing in again.
    r = await api.client.patch(
        f"/api/v1/teams/{org.south}", json={"parent_id": org.north}, headers=org.admin
    )
    assert r.status_code == 200, r.text
    me = (await api.me(mia)).json()
    assert set(me["visible_team_ids"]) == {org.north, org.north_east, org.south}
    ok = await api.client.get(f"/api/v1/users/{org.rep_south['id']}", headers=mia)
    assert ok.status_code == 200


async def test_rep_sees_only_themselves(org_api: tuple[Api, Org]) -> None:
    api, org = org_api
    rick = await login_as(api, "rick@example.com")
    users = (await api.client.get("/api/v1/users", headers=rick)).json()
    assert ids(users) == {org.rep_ne["id"]}
    own = await api.client.get(f"/api/v1/users/{org.rep_ne['id']}", headers=rick)
    assert own.status_code == 200 and own.json()["email"] == "rick@example.com"
    assert_problem(await api.client.get(f"/api/v1/users/{org.rep_south['id']}", headers=rick), 404)
    assert_problem(await api.client.get(f"/api/v1/users/{org.manager['id']}", headers=rick), 404)
    assert ids((await api.client.get("/api/v1/teams", headers=rick)).json()) == {org.north_east}
    me = (await api.me(rick)).json()
    assert me["visible_team_ids"] == [org.north_east]

    # Admin-only endpoints answer 403 to a rep and to a manager.
    mia = await login_as(api, "mia.manager@example.com")
    for headers in (rick, mia):
        new_user = {"email": "x@example.com", "name": "X", "role": "rep", "password": PASSWORD}
        assert_problem(await api.client.post("/api/v1/users", json=new_user, headers=headers), 403)
        assert_problem(
            await api.client.post("/api/v1/teams", json={"name": "T"}, headers=headers), 403
        )
        assert_problem(await api.client.get("/api/v1/api-keys", headers=headers), 403)
        assert_problem(
            await api.client.post(
                "/api/v1/api-keys", json={"name": "k", "scopes": ["leads:write"]}, headers=headers
            ),
            403,
        )
        assert_problem(await api.client.get("/api/v1/audit", headers=headers), 403)
        assert_problem(
            await api.client.post(f"/api/v1/users/{org.rep_ne['id']}/deactivate", headers=headers),
            403,
        )


async def test_email_is_unique_without_regard_to_case(org_api: tuple[Api, Org]) -> None:
    api, org = org_api
    body = {"email": "RICK@Example.COM", "name": "Rick 2", "role": "rep", "password": PASSWORD}
    r = await api.client.post("/api/v1/users", json=body, headers=org.admin)
    assert "already exists" in assert_problem(r, 409)["detail"]
    r = await api.client.patch(
        f"/api/v1/users/{org.rep_south['id']}",
        json={"email": "Rick@example.com"},
        headers=org.admin,
    )
    assert_problem(r, 409)


async def test_bad_input_is_422_naming_the_field(org_api: tuple[Api, Org]) -> None:
    api, org = org_api
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "/api/v1/users",
            {"email": "not-an-email", "name": "A", "role": "rep", "password": PASSWORD},
            "email",
        ),
        (
            "/api/v1/users",
            {"email": "a@example.com", "name": "A", "role": "owner", "password": PASSWORD},
            "role",
        ),
        (
            "/api/v1/users",
            {"email": "a@example.com", "name": "A", "role": "rep", "password": "short"},
            "password",
        ),
        (
            "/api/v1/users",
            {
                "email": "a@example.com",
                "name": "A",
                "role": "rep",
                "password": PASSWORD,
                "is_admin": True,
            },
            "is_admin",
        ),
        (
            "/api/v1/users",
            {
                "email": "a@example.com",
                "name": "A",
                "role": "rep",
                "password": PASSWORD,
                "team_id": str(uuid.uuid4()),
            },
            "team_id",
        ),
        ("/api/v1/teams", {"name": ""}, "name"),
        ("/api/v1/teams", {"name": "T", "parent_id": str(uuid.uuid4())}, "parent_id"),
        ("/api/v1/teams", {"name": "T", "manager_id": org.rep_ne["id"]}, "manager_id"),
    ]
    for path, body, field in cases:
        r = await api.client.post(path, json=body, headers=org.admin)
        problem = assert_problem(r, 422)
        assert any(e["loc"][-1] == field for e in problem["errors"]), (field, problem)
    # A team cannot move below itself.
    r = await api.client.patch(
        f"/api/v1/teams/{org.root}", json={"parent_id": org.north_east}, headers=org.admin
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["parent_id"]
    assert_problem(await api.client.get("/api/v1/users/not-a-uuid", headers=org.admin), 422)
    assert_problem(await api.client.get("/api/v1/users?limit=0", headers=org.admin), 422)
    assert_problem(await api.client.get("/api/v1/users?cursor=@@", headers=org.admin), 422)


async def test_pages_and_etags(org_api: tuple[Api, Org]) -> None:
    api, org = org_api
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/api/v1/users", params=params, headers=org.admin)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 4  # the admin, Mia, Rick, Sue
    r = await api.client.get(f"/api/v1/users/{org.rep_ne['id']}", headers=org.admin)
    etag = r.headers["etag"]
    r = await api.client.patch(
        f"/api/v1/users/{org.rep_ne['id']}",
        json={"name": "Rick R."},
        headers={**org.admin, "If-Match": etag},
    )
    assert r.status_code == 200 and r.json()["name"] == "Rick R."
    stale = await api.client.patch(
        f"/api/v1/users/{org.rep_ne['id']}",
        json={"name": "Rick S."},
        headers={**org.admin, "If-Match": etag},
    )
    assert_problem(stale, 412)


async def test_deactivation_stops_tokens_at_once(org_api: tuple[Api, Org]) -> None:
    api, org = org_api
    tokens = await api.tokens("rick@example.com", PASSWORD)
    rick = api.bearer(tokens)
    assert (await api.me(rick)).status_code == 200  # now cached by the authenticator
    r = await api.client.post(f"/api/v1/users/{org.rep_ne['id']}/deactivate", headers=org.admin)
    assert r.status_code == 200 and r.json()["active"] is False
    assert "deactivated" in assert_problem(await api.me(rick), 401)["detail"]
    assert_problem(await api.refresh(tokens["refresh_token"]), 401)
    assert (
        "deactivated"
        in assert_problem(await api.login("rick@example.com", PASSWORD), 401)["detail"]
    )
    # Back again: a new sign-in works, the old session stays ended.
    r = await api.client.patch(
        f"/api/v1/users/{org.rep_ne['id']}", json={"active": True}, headers=org.admin
    )
    assert r.status_code == 200 and r.json()["active"] is True
    assert_problem(await api.me(rick), 401)
    assert (await api.me(await login_as(api, "rick@example.com"))).status_code == 200
    # DELETE deactivates too.
    r = await api.client.delete(f"/api/v1/users/{org.rep_south['id']}", headers=org.admin)
    assert r.status_code == 204
    assert_problem(await api.login("sue@example.com", PASSWORD), 401)


async def test_the_last_admin_stays(org_api: tuple[Api, Org]) -> None:
    api, org = org_api
    me = (await api.me(org.admin)).json()
    r = await api.client.post(f"/api/v1/users/{me['id']}/deactivate", headers=org.admin)
    assert_problem(r, 409)
    r = await api.client.patch(f"/api/v1/users/{me['id']}", json={"role": "rep"}, headers=org.admin)
    assert_problem(r, 409)
    assert (await api.me(org.admin)).status_code == 200


async def feed(api: Api, minter: TokenMinter) -> list[dict[str, Any]]:
    headers = minter.headers(make_principal("admin", scopes=["events:read"]), "gateway")
    items: list[dict[str, Any]] = []
    after = None
    while True:
        params = {"limit": 100, **({"after": after} if after else {})}
        r = await api.client.get("/events", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        if not page["has_more"]:
            return items
        after = page["next_cursor"]


async def test_identity_events_on_the_feed(org_api: tuple[Api, Org], minter: TokenMinter) -> None:
    api, org = org_api
    r = await api.client.patch(
        f"/api/v1/users/{org.rep_south['id']}", json={"team_id": org.north}, headers=org.admin
    )
    assert r.status_code == 200
    r = await api.client.post(f"/api/v1/users/{org.rep_ne['id']}/deactivate", headers=org.admin)
    assert r.status_code == 200
    events = await feed(api, minter)
    assert all(e["source"] == "gateway" for e in events)

    def of(type_: str, subject: str) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == type_ and e["subject"] == subject]

    (created,) = of("user.created", org.rep_ne["id"])
    assert created["data"] == {
        "id": org.rep_ne["id"],
        "email": "rick@example.com",
        "name": "Rick",
        "role": "rep",
        "team_id": org.north_east,
        "active": True,
        # Mia leads North, above North-East: she sees Rick's records.
        "manager_ids": [org.manager["id"]],
    }
    (moved,) = of("user.team_changed", org.rep_south["id"])
    assert moved["data"]["team_id"] == org.north
    assert moved["data"]["previous_team_id"] == org.south
    assert moved["data"]["manager_ids"] == [org.manager["id"]]
    (gone,) = of("user.deactivated", org.rep_ne["id"])
    assert gone["data"]["active"] is False and gone["data"]["email"] == "rick@example.com"
    north_events = of("team.changed", org.north)
    assert [e["data"]["change"] for e in north_events] == ["created", "updated"]
    assert north_events[-1]["data"]["manager_id"] == org.manager["id"]
    assert north_events[-1]["data"]["ancestor_ids"] == [org.root]
    # The sub-team's facts changed with the tree above it: it was announced too.
    ne = of("team.changed", org.north_east)
    assert ne[-1]["data"]["manager_ids"] == [org.manager["id"]]
    assert ne[-1]["data"]["ancestor_ids"] == [org.north, org.root]
    # Without the scope, no feed.
    rep = minter.headers(make_principal("rep"), "gateway")
    assert_problem(await api.client.get("/events", headers=rep), 403)


async def test_deactivation_reaches_another_replica(fresh_db: str, minter: TokenMinter) -> None:
    """Two gateway processes on one database: a change on one is seen by the other's cache."""
    settings = identity_settings(fresh_db, minter)
    async with (
        serve_identity(settings) as (url_a, app_a),
        serve_identity(settings) as (url_b, _app_b),
        httpx.AsyncClient(base_url=url_a, timeout=10) as a,
        httpx.AsyncClient(base_url=url_b, timeout=10) as b,
    ):
        api_a, api_b = Api(a, app_a), Api(b, _app_b)
        admin = await api_a.admin()
        user = await create_user(api_a, admin, email="rita@example.com", name="Rita", role="rep")
        rita = await login_as(api_a, "rita@example.com")
        assert (await api_b.me(rita)).status_code == 200  # cached on B
        r = await a.post(f"/api/v1/users/{user['id']}/deactivate", headers=admin)
        assert r.status_code == 200
        deadline = asyncio.get_running_loop().time() + 2.0
        while (await api_b.me(rita)).status_code != 401:
            assert asyncio.get_running_loop().time() < deadline, "replica B still accepts"
            await asyncio.sleep(0.02)
