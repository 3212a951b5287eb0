"""Bulk inserts in the caller's transaction: an executemany INSERT for a small batch, a binary
COPY on the session's own connection for a large one.

Binary COPY is several times faster than multi-row INSERTs for the import's 10,000-row calls;
small batches keep plain executemany INSERTs (COPY has a fixed set-up cost per table).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import operator
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import json_text

# Below this many rows one executemany INSERT is cheaper than setting up a COPY.
COPY_THRESHOLD = 64
TEXT_ARRAY: Any = ARRAY(sa.Text)
T = TypeVar("T")
_pausers = 0
_was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a batch's work.

    A 10,000-row batch allocates about a million objects, and the collector walked them a few
    hundred times per call: measured on a 10,000-lead intake, 0.6 s of its 1.5 s of CPU. What
    a batch makes is acyclic (rows, dicts, records), so reference counting frees it as usual;
    the collector resumes when the last batch running in the process ends (batches on
    concurrent requests share the pause)."""
    global _pausers, _was_enabled
    if _pausers == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _pausers += 1
    try:
        yield
    finally:
        _pausers -= 1
        if _pausers == 0 and _was_enabled:
            gc.enable()


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's transaction, with that transaction begun:
    SQLAlchemy's asyncpg adapter sends BEGIN only with the first statement, and a COPY before
    it would commit on its own."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection | None = raw.driver_connection
    if driver is None or not driver.is_in_transaction():
        await session.execute(sa.select(1))
        driver = raw.driver_connection
    assert driver is not None
    return driver


def text_array(values: Sequence[str]) -> sa.ColumnElement[list[str]]:
    """A `text[]` parameter holding `values` (a batch's thousands of keys: `= ANY(...)`,
    `unnest(...)`). asyncpg encodes an array parameter element by element, with Python-level
    type checks for each; this sends one array literal instead, every element quoted, joined
    in C, when no element needs escaping (no quote, no backslash), and the array otherwise."""
    together = "".join(values)
    if '"' in together or "\\" in together:
        return sa.cast(sa.bindparam(None, list(values), type_=TEXT_ARRAY), TEXT_ARRAY)
    literal = '{"' + '","'.join(values) + '"}' if values else "{}"
    return sa.cast(sa.bindparam(None, literal, type_=sa.Text), TEXT_ARRAY)


def unplanned_text_array(values: Sequence[str]) -> sa.ColumnElement[list[str]]:
    """`text_array` for `= ANY(...)`, as a value the planner does not look into: a sub-select
    (an InitPlan, computed once as the statement runs). Given the array itself, the planner
    estimates a condition on it element by element, which for a batch's 10,000 keys took
    longer than running the statement (bench/README.md); an index probe per key is the plan
    either way."""
    return sa.cast(sa.select(text_array(values)).scalar_subquery(), TEXT_ARRAY)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Rows made ready for `table` (`prepare`): the binary COPY's columns and records for a
    large batch (`records`), the rows themselves for a small one (`records` None)."""

    table: sa.Table
    rows: Sequence[dict[str, Any]]
    columns: list[str]
    records: list[Any] | None


def prepare(table: sa.Table, rows: Sequence[dict[str, Any]]) -> Prepared:
    """`rows` (dicts keyed by column name, all with the same keys) made ready to insert: the
    Python work of `insert_rows`, for a caller that does it while PostgreSQL is busy with
    something else (`writing`)."""
    if len(rows) < COPY_THRESHOLD:
        return Prepared(table, rows, [], None)
    names = list(rows[0].keys())
    return Prepared(table, rows, names, _records(table, names, rows))


def _records(table: sa.Table, names: list[str], rows: Sequence[dict[str, Any]]) -> list[Any]:
    """The COPY records of `rows`, cells in `names`' order, JSON cells as text."""
    json_at = [i for i, c in enumerate(names) if isinstance(table.c[c].type, JSON | JSONB)]
    # itemgetter builds each record in C; only the JSON cells need Python work.
    values = operator.itemgetter(*names)
    if len(names) == 1:
        records: list[Any] = [(values(r),) for r in rows]
    else:
        records = list(map(values, rows))
    if json_at:
        for n, record in enumerate(records):
            cells = list(record)
            for i in json_at:
                cells[i] = json_text(cells[i])
            records[n] = cells
    return records


