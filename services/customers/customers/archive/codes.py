"""Customer codes: `{region}-{level}-{seq:06}` and friends, gap-free per prefix, never reused.

The counter row of a prefix is incremented inside the creating transaction. A rollback undoes
the increment (no gap), the row lock makes concurrent creates of one prefix take turns (no
duplicate), and codes are never updated or deleted (never reused). A batch reserves its whole
range per prefix in one statement. The level in a code is the level at creation: codes never
change, whatever happens to the customer later. A pattern whose codes could collide is refused
when it is set (`validate_pattern`); a collision that still happens (the pattern changed and
an old code's shape meets a new one's) is a 409, never a 500.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import repository

FIELDS = frozenset({"region", "level", "year", "seq"})
_FORMATTER = string.Formatter()
# `{seq}` renders as decimal digits only (zero-padded or not): anything else could make two
# numbers render alike.
_SEQ_SPEC = re.compile(r"0?[0-9]*d?")
_EXAMPLE = "{region}-{level}-{seq:06}"


def validate_pattern(pattern: str) -> str | None:
    """None when the pattern is usable, else what is wrong with it and why.

    A code must name one customer whatever the values of its fields, so that the counter of
    each prefix alone keeps codes unique: the pattern has exactly one `{seq}`, rendered as
    digits, and wherever another field sits beside it a separator that is not a digit stands
    between them (the bare `{level}`, one letter, is such a separator). Then the run of digits
    that is the sequence number can always be told apart from the rest (a region may end in
    digits; a padded number still grows past its width).
    """
    try:
        parts = list(_FORMATTER.parse(pattern))
    except ValueError as exc:
        return f"not a valid pattern: {exc}"
    fields = [f for _, f, _, _ in parts if f is not None]
    unknown = sorted({f for f in fields if f not in FIELDS})
    if unknown:
        return f"unknown field(s) {unknown}; use {sorted(FIELDS)}"
    if "seq" not in fields:
        return (
            "has no {seq}: without the sequence number every customer of a region and level "
            f"would get the same code; e.g. {_EXAMPLE}"
        )
    repeated = sorted({f for f in fields if fields.count(f) > 1})
    if repeated:
        return f"uses {', '.join('{' + f + '}' for f in repeated)} more than once"
    if any(conv for _, f, _, conv in parts if f is not None):
        return "conversions such as !r are not allowed"
    at = next(i for i, (_, f, _, _) in enumerate(parts) if f == "seq")
    spec = parts[at][2] or ""
    if not _SEQ_SPEC.fullmatch(spec):
        return f"{{seq:{spec}}} must render plain digits, e.g. {{seq:06}}"
    before = (parts[at][0], parts[at - 1] if at > 0 else None, parts[:at])
    after_part = parts[at + 1] if at + 1 < len(parts) else None
    after = (after_part[0] if after_part else "", after_part, parts[at + 1 :])
    for side, edge, (literal, neighbour, rest) in (("before", -1, before), ("after", 0, after)):
        if not _separated(literal, edge, neighbour, rest):
            return (
                f"is ambiguous: nothing but digits may separate {{seq}} from the field {side} "
                "it, so two customers could get the same code (with {region}{seq}, region "
                "'A1' number 1 and region 'A' number 11 both give 'A11'); put a separator "
                f"such as '-' there, e.g. {_EXAMPLE}"
            )
    try:
        render(pattern, "EAST", "A", 2026, 1)
    except (ValueError, TypeError) as exc:
        return f"cannot render: {exc}"
    return None


Part = tuple[str, str | None, str | None, str | None]


def _separated(literal: str, edge: int, neighbour: Part | None, rest: Sequence[Part]) -> bool:
    """Is {seq} told apart from the fields on this side of it? Yes when there are none, when
    the literal between ends (at this edge) in something other than a digit, or when the
    field right beside it never renders a digit: a level is one letter (A, B, C), and only
    the bare `{level}` counts, since a format spec could pad it with digits."""
    if not any(f is not None for _, f, _, _ in rest):
        return True
    if literal:
        return not literal[edge].isdigit()
    return neighbour is not None and neighbour[1] == "level" and not neighbour[2]


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
