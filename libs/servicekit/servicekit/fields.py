"""Input field types that PostgreSQL and the event feeds can always store.

Pydantic accepts strings PostgreSQL refuses (a NUL character is not valid in `text` or `jsonb`:
the insert would fail as a 500) and JSON that the outbox cannot encode or `jsonb` cannot hold
(integers beyond 64 bits, NaN and infinities, which Python's JSON parser reads). These types
refuse them up front, as a 422 naming the field:

    Name = Annotated[str, StringConstraints(max_length=200), NO_NUL]
    Attributes = Annotated[dict[str, Any], AfterValidator(json_checker(max_bytes=8192))]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import AfterValidator

# Integers JSON consumers read exactly (JavaScript's safe range).
MAX_JSON_INT = 2**53 - 1


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Annotated metadata: the string is refused when it holds a NUL character.
NO_NUL = AfterValidator(no_nul)


def _check(value: Any, depth: int, max_depth: int) -> None:
    if depth > max_depth:
        raise ValueError(f"nests deeper than {max_depth} levels")
    if isinstance(value, str):
        no_nul(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("has a number that is not finite")
        # Beyond it a JSON reader (or the parser before us) rounds: "as given" would not hold.
        if abs(value) > MAX_JSON_INT:
            raise ValueError(f"has a number beyond ±{MAX_JSON_INT} (send large ids as text)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("has a key that is not a string")
            no_nul(key)
            _check(item, depth + 1, max_depth)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1, max_depth)
    else:
        raise ValueError(f"has a value that is not JSON ({type(value).__name__})")


def json_checker(
    *, max_bytes: int = 8192, max_depth: int = 5
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A validator of a JSON object kept as given: at most `max_bytes` encoded, `max_depth`
    levels, with NUL-free strings, finite numbers and integers every JSON reader takes."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        _check(value, 0, max_depth)
        if len(orjson.dumps(value)) > max_bytes:
            raise ValueError(f"is larger than {max_bytes} bytes as JSON")
        return value

    return check
