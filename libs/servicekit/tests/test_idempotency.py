"""Idempotency-Key on POST: replay, conflict, concurrency, scope, expiry."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

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
