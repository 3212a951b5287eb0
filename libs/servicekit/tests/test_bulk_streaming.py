"""`bulk.streaming`: rows made part by part go into one COPY that starts with the first part;
the block runs once the last part is made; an error in making a part or in storing a row
fails the write, writes nothing, and leaves the session's connection free for the rollback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from servicekit import bulk
from servicekit.db import Database

STREAMED = sa.Table(
    "streamed",
    sa.MetaData(),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("note", sa.Text),
    sa.Column("data", sa.dialects.postgresql.JSONB),
)
CREATE = "CREATE TEMP TABLE streamed (n int PRIMARY KEY, note text, data jsonb)"


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables each COPY statement of the test wrote to."""
    statements: list[str] = []
    copy_records = bulk.copy_records

    async def counted(session: Any, table: sa.Table, *args: Any) -> None:
        statements.append(table.name)
        await copy_records(session, table, *args)

    monkeypatch.setattr(bulk, "copy_records", counted)
    return statements


def rows(start: int, count: int) -> list[dict[str, Any]]:
    return [
        {"n": n, "note": f"row {n}", "data": {"n": n, "tags": ["a", n]}}
        for n in range(start, start + count)
    ]


async def _stored(s: Any) -> list[tuple[Any, ...]]:
    result = await s.execute(sa.text("SELECT n, note, data FROM streamed ORDER BY n"))
    return [tuple(r) for r in result]


async def test_the_parts_go_in_one_copy_and_the_block_runs_after_the_last(
    db: Database, copies: list[str]
) -> None:
    made: list[int] = []

    def parts() -> Iterator[list[dict[str, Any]]]:
        for k in range(4):
            made.append(k)
            yield rows(k * 100, 100 if k < 3 else 7)

    async with db.session() as s:
        await s.execute(sa.text(CREATE))
        async with bulk.streaming(s, STREAMED, parts()):
            seen_in_block = list(made)
        stored = await _stored(s)
    assert seen_in_block == [0, 1, 2, 3]
    assert copies == ["streamed"]
    assert stored == [(n, f"row {n}", {"n": n, "tags": ["a", n]}) for n in range(307)]


async def test_a_small_batch_is_written_as_writing_writes_it(
    db: Database, copies: list[str]
) -> None:
    async with db.session() as s:
        await s.execute(sa.text(CREATE))
        async with bulk.streaming(s, STREAMED, iter([rows(0, 3), rows(3, 2)])):
            pass
        assert await _stored(s) == [(n, f"row {n}", {"n": n, "tags": ["a", n]}) for n in range(5)]
        async with bulk.streaming(s, STREAMED, iter([])):
            pass
    assert copies == []  # an executemany INSERT, and nothing at all for no rows


async def test_a_part_that_cannot_be_made_fails_the_write(db: Database) -> None:
    def parts() -> Iterator[list[dict[str, Any]]]:
        yield rows(0, 100)
        raise LookupError("no rep for this part")

    async with db.session() as s:
        await s.execute(sa.text(CREATE))
        await s.commit()
        with pytest.raises(LookupError, match="no rep for this part"):
            async with bulk.streaming(s, STREAMED, parts()):
                pytest.fail("the block runs only once every part is made")
        await s.rollback()
        assert await _stored(s) == []


async def test_a_row_postgresql_refuses_fails_the_write(db: Database) -> None:
    duplicate = rows(0, 100) + rows(50, 1)
    async with db.session() as s:
        await s.execute(sa.text(CREATE))
        await s.commit()
        # A COPY goes to the driver's connection: its error is the driver's.
        with pytest.raises(asyncpg.UniqueViolationError, match="duplicate key"):
            async with bulk.streaming(s, STREAMED, iter([duplicate, rows(200, 100)])):
                pass
        await s.rollback()
        assert await _stored(s) == []
