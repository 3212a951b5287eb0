"""What the end-to-end tests share: signing in through the gateway, expecting a status,
waiting for a condition that other processes make true."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx


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
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


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
