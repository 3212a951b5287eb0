"""Sign-in, refresh rotation, logout, token checks: real Postgres, real HTTP (failed sign-ins
are in test_identity_sign_in_guard.py)."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt

from servicekit.testing.tokens import TokenMinter, make_principal

from .conftest import (
    IDENTITY_ADMIN_EMAIL,
    IDENTITY_ADMIN_PASSWORD,
    Api,
    ApiFactory,
    assert_problem,
    fake_clock,
    identity_settings,
    serve_gateway,
)


async def test_login_and_me(api: Api) -> None:
    r = await api.login(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    tokens = r.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["refresh_token"] and tokens["access_token"]
    me = await api.me(api.bearer(tokens))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["email"] == IDENTITY_ADMIN_EMAIL
    assert body["role"] == "admin" and body["kind"] == "user"
    assert "events:read" in body["scopes"]
    # The email is matched without regard to case.
    again = await api.login(IDENTITY_ADMIN_EMAIL.upper(), IDENTITY_ADMIN_PASSWORD)
    assert again.status_code == 200, again.text


async def test_wrong_password_and_unknown_account_are_401(api: Api) -> None:
    wrong = await api.login(IDENTITY_ADMIN_EMAIL, "not-the-password")
    body = assert_problem(wrong, 401)
    assert body["detail"] == "wrong email or password"
    assert wrong.headers["www-authenticate"] == "Bearer"
    unknown = await api.login("nobody@example.com", "whatever-password")
    assert assert_problem(unknown, 401)["detail"] == body["detail"]
    anonymous = await api.client.get("/api/v1/me")
    assert_problem(anonymous, 401)


async def test_login_input_errors_are_422(api: Api) -> None:
    missing = await api.client.post("/api/v1/auth/token", data={"password": "x"})
    body = assert_problem(missing, 422)
    assert body["errors"][0]["loc"] == ["username"]
    grant = await api.client.post(
        "/api/v1/auth/token", data={"grant_type": "client_credentials", "username": "a"}
    )
    assert any(e["loc"][-1] == "grant_type" for e in assert_problem(grant, 422)["errors"])
    no_token = await api.client.post("/api/v1/auth/refresh", json={})
    assert any(e["loc"][-1] == "refresh_token" for e in assert_problem(no_token, 422)["errors"])


async def test_refresh_rotation_and_reuse_revokes_the_family(api: Api) -> None:
    first = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    r = await api.refresh(first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await api.me(api.bearer(second))).status_code == 200
    # The OAuth2 form of the same grant rotates too.
    r = await api.client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
    )
    assert r.status_code == 200, r.text
    third = r.json()
    # An old token comes back: stolen. The whole family ends, the newest tokens included.
    reused = await api.refresh(first["refresh_token"])
    assert "already used" in assert_problem(reused, 401)["detail"]
    assert_problem(await api.refresh(third["refresh_token"]), 401)
    assert_problem(await api.me(api.bearer(third)), 401)
    # A separate sign-in is another family and goes on working.
    other = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    assert (await api.me(api.bearer(other))).status_code == 200
    assert (await api.refresh(other["refresh_token"])).status_code == 200
    assert_problem(await api.refresh("ffr_made-up"), 401)


async def test_logout_ends_the_session(api: Api) -> None:
    tokens = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    kept = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    out = await api.client.post("/api/v1/auth/logout", headers=api.bearer(tokens))
    assert out.status_code == 204, out.text
    assert_problem(await api.me(api.bearer(tokens)), 401)
    assert_problem(await api.refresh(tokens["refresh_token"]), 401)
    # Other sessions of the same user are untouched.
    assert (await api.me(api.bearer(kept))).status_code == 200
    # Logging out by refresh token alone ends that session as well.
    out = await api.client.post(
        "/api/v1/auth/logout", json={"refresh_token": kept["refresh_token"]}
    )
    assert out.status_code == 204, out.text
    assert_problem(await api.me(api.bearer(kept)), 401)
    assert_problem(await api.client.post("/api/v1/auth/logout"), 401)


async def test_expired_tampered_and_foreign_tokens_are_refused(
    api: Api, minter: TokenMinter
) -> None:
    tokens = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    good = tokens["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})

    expired = api.authenticator.tokens.mint(claims["sub"], claims["sid"], now=time.time() - 3600)
    assert "expired" in assert_problem(await api.me(api.bearer(expired)), 401)["detail"]

    header, payload, signature = good.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_problem(await api.me(api.bearer(f"{header}.{payload}.{flipped}")), 401)

    forged_claims = dict(claims, exp=int(time.time()) + 600)
    forged = jwt.encode(forged_claims, "some-other-secret-of-32-bytes-at-least", "HS256")
    assert_problem(await api.me(api.bearer(forged)), 401)
    # pyjwt's types have no key for the "none" algorithm, which is the point here.
    unsigned = jwt.encode(forged_claims, None, "none")  # type: ignore[arg-type]
    assert_problem(await api.me(api.bearer(unsigned)), 401)
    # The gateway's internal token is not a client credential.
    internal = minter.token(make_principal("admin", sub=claims["sub"]), "gateway")
    assert_problem(await api.me(api.bearer(internal)), 401)
    assert_problem(await api.me({"Authorization": f"Basic {good}"}), 401)
    assert (await api.me(api.bearer(good))).status_code == 200


async def test_changing_ones_password_ends_the_other_sessions(api: Api) -> None:
    here = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    elsewhere = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    wrong = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": "not-it", "new_password": "a-new-password-1"},
        headers=api.bearer(here),
    )
    assert assert_problem(wrong, 422)["errors"][0]["loc"] == ["current_password"]
    r = await api.client.post(
        "/api/v1/me/password",
        json={"current_password": IDENTITY_ADMIN_PASSWORD, "new_password": "a-new-password-1"},
        headers=api.bearer(here),
    )
    assert r.status_code == 204, r.text
    assert (await api.me(api.bearer(here))).status_code == 200
    assert (await api.refresh(here["refresh_token"])).status_code == 200
    assert_problem(await api.me(api.bearer(elsewhere)), 401)
    assert_problem(await api.refresh(elsewhere["refresh_token"]), 401)
    assert_problem(await api.login(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD), 401)
    assert (await api.login(IDENTITY_ADMIN_EMAIL, "a-new-password-1")).status_code == 200


async def test_an_expired_access_token_sent_along_does_not_block_renewal(
    fresh_db: str, minter: TokenMinter
) -> None:
    """Through the assembled gateway, whose middleware authenticates every /api/ call."""
    settings = identity_settings(fresh_db, minter)
    async with serve_gateway(settings) as (url, app), httpx.AsyncClient(base_url=url) as client:
        api = Api(client, app)
        tokens = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        expired = api.authenticator.tokens.mint(
            claims["sub"], claims["sid"], now=time.time() - 3600
        )
        assert_problem(await api.me(api.bearer(expired)), 401)
        r = await client.post(
            "/api/v1/auth/refresh",
            json={"refresh_token": tokens["refresh_token"]},
            headers=api.bearer(expired),
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            "/api/v1/auth/token",
            data={"username": IDENTITY_ADMIN_EMAIL, "password": IDENTITY_ADMIN_PASSWORD},
            headers=api.bearer(expired),
        )
        assert r.status_code == 200, r.text


async def test_housekeeping_forgets_what_no_longer_matters(api: Api) -> None:
    from gateway.identity.auth.service import purge

    ended = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    live = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    assert (await api.refresh(live["refresh_token"])).status_code == 200
    await api.client.post("/api/v1/auth/logout", headers=api.bearer(ended))
    assert (await api.login("ghost@example.com", "whatever-pw")).status_code == 401
    pool = api.app.state.db.primary()
    ended_sid = jwt.decode(ended["access_token"], options={"verify_signature": False})["sid"]
    live_sid = jwt.decode(live["access_token"], options={"verify_signature": False})["sid"]
    await pool.execute(
        "UPDATE identity.sessions SET revoked_at = now() - interval '2 days' WHERE id = $1::uuid",
        ended_sid,
    )
    await pool.execute(
        "UPDATE identity.refresh_tokens SET rotated_at = now() - interval '8 days' "
        "WHERE rotated_at IS NOT NULL"
    )
    await pool.execute(
        "UPDATE identity.login_throttle SET window_started_at = now() - interval '1 day'"
    )
    await purge(api.app.state.db, api.authenticator)
    sessions = {str(r["id"]) for r in await pool.fetch("SELECT id FROM identity.sessions")}
    assert ended_sid not in sessions and live_sid in sessions
    rotated = await pool.fetchval(
        "SELECT count(*) FROM identity.refresh_tokens WHERE rotated_at IS NOT NULL"
    )
    assert rotated == 0
    assert await pool.fetchval("SELECT count(*) FROM identity.login_throttle") == 0
    # The live session is untouched: its newest refresh token still works.
    assert (await api.me(api.bearer(live))).status_code == 200


async def test_sign_ins_and_refusals_are_counted(api: Api) -> None:
    def value(text: str, line: str) -> float:
        found = [x for x in text.splitlines() if x.startswith(line + " ")]
        return float(found[0].rsplit(" ", 1)[1]) if found else 0.0

    before = (await api.client.get("/metrics")).text
    await api.login(IDENTITY_ADMIN_EMAIL, "wrong-password")
    await api.me({"X-API-Key": "ffk_unknown"})
    after = (await api.client.get("/metrics")).text
    failed = 'identity_sign_ins_total{outcome="failed"}'
    refused = 'identity_auth_refused_total{credential="api_key"}'
    assert value(after, failed) == value(before, failed) + 1
    assert value(after, refused) == value(before, refused) + 1
    assert value(after, "identity_change_listener_up") == 1


async def test_a_refresh_token_spent_twice_at_once_ends_the_family(api: Api) -> None:
    tokens = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
    answers = await asyncio.gather(*[api.refresh(tokens["refresh_token"]) for _ in range(2)])
    assert sorted(r.status_code for r in answers) == [200, 401]
    (winner,) = [r.json() for r in answers if r.status_code == 200]
    # The row lock made the second spend see the first: a reuse, so the winner dies too.
    assert_problem(await api.refresh(winner["refresh_token"]), 401)
    assert_problem(await api.me(api.bearer(winner)), 401)


async def test_a_session_ends_at_its_lifetime_however_often_refreshed(
    make_api: ApiFactory,
) -> None:
    async with make_api(refresh_token_ttl_seconds=3) as api:
        clock = fake_clock(api)
        tokens = await api.tokens(IDENTITY_ADMIN_EMAIL, IDENTITY_ADMIN_PASSWORD)
        clock.advance(1.5)
        r = await api.refresh(tokens["refresh_token"])
        assert r.status_code == 200, r.text
        clock.advance(2.0)
        # 3.5 s after sign-in: the fresh refresh token dies with its session.
        assert (
            "expired" in assert_problem(await api.refresh(r.json()["refresh_token"]), 401)["detail"]
        )
