"""`bulk.beside`: a statement is already at work in PostgreSQL while the block does its Python
work; its result (or its error) comes at the block's end; a block that fails leaves the
session's connection free for the rollback."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from servicekit.bulk import beside
from servicekit.db import Database, to_asyncpg_dsn


async def _state_of(url: str, marker: str) -> str | None:
    """The state of the backend running the statement that carries `marker`, seen from
    another connection."""
    conn = await asyncpg.connect(to_asyncpg_dsn(url))
    try:
        state: str | None = await conn.fetchval(
            "SELECT state FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )
        return state
    finally:
        await conn.close()


async def test_the_statement_runs_while_the_block_works(db: Database, sample_db: str) -> None:
    sql = sa.text("SELECT 41 + 1 AS beside_marker FROM pg_sleep(0.5)")
    async with db.session() as s:
        # The connection prepares a statement once (a round trip of its own); from then on
        # `beside` sends it at once, as it does a service's statements after its first call.
        await s.execute(sql)
        async with beside(s.execute(sql)) as running:
            # The block's own work (here: a look from another connection) finds the
            # statement already in PostgreSQL's hands.
            assert await _state_of(sample_db, "beside_marker") == "active"
            assert not running.task.done()
        assert running.result().scalar_one() == 42


async def test_the_statement_error_comes_at_the_block_end(db: Database) -> None:
    worked = False
    async with db.session() as s:
        with pytest.raises(DBAPIError, match="division by zero"):
            async with beside(s.execute(sa.text("SELECT 1 / 0"))):
                worked = True
        await s.rollback()
        assert (await s.execute(sa.select(sa.literal(7)))).scalar_one() == 7
    assert worked


async def test_a_failing_block_leaves_the_connection_free(db: Database) -> None:
    async with db.session() as s:
        with pytest.raises(LookupError, match="the block failed"):
            async with beside(s.execute(sa.text("SELECT 1 FROM pg_sleep(0.2)"))):
                raise LookupError("the block failed")
        # The statement finished before the error left the block: the session rolls back
        # and runs the next statement, instead of "another operation is in progress".
        await s.rollback()
        assert (await s.execute(sa.select(sa.literal(7)))).scalar_one() == 7
