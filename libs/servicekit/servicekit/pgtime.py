"""`timestamptz` values for the sessions' connections, encoded and decoded exactly as asyncpg
does, at less than half the cost of its binary encoder (bench/README.md, 2026-12-04, sixth
session), which compares each time with its two infinities, converts it to UTC and subtracts
its epoch: a bulk write's times were the largest piece of its encoding. Here a time is
reckoned in one subtraction, and a bulk write's repeated time (its one `now`, in every row's
created, updated and step columns) once for all its rows.

asyncpg's semantics, kept: a naive time is local time, a `date` is local midnight, the naive
`datetime.max` / `datetime.min` are PostgreSQL's infinities and read back as them, any other
time is the instant it names, read back in UTC.
"""

from __future__ import annotations

from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta, timezone
from typing import Any

import asyncpg

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's
_ONE_US = timedelta(microseconds=1)
# asyncpg's infinities are naive, and so are the times they read back as.
INFINITY = datetime(MAXYEAR, 12, 31, 23, 59, 59, 999999)
NEGATIVE_INFINITY = datetime(MINYEAR, 1, 1)
_PG_INFINITY = 2**63 - 1
_PG_NEGATIVE_INFINITY = -(2**63)
# Those two times' microseconds from the epoch, read as UTC: asyncpg sends infinity for them
# even when they come with a zone.
_INFINITY_US = 252455615999999999
_NEGATIVE_INFINITY_US = -63082281600000000
# The last time encoded and its encoding, as one tuple: a write's rows repeat its `now`.
_last: tuple[Any, tuple[int]] = (None, (0,))


def microseconds(value: Any) -> int:
    """`value` as PostgreSQL stores a `timestamptz`: microseconds since its epoch in UTC."""
    if not isinstance(value, datetime):
        if not isinstance(value, date):
            raise TypeError(
                "expected a datetime.date or datetime.datetime instance, "
                f"got {type(value).__name__!r}"
            )
        value = datetime(value.year, value.month, value.day, tzinfo=_local_zone())
    if value == INFINITY:
        return _PG_INFINITY
    if value == NEGATIVE_INFINITY:
        return _PG_NEGATIVE_INFINITY
    us: int = (value.astimezone(UTC) - EPOCH) // _ONE_US
    if us == _INFINITY_US:
        return _PG_INFINITY
    if us == _NEGATIVE_INFINITY_US:
        return _PG_NEGATIVE_INFINITY
    return us


def encode(value: Any) -> tuple[int]:
    global _last
    last = _last
    if value is last[0]:
        return last[1]
    encoded = (microseconds(value),)
    _last = (value, encoded)
    return encoded


def decode(value: tuple[int]) -> datetime:
    us = value[0]
    if us == _PG_INFINITY:
        return INFINITY
    if us == _PG_NEGATIVE_INFINITY:
        return NEGATIVE_INFINITY
    return EPOCH + timedelta(microseconds=us)


def _local_zone() -> timezone:
    offset = datetime.now(UTC).astimezone().utcoffset()
    return timezone(offset or timedelta(0))


async def install(connection: asyncpg.Connection) -> None:
    """Use this codec for `timestamptz` on `connection`."""
    await connection.set_type_codec(
        "timestamptz", schema="pg_catalog", encoder=encode, decoder=decode, format="tuple"
    )
