"""JSON cells of bulk writes: by COPY (a large batch) and by INSERT (a small one) the same
documents are stored, including what orjson encodes only through the kit's `json_text`
(exact decimals by `default`, non-string keys on its second try), and read back as the API
would write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON, JSONB

from servicekit import bulk
from servicekit.db import Database, json_text

DOCS = sa.Table(
    "docs",
    sa.MetaData(),
    sa.Column("n", sa.Integer, primary_key=True),
    sa.Column("b", JSONB),
    sa.Column("j", JSON),
)
CREATE = "CREATE TEMP TABLE docs (n int PRIMARY KEY, b jsonb, j json)"
ID = uuid.UUID("0190a7f0-0000-7000-8000-000000000001")
AT = datetime(2026, 12, 4, 8, 30, tzinfo=UTC)


def document(n: int) -> dict[Any, Any]:
    if n % 3 == 0:  # an exact decimal (orjson's `default`) and an int key (the second try)
        return {"amount": Decimal("1234.50"), 7: "seven", "n": n}
    return {"id": ID, "at": AT, "n": n, "tags": ["a", None, 1.5], "name": "Zhāng 张"}


def expected(n: int) -> dict[str, Any]:
    if n % 3 == 0:
        return {"amount": "1234.50", "7": "seven", "n": n}
    return {
        "id": str(ID),
        "at": "2026-12-04T08:30:00+00:00",
        "n": n,
        "tags": ["a", None, 1.5],
        "name": "Zhāng 张",
    }


def test_json_text_writes_decimals_and_non_string_keys() -> None:
    assert json_text({"n": 1}) == '{"n":1}'
    assert json_text({"a": Decimal("0.10"), 2: True}) == '{"a":"0.10","2":true}'
    assert json_text({"id": ID}) == f'{{"id":"{ID}"}}'


@pytest.mark.parametrize("count", [5, 200], ids=["insert", "copy"])
async def test_both_paths_store_the_same_documents(db: Database, count: int) -> None:
    rows = [{"n": n, "b": document(n), "j": document(n)} for n in range(count)]
    async with db.session() as s:
        await s.execute(sa.text(CREATE))
        await bulk.insert_rows(s, DOCS, rows)
        stored = (await s.execute(sa.select(DOCS).order_by(DOCS.c.n))).all()
        typed = await s.scalar(sa.text("SELECT count(*) FROM docs WHERE b->>'n' = n::text"))
        # SQLAlchemy's own statements bind JSON through `json_text` too.
        await s.execute(sa.update(DOCS).where(DOCS.c.n == 1).values(b={"x": 1}, j={"y": 2}))
        changed = (await s.execute(sa.select(DOCS.c.b, DOCS.c.j).where(DOCS.c.n == 1))).one()
    assert [tuple(r) for r in stored] == [(n, expected(n), expected(n)) for n in range(count)]
    assert tuple(changed) == ({"x": 1}, {"y": 2})
    assert typed == count
