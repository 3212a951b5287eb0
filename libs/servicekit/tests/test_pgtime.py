"""The kit's `timestamptz` codec (`servicekit.pgtime`, on every session's connection) stores
and reads back exactly what asyncpg's own codec does, for every kind of value asyncpg takes:
times in any zone and any year, naive (local) times, dates, the infinities, and a bulk
write's repeated `now`. Each value is written through one codec and read through the other."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from servicekit import bulk, pgtime
from servicekit.db import Database, to_asyncpg_dsn

_TABLE = sa.Table(
    "pgtime_values",
    sa.MetaData(),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True)),
)


def _values() -> list[Any]:
    rng = random.Random(20261204)
    zones = [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-9, minutes=-30))]
    now = datetime.now(UTC)
    values: list[Any] = [
        pgtime.INFINITY,
        pgtime.NEGATIVE_INFINITY,
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # infinity's instant, zoned
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=5))),
        datetime(2000, 1, 1, tzinfo=UTC),  # the epoch
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 4, 1, 2, 3),  # naive: local time
        date(2026, 12, 4),  # local midnight
        date(1, 1, 1),
        now,
        now,  # the same object again: a bulk write's repeated `now`
        now.astimezone(zones[1]),
    ]
    for _ in range(300):
        # Years 2 to 9998: any zone's offset stays within what `datetime` holds.
        base = datetime(2, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(9996 * 365 * 86400), microseconds=rng.randrange(1_000_000)
        )
        values.append(base.astimezone(rng.choice(zones)))
    return values


async def test_times_go_through_either_codec_alike(sample):
    db: Database = sample.app.state.db
    values = _values()
    plain = await asyncpg.connect(to_asyncpg_dsn(db.url))
    try:
        await plain.execute("CREATE TABLE pgtime_values (n integer PRIMARY KEY, at timestamptz)")
        # asyncpg's codec writes, the kit's reads.
        await plain.executemany(
            "INSERT INTO pgtime_values VALUES ($1, $2)", list(enumerate(values))
        )
        async with db.session() as session:
            read = (await session.execute(sa.select(_TABLE).order_by(_TABLE.c.n))).all()
        expected = await plain.fetch("SELECT n, at FROM pgtime_values ORDER BY n")
        assert [(r.n, r.at) for r in read] == [(r["n"], r["at"]) for r in expected]
        assert read[0].at == pgtime.INFINITY and read[1].at == pgtime.NEGATIVE_INFINITY

        # The kit's codec writes (a statement and a COPY), asyncpg's reads; the stored
        # values are the same, to the microsecond.
        await plain.execute("TRUNCATE pgtime_values")
        async with db.session() as session:
            half = len(values) // 2
            await session.execute(
                sa.insert(_TABLE), [{"n": n, "at": v} for n, v in enumerate(values[:half])]
            )
            rows = [(n, v) for n, v in enumerate(values) if n >= half]
            await bulk.copy_records(session, _TABLE, ["n", "at"], rows)
        stored = await plain.fetch("SELECT n, at::text AS text, at FROM pgtime_values ORDER BY n")
        await plain.execute("CREATE TABLE pgtime_reference (n integer, at timestamptz)")
        await plain.executemany(
            "INSERT INTO pgtime_reference VALUES ($1, $2)", list(enumerate(values))
        )
        reference = await plain.fetch(
            "SELECT n, at::text AS text, at FROM pgtime_reference ORDER BY n"
        )
    finally:
        await plain.close()
    assert [(r["n"], r["text"]) for r in stored] == [(r["n"], r["text"]) for r in reference]
    assert stored[0]["text"] == "infinity" and stored[1]["text"] == "-infinity"
    assert stored[2]["text"] == "infinity"  # as asyncpg sends that instant


def test_what_is_not_a_time_is_refused_as_asyncpg_refuses_it():
    with pytest.raises(TypeError, match=r"expected a datetime\.date or datetime\.datetime"):
        pgtime.encode("2026-12-04")


def test_a_repeated_time_is_reckoned_once_and_a_new_one_afresh():
    first = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
    later = first + timedelta(microseconds=1)
    assert pgtime.encode(first) == pgtime.encode(first) == (pgtime.microseconds(first),)
    assert pgtime.encode(later) == (pgtime.microseconds(first) + 1,)
    # An equal time in another zone is the same instant.
    assert pgtime.encode(first.astimezone(timezone(timedelta(hours=8)))) == pgtime.encode(first)
