"""Idempotency-Key on POST: replay, conflict, concurrency, scope, expiry."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from servicekit.settings import KitSettings
from servicekit.testing.clock import FakeClock
from servicekit.testing.harness import serve_service, wait_until
from servicekit.testing.sample.app import sample_spec
from servicekit.testing.tokens import make_principal


async def _widgets(sample) -> int:
    async with sample.app.state.db.session() as s:
        return int((await s.execute(sa.text("SELECT count(*) FROM kitsample.widgets"))).scalar())


async def test_a_retried_post_replays_the_first_answer(sample):
    h = {**sample.headers(make_principal()), "Idempotency-Key": "order-1"}
    first = await sample.client.post("/widgets", json={"name": "a"}, headers=h)
    again = await sample.client.post("/widgets", json={"name": "a"}, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _widgets(sample) == 1


async def test_the_same_key_with_another_body_is_refused(sample):
    h = {**sample.headers(make_principal()), "Idempotency-Key": "k"}
    assert (await sample.client.post("/widgets", json={"name": "a"}, headers=h)).status_code == 201
    other = await sample.client.post("/widgets", json={"name": "b"}, headers=h)
    assert other.status_code == 422
    assert other.json()["errors"][0]["loc"] == ["Idempotency-Key"]
    assert await _widgets(sample) == 1


async def test_concurrent_duplicates_produce_one_effect(sample):
    h = {**sample.headers(make_principal()), "Idempotency-Key": "burst"}
    answers = await asyncio.gather(
        *(sample.client.post("/widgets", json={"name": "same"}, headers=h) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert await _widgets(sample) == 1
    async with sample.app.state.db.session() as s:
        events = (await s.execute(sa.text("SELECT count(*) FROM kitsample.outbox"))).scalar()
    assert events == 1


async def test_failed_requests_are_not_remembered_and_keys_belong_to_their_principal(sample):
    me, other = make_principal(), make_principal()
    h = {**sample.headers(me), "Idempotency-Key": "k1"}
    assert (
        await sample.client.post("/widgets", json={"name": "boom"}, headers=h)
    ).status_code == 422
    retry = await sample.client.post("/widgets", json={"name": "fixed"}, headers=h)
    assert retry.status_code == 201
    theirs = await sample.client.post(
        "/widgets",
        json={"name": "fixed"},
        headers={**sample.headers(other), "Idempotency-Key": "k1"},
    )
    assert theirs.status_code == 201
    assert theirs.json()["id"] != retry.json()["id"]
    assert await _widgets(sample) == 2


async def test_expired_keys_are_forgotten(sample):
    h = {**sample.headers(make_principal()), "Idempotency-Key": "old"}
    first = await sample.client.post("/widgets", json={"name": "a"}, headers=h)
    async with sample.app.state.db.session() as s:
        await s.execute(
            sa.text(
                "UPDATE kitsample.idempotency_keys SET created_at = now() - interval '25 hours'"
            )
        )
    later = await sample.client.post("/widgets", json={"name": "a"}, headers=h)
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
    too_long = await sample.client.post(
        "/widgets", json={"name": "a"}, headers={**h, "Idempotency-Key": "x" * 300}
    )
    assert too_long.status_code == 422


async def test_a_key_lives_exactly_its_ttl_on_the_apps_clock(sample_db, minter):
    """Remembered up to the TTL, forgotten after it by the lookup, and purged by the
    background sweep once the app's clock has moved on (no waiting for real hours)."""
    clock = FakeClock()
    async with serve_service(
        sample_spec(), KitSettings, sample_db, minter, clock=clock, app_name="kitsample"
    ) as app:
        me = make_principal()
        key = {"Idempotency-Key": "ttl"}
        first = await app.post("/widgets", json={"name": "a"}, as_=me, headers=key)
        clock.advance(hours=24, seconds=-1)
        replayed = await app.post("/widgets", json={"name": "a"}, as_=me, headers=key)
        assert replayed.headers.get("idempotent-replayed") == "true"
        assert replayed.json()["id"] == first.json()["id"]
        clock.advance(seconds=2)
        fresh = await app.post("/widgets", json={"name": "a"}, as_=me, headers=key)
        assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers
        assert fresh.json()["id"] != first.json()["id"]

        other = await app.post(
            "/widgets", json={"name": "b"}, as_=me, headers={"Idempotency-Key": "k2"}
        )
        assert other.status_code == 201

        async def keys() -> int:
            async with app.session() as s:
                result = await s.execute(sa.text("SELECT count(*) FROM kitsample.idempotency_keys"))
                return int(result.scalar_one())

        async def swept() -> bool:
            return await keys() == 0

        assert await keys() == 2
        clock.advance(hours=25)  # past the TTL of both, and past the sweep's next turn
        await wait_until(swept, what="the sweep of expired keys")
