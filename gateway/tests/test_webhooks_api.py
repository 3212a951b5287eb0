"""The webhook API's rules: who may manage which subscription, which URLs may be subscribed
(https unless a setting allows http; never an internal address, at creation nor at delivery,
unless allowlisted), and the secret shown only once."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from servicekit.testing.harness import wait_until
from servicekit.testing.tokens import TokenMinter

from .conftest import Api, assert_problem, create_user
from .webhooks_kit import API, Receiver, as_admin, receiving, webhook_gateway, webhook_settings


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as receiver:
        yield receiver


async def _key(api: Api, *scopes: str) -> dict[str, str]:
    r = await api.client.post(
        "/api/v1/api-keys",
        json={"name": "integration " + " ".join(scopes), "scopes": list(scopes)},
        headers=await api.admin(),
    )
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


async def _create(api: Api, headers: dict[str, str], url: str) -> Any:
    return await api.client.post(API, json={"url": url, "events": ["user.*"]}, headers=headers)


async def test_admins_manage_every_subscription_and_a_key_with_the_scope_only_its_own(
    fresh_db: str, minter: TokenMinter, receiver: Receiver
) -> None:
    async with webhook_gateway(webhook_settings(fresh_db, minter)) as api:
        admin = await api.admin()
        created = await _create(api, admin, receiver.url)
        assert created.status_code == 201, created.text
        assert created.headers["cache-control"] == "no-store"
        admins = created.json()
        assert admins["secret"].startswith("whsec_")
        mine = await _key(api, "webhooks:manage")
        other = await _key(api, "webhooks:manage")
        unscoped = await _key(api, "events:read", "customers:read")
        rep = await create_user(api.client, admin, "rep")
        manager = await create_user(api.client, admin, "manager")

        # Without the scope (a rep, a manager, a key lacking it): 403 naming the scope.
        for headers in (rep, manager, unscoped):
            for r in (
                await _create(api, headers, receiver.url),
                await api.client.get(API, headers=headers),
                await api.client.get(f"{API}/{admins['id']}", headers=headers),
                await api.client.post(f"{API}/{admins['id']}/test", headers=headers),
            ):
                assert "webhooks:manage" in assert_problem(r, 403)["detail"]
        # Unauthenticated: 401.
        assert_problem(await api.client.get(API), 401)

        # A key with the scope manages what it created, and sees nothing else.
        r = await _create(api, mine, receiver.url + "/mine")
        assert r.status_code == 201, r.text
        keys = r.json()
        listed = (await api.client.get(API, headers=mine)).json()["items"]
        assert [w["id"] for w in listed] == [keys["id"]]
        assert all("secret" not in w for w in listed)
        own = await api.client.get(f"{API}/{keys['id']}", headers=mine)
        assert own.status_code == 200 and "secret" not in own.json()
        item = f"{API}/{admins['id']}"
        for r in (
            await api.client.get(item, headers=mine),
            await api.client.patch(
                item, json={"active": False}, headers={**mine, "If-Match": own.headers["etag"]}
            ),
            await api.client.delete(item, headers=mine),
            await api.client.post(f"{item}/rotate-secret", headers=mine),
            await api.client.post(f"{item}/test", headers=mine),
            await api.client.get(f"{item}/deliveries", headers=mine),
            await api.client.post(
                f"{item}/replay", params={"from": "2025-01-01T00:00:00Z"}, headers=mine
            ),
        ):
            assert_problem(r, 404)
        # Another key with the scope: the first key's subscription does not exist for it.
        assert_problem(await api.client.get(f"{API}/{keys['id']}", headers=other), 404)
        assert (await api.client.get(API, headers=other)).json()["items"] == []
        # Admins see and change every one.
        every = (await api.client.get(API, headers=admin)).json()["items"]
        assert {w["id"] for w in every} == {admins["id"], keys["id"]}
        r = await api.client.post(f"{API}/{keys['id']}/rotate-secret", headers=admin)
        assert r.status_code == 200, r.text
        gone = await api.client.delete(f"{API}/{keys['id']}", headers=mine)
        assert gone.status_code == 204, gone.text
        assert_problem(await api.client.get(f"{API}/{keys['id']}", headers=admin), 404)


REFUSED = (
    "http://127.0.0.1:8080/hook",
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://172.16.5.4/",
    "http://192.168.1.20/",
    "http://100.64.0.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
)


async def test_internal_addresses_are_refused_unless_allowlisted(
    fresh_db: str, minter: TokenMinter, receiver: Receiver
) -> None:
    settings = webhook_settings(fresh_db, minter, webhook_allowed_networks=[])
    async with webhook_gateway(settings) as api:
        hooks = await as_admin(api)
        for url in (*REFUSED, receiver.url, "http://localhost:9/"):
            problem = assert_problem(await _create(api, hooks.headers, url), 422)
            assert problem["errors"][0]["loc"] == ["url"], problem
            assert "internal addresses" in problem["detail"], problem
        # A name is judged by what it resolves to.
        named = assert_problem(await _create(api, hooks.headers, "http://localhost:9/"), 422)
        assert "localhost resolves to" in named["detail"]
        assert_problem(await _create(api, hooks.headers, "http://no-such-host.invalid/"), 422)
        assert (await api.client.get(API, headers=hooks.headers)).json()["items"] == []

    # Allowlisted: the test receiver's loopback address, and nothing more.
    async with webhook_gateway(webhook_settings(fresh_db, minter)) as api:
        hooks = await as_admin(api)
        hook = await hooks.create(receiver.url, ["user.created"])
        for url in REFUSED[1:]:
            assert_problem(await _create(api, hooks.headers, url), 422)
        # Nor may a subscription be moved to an internal address.
        current = await api.client.get(f"{API}/{hook['id']}", headers=hooks.headers)
        problem = assert_problem(
            await api.client.patch(
                f"{API}/{hook['id']}",
                json={"url": "http://169.254.169.254/"},
                headers={**hooks.headers, "If-Match": current.headers["etag"]},
            ),
            422,
        )
        assert "metadata" in problem["detail"]


async def test_plain_http_only_where_the_setting_allows_it(
    fresh_db: str, minter: TokenMinter, receiver: Receiver
) -> None:
    settings = webhook_settings(fresh_db, minter, webhook_allow_http=False)
    async with webhook_gateway(settings) as api:
        hooks = await as_admin(api)
        problem = assert_problem(await _create(api, hooks.headers, receiver.url), 422)
        assert "https" in problem["detail"] and problem["errors"][0]["loc"] == ["url"]
        https = receiver.url.replace("http://", "https://")
        assert (await _create(api, hooks.headers, https)).status_code == 201
        for bad in ("ftp://127.0.0.1/", "https://user:pw@127.0.0.1/", "not a url", ""):
            assert_problem(await _create(api, hooks.headers, bad), 422)
    async with webhook_gateway(webhook_settings(fresh_db, minter)) as api:
        assert (await _create(api, (await as_admin(api)).headers, receiver.url)).status_code == 201


def _localhost_is_loopback() -> bool:
    try:
        found = socket.getaddrinfo("localhost", 80, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return all(a[4][0] in ("127.0.0.1", "::1") for a in found)


@pytest.mark.skipif(not _localhost_is_loopback(), reason="localhost does not resolve here")
async def test_the_address_is_checked_again_after_resolution_at_every_delivery(
    fresh_db: str, minter: TokenMinter, receiver: Receiver
) -> None:
    """A name accepted once (allowlisted then) is resolved and refused at delivery, as a name
    whose DNS answer moved to an internal address is: nothing reaches the receiver."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    loopback = ["127.0.0.1/32", "::1/128"]
    async with webhook_gateway(
        webhook_settings(fresh_db, minter, webhook_allowed_networks=loopback)
    ) as api:
        hook = await (await as_admin(api)).create(url, ["user.created"])

    async with webhook_gateway(
        webhook_settings(fresh_db, minter, webhook_allowed_networks=[])
    ) as api:
        hooks = await as_admin(api)
        await hooks.user()

        async def refused() -> dict[str, Any] | None:
            items = await hooks.deliveries(hook["id"])
            return items[0] if items and items[0]["attempts"] else None

        delivery = await wait_until(refused)
        [attempt] = delivery["attempts"]
        assert attempt["outcome"] == "refused" and attempt["status_code"] is None
        assert "localhost resolves to" in attempt["error"]
        # The test event is refused the same way, before any request leaves.
        r = await hooks.client.post(f"{API}/{hook['id']}/test", headers=hooks.headers)
        assert r.status_code == 200 and r.json()["outcome"] == "refused"
        assert receiver.received == []


