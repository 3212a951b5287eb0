"""Event type patterns of a subscription: `visit.completed` (one type), `customer.*` (every
type under `customer.`, however deep), `*` (everything). Pure helpers: validation, and the
patterns that match a given type (the repository asks PostgreSQL for the endpoints holding any
of them, one array overlap)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from servicekit.errors import ValidationFailed

WILDCARD = "*"
_PATTERN = re.compile(r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?)$")
MAX_PATTERNS = 100


def check_patterns(patterns: Iterable[str], field: str = "events") -> list[str]:
    """The patterns, deduplicated in their order; 422 naming the first malformed one."""
    seen: dict[str, None] = {}
    for index, pattern in enumerate(patterns):
        if not _PATTERN.match(pattern):
            raise ValidationFailed.field(
                f"{field}.{index}",
                f"{pattern!r} is not an event type pattern: use a type such as "
                "'visit.completed', a prefix such as 'customer.*', or '*'",
            )
        seen[pattern] = None
    if not seen:
        raise ValidationFailed.field(field, "name at least one event type pattern")
    return list(seen)


def patterns_for(event_type: str) -> list[str]:
    """Every pattern that matches `event_type`: itself, `*`, and each of its prefixes with
    `.*` (`customer.contact.added`: also `customer.*` and `customer.contact.*`)."""
    parts = event_type.split(".")
    found = [event_type, WILDCARD]
    found += [".".join(parts[:n]) + ".*" for n in range(1, len(parts))]
    return found


def matches(patterns: Iterable[str], event_type: str) -> bool:
    return not set(patterns).isdisjoint(patterns_for(event_type))
