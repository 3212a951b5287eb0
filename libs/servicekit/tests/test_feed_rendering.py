"""A feed page is written by PostgreSQL (`feed_statement`'s items) byte for byte as the kit's
Python rendering always wrote it: CloudEvents keys in their order, strings escaped as orjson
escapes them, times as `isoformat()`, cursors as `feed_cursor`. Readers parse it either way;
the bytes being the same is what keeps every feed reader, cursor and signature unchanged."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson

from servicekit.db import to_asyncpg_dsn
from servicekit.outbox import SPEC_VERSION, feed_cursor, feed_statement, render_feed
from servicekit.testing.sample.app import SCHEMA

# Everything PostgreSQL's text holds that JSON escapes or might: quotes, backslashes, every
# control character, DEL, slashes, non-ASCII, a character beyond the BMP.
_TRICKY = ['"', "\\", "/", "\x7f", "é", "公司", "\U0001f600", " ", "a", "Z", "9", "."] + [
    chr(c) for c in range(1, 32)
]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_TRICKY) for _ in range(rng.randrange(0, 12)))


def _time(rng: random.Random) -> datetime:
    base = datetime(2026, 12, 3, 8, 30, tzinfo=UTC) + timedelta(seconds=rng.randrange(10**7))
    micro = rng.choice([0, 1, 10, 999_999, rng.randrange(1_000_000)])
    # Given in another zone sometimes: the feed writes every time in UTC.
    zone = rng.choice(
        [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
    )
    return base.replace(microsecond=micro).astimezone(zone)


def _python_item(r: Any) -> dict[str, Any]:
    """An event as `render_feed` built it in Python before PostgreSQL wrote the items."""
    return {
        "specversion": SPEC_VERSION,
        "id": str(r["id"]),
        "type": r["type"],
        "source": r["source"],
        "subject": r["subject"],
        "time": r["time"].isoformat(),
        "datacontenttype": "application/json",
        "dataversion": r["dataversion"],
        "data": orjson.Fragment(r["data"]),
        "cursor": feed_cursor(r["txid"], r["position"]),
    }


async def test_a_feed_page_is_written_as_the_python_rendering_wrote_it(sample_db: str) -> None:
    rng = random.Random(20261203)
    rows = [
        (
            uuid.uuid4(),
            _text(rng) or "t",
            _text(rng) or "s",
            rng.choice([None, _text(rng), str(uuid.uuid4())]),
            _time(rng),
            orjson.dumps({"n": n, "text": _text(rng), "nested": {"list": [1, 2.5, None]}}).decode(),
            rng.choice(["1", "2", _text(rng)]),
        )
        for n in range(400)
    ]
    conn = await asyncpg.connect(to_asyncpg_dsn(sample_db))
    try:
        await conn.executemany(
            f'INSERT INTO "{SCHEMA}".outbox (id, type, source, subject, time, data, dataversion) '  # noqa: S608
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            rows,
        )
        page = feed_statement(SCHEMA)
        got = await conn.fetch(page.sql, *page.args(txid=-1, position=-1, limit=1000))
        python = await conn.fetch(
            f"SELECT txid, position, id, type, source, subject, time, data::text AS data, "  # noqa: S608
            f'dataversion FROM "{SCHEMA}".outbox ORDER BY txid, position'
        )
    finally:
        await conn.close()
    assert len(got) == len(python) == len(rows)
    expected = orjson.dumps(
        {
            "items": [_python_item(r) for r in python],
            "next_cursor": feed_cursor(python[-1]["txid"], python[-1]["position"]),
            "has_more": False,
            "head": None,
        }
    )
    assert render_feed(got, None, 1000) == expected
    # One by one, so that a difference names its event.
    for mine, theirs in zip(got, python, strict=True):
        assert mine["item"].encode() == orjson.dumps(_python_item(theirs))


async def test_an_empty_page_keeps_the_readers_cursor() -> None:
    after = feed_cursor(41, 7)
    assert orjson.loads(render_feed([], after, 100)) == {
        "items": [],
        "next_cursor": after,
        "has_more": False,
        "head": None,
    }