async def test_a_retried_creation_with_the_same_idempotency_key_subscribes_once(
    fresh_db: str, minter: TokenMinter, receiver: Receiver
) -> None:
    async with webhook_gateway(webhook_settings(fresh_db, minter)) as api:
        hooks = await as_admin(api)
        headers = {**hooks.headers, "Idempotency-Key": "subscribe-crm-1"}
        body = {"url": receiver.url, "events": ["customer.*"]}
        first = await api.client.post(API, json=body, headers=headers)
        second = await api.client.post(API, json=body, headers=headers)
        assert first.status_code == second.status_code == 201, second.text
        assert second.headers["idempotent-replayed"] == "true"
        assert second.json()["id"] == first.json()["id"]
        listed = (await api.client.get(API, headers=hooks.headers)).json()["items"]
        assert [w["id"] for w in listed] == [first.json()["id"]]
        other = {**body, "events": ["visit.*"]}
        assert_problem(await api.client.post(API, json=other, headers=headers), 422)
        # Invalid input names the field.
        for bad, field in (
            ({"url": receiver.url, "events": []}, "events"),
            ({"url": receiver.url, "events": ["Customer created"]}, "events"),
            ({"events": ["customer.*"]}, "url"),
        ):
            problem = assert_problem(
                await api.client.post(API, json=bad, headers=hooks.headers), 422
            )
            assert field in str(problem["errors"]), problem


async def test_a_subscription_changes_only_at_the_version_last_read(
    fresh_db: str, minter: TokenMinter, receiver: Receiver
) -> None:
    async with webhook_gateway(webhook_settings(fresh_db, minter)) as api:
        hooks = await as_admin(api)
        hook = await hooks.create(receiver.url, ["customer.*"])
        item = f"{API}/{hook['id']}"
        etag = (await api.client.get(item, headers=hooks.headers)).headers["etag"]
        body = {"events": ["visit.*"]}
        missing = await api.client.patch(item, json=body, headers=hooks.headers)
        assert "If-Match" in assert_problem(missing, 428)["detail"]
        changed = await api.client.patch(
            item, json=body, headers={**hooks.headers, "If-Match": etag}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["events"] == ["visit.*"]
        stale = {**hooks.headers, "If-Match": etag}
        assert_problem(await api.client.patch(item, json={"active": False}, headers=stale), 412)
        assert (await api.client.get(item, headers=hooks.headers)).json()["active"] is True
