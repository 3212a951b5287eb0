"""Customer codes: `{region}-{seq:06}` and friends, gap-free per prefix, never reused.

The counter row of a prefix is incremented inside the creating transaction. A rollback undoes
the increment (no gap), the row lock makes concurrent creates of one prefix take turns (no
duplicate), and codes are never updated or deleted (never reused). A batch reserves its whole
range per prefix in one statement.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import repository

FIELDS = frozenset({"region", "level", "year", "seq"})
_FORMATTER = string.Formatter()


def validate_pattern(pattern: str) -> str | None:
    """None when the pattern is usable, else what is wrong with it."""
    try:
        parts = list(_FORMATTER.parse(pattern))
    except ValueError as exc:
        return f"not a valid pattern: {exc}"
    fields = [f for _, f, _, _ in parts if f is not None]
    unknown = sorted({f for f in fields if f not in FIELDS})
    if unknown:
        return f"unknown field(s) {unknown}; use {sorted(FIELDS)}"
    if fields.count("seq") != 1:
        return "must contain {seq} (e.g. {seq:06}) exactly once"
    if any(conv for _, f, _, conv in parts if f is not None):
        return "conversions such as !r are not allowed"
    try:
        render(pattern, "EAST", "A", 2026, 1)
    except (ValueError, TypeError) as exc:
        return f"cannot render: {exc}"
    return None


def _values(region: str, level: str, year: int) -> dict[str, object]:
    return {"region": region, "level": level, "year": year}


def prefix_key(pattern: str, region: str, level: str, year: int) -> str:
    """The counter key: the pattern with everything but the sequence filled in."""
    values = _values(region, level, year)
    out = []
    for literal, field, spec, _ in _FORMATTER.parse(pattern):
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        if field == "seq":
            out.append("{seq" + (f":{spec}" if spec else "") + "}")
        else:
            out.append(format(values[field], spec or "").replace("{", "{{").replace("}", "}}"))
    return "".join(out)


def render(pattern: str, region: str, level: str, year: int, seq: int) -> str:
    return pattern.format(**_values(region, level, year), seq=seq)


def render_key(key: str, seq: int) -> str:
    return key.format(seq=seq)


async def reserve(session: AsyncSession, counts: Mapping[str, int]) -> dict[str, int]:
    """Reserve `n` numbers per prefix key; returns the first number of each range."""
    if not counts:
        return {}
    last = await repository.reserve_codes(session, counts)
    return {prefix: value - counts[prefix] + 1 for prefix, value in last.items()}


def current_year(now: datetime) -> int:
    return now.year
