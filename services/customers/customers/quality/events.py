"""Data quality's events."""

from __future__ import annotations

from typing import Any

from customers.archive.events import customer_facts

# An A-level customer whose record became incomplete (analytics turns it into an alert).
CUSTOMER_DATA_INCOMPLETE = "customer.data_incomplete"
# A customer whose record counted as incomplete no longer does, whatever its level (the
# alert ends; a consumer that remembers the record as incomplete forgets it).
CUSTOMER_DATA_COMPLETED = "customer.data_completed"


def data_quality(row: Any, threshold: int) -> dict[str, Any]:
    """Both events' data. `row`: the customer as the score was stored, with what it
    misses."""
    return {
        **customer_facts(row._mapping),
        "score": row.quality_score,
        "threshold": threshold,
        "missing_required": list(row.missing_required),
        "missing_recommended": list(row.missing_recommended),
    }