async def write(session: AsyncSession, prepared: Prepared) -> None:
    """Insert what `prepare` made ready: one executemany INSERT, or a binary COPY."""
    if prepared.records is None:
        if prepared.rows:
            await session.execute(sa.insert(prepared.table), list(prepared.rows))
        return
    await copy_records(session, prepared.table, prepared.columns, prepared.records)


async def insert_rows(
    session: AsyncSession, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert `rows` (dicts keyed by column name, all with the same keys). JSON columns take
    Python values and are encoded with `db.json_text` on both paths (UUIDs and times as
    ISO strings, Decimals as their exact string)."""
    await write(session, prepare(table, rows))


@dataclass(slots=True)
class Beside(Generic[T]):
    """The result of a statement run `beside` the caller's Python work, once the block ends."""

    task: asyncio.Future[T]

    def result(self) -> T:
        return self.task.result()


@contextlib.asynccontextmanager
async def beside(statement: Awaitable[T]) -> AsyncIterator[Beside[T]]:
    """Run `statement` (a coroutine using the session) while the block runs: it is sent
    first, and PostgreSQL works on it while the block does its Python work, instead of one
    party waiting for the other. The block must not use the session (its connection is busy
    until the block ends); the statement's error, if any, is raised at the end of the block,
    and its result is `.result()` after it. A statement the connection has not prepared yet
    takes a round trip first, and starts when the block ends (a connection's first call)."""
    task = asyncio.ensure_future(statement)
    await asyncio.sleep(0)  # the statement starts (is sent) before the block's work
    try:
        yield Beside(task)
    except BaseException:
        # The connection must be free again before the caller's transaction rolls back.
        with contextlib.suppress(Exception):
            await task
        raise
    await task


@contextlib.asynccontextmanager
async def writing(session: AsyncSession, prepared: Prepared) -> AsyncIterator[None]:
    """Write `prepared` while the block runs (`beside`): its records are sent first, and
    PostgreSQL stores them (a COPY into an indexed table takes it longer than the sending)
    while the block prepares what comes next. A small batch is written after the block."""
    if prepared.records is None:
        yield
        await write(session, prepared)
        return
    async with beside(write(session, prepared)):
        yield


@contextlib.asynccontextmanager
async def streaming(
    session: AsyncSession, table: sa.Table, parts: Iterable[Sequence[dict[str, Any]]]
) -> AsyncIterator[None]:
    """Write the rows of `parts` (each part made as it is asked for, e.g. its leads placed) in
    one COPY that starts with the first part: PostgreSQL stores each part while the next is
    made. One statement, not one per part: each would wait for the last to be stored before
    its own records were sent, and PostgreSQL would wait for them in turn. The block runs once
    the last part is made, while PostgreSQL stores what it has left; it must not use the
    session. Rows of one part under `COPY_THRESHOLD` go as `writing` writes them."""
    remaining = iter(parts)
    first = next(remaining, ())
    if len(first) < COPY_THRESHOLD:
        rows = [*first, *(row for part in remaining for row in part)]
        async with writing(session, prepare(table, rows)):
            yield
        return
    names = list(first[0].keys())
    made = asyncio.Event()

    def records() -> Iterator[Any]:
        # A plain generator: the driver takes its records in C, without an await per row.
        for part in itertools.chain((first,), remaining):
            yield from _records(table, names, part)
        made.set()

    copying = asyncio.ensure_future(copy_records(session, table, names, records()))
    waiting = asyncio.ensure_future(made.wait())
    try:
        await asyncio.wait((copying, waiting), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        # The connection must be free again before the caller's transaction rolls back.
        with contextlib.suppress(Exception):
            await copying
        raise
    finally:
        waiting.cancel()
    if copying.done():
        copying.result()  # the statement's error, if it failed before its last part was made
    async with beside(copying):
        yield


async def copy_records(
    session: AsyncSession,
    table: sa.Table,
    columns: Sequence[str],
    records: Iterable[Any],
) -> None:
    """Binary COPY of ready records (sequences in `columns` order, JSON cells as text)."""
    conn = await driver_connection(session)
    await conn.copy_records_to_table(
        table.name, schema_name=table.schema, columns=list(columns), records=records
    )
