"""The answer of an import: each row's outcome, and how many rows had each."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

OUTCOMES = ("created", "updated", "unchanged", "error")


def import_report(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """`results` in row order, each with its `outcome` (one of `OUTCOMES`)."""
    counts = Counter(r["outcome"] for r in results)
    return {
        "results": list(results),
        "created": counts["created"],
        "updated": counts["updated"],
        "unchanged": counts["unchanged"],
        "errors": counts["error"],
    }
