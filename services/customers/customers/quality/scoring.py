"""The completeness score (0-100) of a customer record, defined once.

Weights (they add up to 100):

| part        | field                          | points |
| ----------- | ------------------------------ | ------ |
| required    | name                           | 15     |
|             | region                         | 10     |
|             | phone                          | 15     |
|             | address                        | 10     |
|             | industry                       | 10     |
| recommended | email                          | 8      |
|             | estimated_potential            | 8      |
|             | contacts (at least one)        | 6      |
|             | source                         | 4      |
|             | tags (at least one)            | 4      |
| freshness   | updated within 90 days         | 10     |
|             | updated within 365 days        | 5      |

The same table drives the Python score of one record (the full file) and the SQL expression the
data-quality list filters and sorts on, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.models import CUSTOMERS
from customers.commerce.models import CONTACTS
from servicekit.db import utcnow


@dataclass(frozen=True, slots=True)
class Part:
    field: str
    points: int
    required: bool


PARTS: tuple[Part, ...] = (
    Part("name", 15, True),
    Part("region", 10, True),
    Part("phone", 15, True),
    Part("address", 10, True),
    Part("industry", 10, True),
    Part("email", 8, False),
    Part("estimated_potential", 8, False),
    Part("contacts", 6, False),
    Part("source", 4, False),
    Part("tags", 4, False),
)
FRESH_DAYS, FRESH_POINTS = 90, 10
RECENT_DAYS, RECENT_POINTS = 365, 5
assert sum(p.points for p in PARTS) + FRESH_POINTS == 100


class DataQuality(BaseModel):
    score: int
    missing_required: list[str]
    missing_recommended: list[str]
    # True when the record was not updated within FRESH_DAYS (it then loses freshness points).
    stale: bool


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | set):
        return len(value) > 0
    return True


def freshness_points(updated_at: datetime, now: datetime) -> int:
    age = now - updated_at
    if age <= timedelta(days=FRESH_DAYS):
        return FRESH_POINTS
    if age <= timedelta(days=RECENT_DAYS):
        return RECENT_POINTS
    return 0


def assess(
    values: dict[str, Any], updated_at: datetime, now: datetime | None = None
) -> DataQuality:
    """Score a record given its field values (`contacts` = how many it has)."""
    now = now or utcnow()
    score = freshness_points(updated_at, now)
    missing_required: list[str] = []
    missing_recommended: list[str] = []
    for part in PARTS:
        if _present(values.get(part.field)):
            score += part.points
        elif part.required:
            missing_required.append(part.field)
        else:
            missing_recommended.append(part.field)
    return DataQuality(
        score=score,
        missing_required=missing_required,
        missing_recommended=missing_recommended,
        stale=score_is_stale(updated_at, now),
    )


def score_is_stale(updated_at: datetime, now: datetime) -> bool:
    return now - updated_at > timedelta(days=FRESH_DAYS)


async def data_quality(
    session: AsyncSession, customer: Any, *, now: datetime | None = None
) -> DataQuality:
    """The score of one customer (`customer` is an archive `Customer`)."""
    has_contact = await session.scalar(
        sa.select(sa.exists().where(CONTACTS.c.customer_id == customer.id))
    )
    values = {p.field: getattr(customer, p.field, None) for p in PARTS if p.field != "contacts"}
    values["contacts"] = 1 if has_contact else 0
    return assess(values, customer.updated_at, now)


# --- the same score, in SQL -------------------------------------------------------------------


def _present_sql(field: str) -> sa.ColumnElement[bool]:
    if field == "contacts":
        return sa.exists().where(CONTACTS.c.customer_id == CUSTOMERS.c.id)
    col = CUSTOMERS.c[field]
    if field == "tags":
        return sa.func.cardinality(col) > 0
    if isinstance(col.type, sa.String | sa.Text):
        return sa.func.coalesce(sa.func.btrim(col), "") != ""
    return col.is_not(None)


def score_sql(now: datetime | sa.ColumnElement[datetime]) -> sa.ColumnElement[int]:
    terms: list[sa.ColumnElement[int]] = [
        sa.case((_present_sql(p.field), p.points), else_=0) for p in PARTS
    ]
    terms.append(
        sa.case(
            (CUSTOMERS.c.updated_at >= now - timedelta(days=FRESH_DAYS), FRESH_POINTS),
            (CUSTOMERS.c.updated_at >= now - timedelta(days=RECENT_DAYS), RECENT_POINTS),
            else_=0,
        )
    )
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return sa.cast(total, sa.Integer)


def section_sql(customer_id: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The full file's data_quality section, computed in the file's own statement (the row's
    columns are in scope there; `now()` keeps the cached statement right every day)."""
    now = sa.func.now()

    def missing(required: bool) -> sa.ColumnElement[Any]:
        names = [
            sa.case((_present_sql(p.field), sa.null()), else_=sa.literal(p.field))
            for p in PARTS
            if p.required is required
        ]
        return sa.func.to_json(sa.func.array_remove(postgresql.array(names), sa.null()))

    return sa.func.json_build_object(
        "score",
        score_sql(now),
        "missing_required",
        missing(True),
        "missing_recommended",
        missing(False),
        "stale",
        CUSTOMERS.c.updated_at < now - timedelta(days=FRESH_DAYS),
    )


def present_sql_columns() -> list[sa.ColumnElement[bool]]:
    """One boolean per part, labelled by field name, to name the missing fields of a row."""
    return [_present_sql(p.field).label(f"has_{p.field}") for p in PARTS]


def from_row(row: Any, now: datetime) -> DataQuality:
    values = {p.field: (1 if getattr(row, f"has_{p.field}") else None) for p in PARTS}
    return assess(values, row.updated_at, now)
