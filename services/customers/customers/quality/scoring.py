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

The same table drives the Python score (`assess`) and the SQL expressions the data-quality list
filters and sorts on and the full file's section shows (`repository.score_sql`,
`repository.data_quality_section`), so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from customers.quality.schemas import DataQuality
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


def from_row(row: Any, now: datetime) -> DataQuality:
    """The score of a row of `repository.incomplete_page` (its `has_<field>` flags)."""
    values = {p.field: (1 if getattr(row, f"has_{p.field}") else None) for p in PARTS}
    return assess(values, row.updated_at, now)
