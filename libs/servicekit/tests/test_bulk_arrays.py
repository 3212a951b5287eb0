"""`bulk.text_array`: whatever the strings, PostgreSQL reads back exactly the list sent, as one
array literal or, when an element would need escaping, as an array parameter; and
`bulk.unplanned_text_array`, the same array out of the planner's sight."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from servicekit.bulk import driver_connection, text_array, unplanned_text_array
from servicekit.db import Database
from servicekit.testing.sample.app import SCHEMA


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["13800138000", "a@x.cn", "bright star"],
        ["NULL", "null", "", " padded ", "a,b", "{c}", "é 公司", "x'y"],
        ['say "hi"', "back\\slash", "plain"],
    ],
)
async def test_the_array_holds_exactly_the_values_sent(sample_db, values) -> None:
    db = Database(sample_db, app_name="arrays", schema=SCHEMA)
    await db.connect()
    try:
        async with db.session() as s:
            array = text_array(values)
            got = (await s.execute(sa.select(array))).scalar_one()
            unnested = (await s.execute(sa.select(sa.func.unnest(array)))).scalars().all()
        assert got == values and list(unnested) == values
    finally:
        await db.close()


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["13800138000", "a@x.cn", "bright star"],
        ['say "hi"', "back\\slash", "plain", "plain"],
    ],
)
async def test_an_unplanned_array_finds_exactly_the_values_sent(sample_db, values) -> None:
    pool = sa.select(sa.func.unnest(text_array([*values, "not sent"])).label("v")).subquery()
    stmt = sa.select(pool.c.v).where(pool.c.v == sa.any_(unplanned_text_array(values)))
    db = Database(sample_db, app_name="arrays", schema=SCHEMA)
    await db.connect()
    try:
        async with db.session() as s:
            found = (await s.execute(stmt)).scalars().all()
        assert sorted(found) == sorted(values)
    finally:
        await db.close()


async def test_the_planner_does_not_look_into_an_unplanned_array(sample_db) -> None:
    """The plan of `= ANY(unplanned_text_array(...))` is made without the values (an InitPlan
    computes the array as the statement runs); with `text_array` they are the plan's."""
    phones = ["13800138000", "13900139000"]
    db = Database(sample_db, app_name="arrays", schema=SCHEMA)
    await db.connect()
    try:
        async with db.session() as s:
            conn = await driver_connection(s)
            plans = []
            for array in (unplanned_text_array(phones), text_array(phones)):
                pool = sa.select(sa.func.unnest(text_array(["x"])).label("v")).subquery()
                stmt = sa.select(pool.c.v).where(pool.c.v == sa.any_(array))
                compiled = stmt.compile(dialect=s.get_bind().dialect)
                params = [compiled.params[name] for name in compiled.positiontup or ()]
                rows = await conn.fetch(f"EXPLAIN (COSTS OFF) {compiled}", *params)
                plans.append("\n".join(row[0] for row in rows))
        unplanned, planned = plans
        assert "InitPlan" in unplanned and "13800138000" not in unplanned
        assert "13800138000" in planned
    finally:
        await db.close()
