"""`bulk.text_array`: whatever the strings, PostgreSQL reads back exactly the list sent, as one
array literal or, when an element would need escaping, as an array parameter."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from servicekit.bulk import text_array
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
