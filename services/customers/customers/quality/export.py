"""CSV export of the customers the caller may see, streamed.

Rows come from a server-side cursor on a connection of the export's own (the request's session
is committed and closed before the body starts to flow), a few thousand at a time, so memory
stays flat whatever the size of the scope.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any

import sqlalchemy as sa

from customers.archive.access import require_read
from customers.archive.models import CUSTOMERS
from customers.archive.repository import visibility_filter
from customers.archive.schemas import PUBLIC_FIELDS
from servicekit.auth import Principal
from servicekit.db import Database

COLUMNS = PUBLIC_FIELDS
BATCH = 2000
# Tags travel in one CSV cell; the import splits them on the same separator.
TAG_SEPARATOR = ";"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return TAG_SEPARATOR.join(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, str) and _formula_like(value):
        # A spreadsheet would run it as a formula (CSV injection); a leading quote keeps it text.
        return "'" + value
    return value


def _formula_like(value: str) -> bool:
    if not value:
        return False
    if value[0] in "=@\t\r":
        return True
    # "+86 138..." and "-5" are data; "+SUM(...)" or "-cmd|..." are not.
    return value[0] in "+-" and len(value) > 1 and not (value[1].isdigit() or value[1] in " (.")


def _render(rows: Sequence[Sequence[Any]] | None) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if rows is None:
        writer.writerow(COLUMNS)
    else:
        writer.writerows([_cell(v) for v in row] for row in rows)
    return buf.getvalue().encode()


def export_statement(principal: Principal, filters: Sequence[sa.ColumnElement[bool]]) -> Any:
    require_read(principal)
    c = CUSTOMERS.c
    return (
        sa.select(*[c[name] for name in COLUMNS])
        .where(visibility_filter(principal), *filters)
        .order_by(c.created_at, c.id)
    )


async def stream_csv(db: Database, stmt: Any) -> AsyncIterator[bytes]:
    assert db.engine is not None
    yield _render(None)
    async with db.engine.connect() as conn:
        result = await conn.stream(stmt.execution_options(yield_per=BATCH))
        async for partition in result.partitions(BATCH):
            yield _render(partition)
