"""Field types whose document says exactly what the server accepts and sends, and that
PostgreSQL and the event feeds can always store.

- `Omittable[T]`: a field of an update that may be left out but never sent as null (a name, a
  level): the document shows no null, and a null is a 422 naming the field.
- `DecimalString(...)`: money and other exact decimals travel as decimal strings
  (`"1250.50"`, never a JSON number, which a client would read as a float). The pattern the
  document shows is the one the server checks, digits and places included, so a client (or a
  property-based tester) and the server agree on every value.
- `DecimalOut`: a decimal the API sends, as the string it is written as.

Pydantic accepts strings PostgreSQL refuses (a NUL character is not valid in `text` or `jsonb`:
the insert would fail as a 500) and JSON that the outbox cannot encode or `jsonb` cannot hold
(integers beyond 64 bits, NaN and infinities, which Python's JSON parser reads). `NO_NUL` and
`json_checker` refuse them up front, as a 422 naming the field:

    Name = Annotated[str, StringConstraints(max_length=200), NO_NUL]
    Attributes = Annotated[dict[str, Any], AfterValidator(json_checker(max_bytes=8192))]
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import AfterValidator, GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from servicekit.inputs import unstorable

T = TypeVar("T")

# How the API writes a decimal (`str(Decimal)` of a PostgreSQL numeric: no exponent).
DECIMAL_OUT_PATTERN = r"^-?\d+(\.\d+)?$"


class _RefuseNull:
    """Validation refuses null; the JSON schema drops the null that `T | None` brings."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_not_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        value = handler(schema)
        options = value.get("anyOf")
        if isinstance(options, list):
            kept = [o for o in options if o != {"type": "null"}]
            rest = {k: v for k, v in value.items() if k != "anyOf"}
            value = {**kept[0], **rest} if len(kept) == 1 else {**rest, "anyOf": kept}
        return value


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be left out, but not set to null")
    return value


# `None` is the default (left out: `exclude_unset` skips it); a null sent is refused.
Omittable = Annotated[T | None, _RefuseNull()]


def _nonzero_fraction(places: int) -> str:
    """A fraction of 1..places digits that is not all zeros, without lookaheads (which not
    every generator of strings from patterns supports)."""
    options = []
    for zeros in range(places):
        rest = places - zeros - 1
        options.append("0" * zeros + "[1-9]" + (f"\\d{{0,{rest}}}" if rest else ""))
    return "|".join(options)


def decimal_pattern(*, digits: int, places: int, minimum: str = "zero") -> str:
    """The pattern of a decimal string with at most `digits` digits, `places` of them after
    the point; `minimum`: "zero" (0 and up), "positive" (above 0) or "any" (signed)."""
    whole = digits - places
    integer = f"(0|[1-9]\\d{{0,{whole - 1}}})"
    fraction = f"(\\.\\d{{1,{places}}})?" if places else ""
    body = integer + fraction
    if minimum == "positive":
        above_one = f"[1-9]\\d{{0,{whole - 1}}}{fraction}"
        body = f"({above_one}|0\\.({_nonzero_fraction(places)}))" if places else above_one
    sign = "-?" if minimum == "any" else ""
    return f"^{sign}{body}$"


_KINDS = {"zero": "not negative", "positive": "above zero", "any": "signed"}


@dataclass(frozen=True)
class DecimalString:
    """`Annotated[Decimal, DecimalString(...)]`: an exact decimal sent as a string matching
    `decimal_pattern(...)`, the one pattern both the document and the server apply."""

    digits: int = 14
    places: int = 2
    minimum: str = "zero"
    example: str = "1250.50"

    @property
    def pattern(self) -> str:
        return decimal_pattern(digits=self.digits, places=self.places, minimum=self.minimum)

    @property
    def description(self) -> str:
        return (
            f"A decimal as a string, {_KINDS[self.minimum]}: at most "
            f"{self.digits - self.places} digits before the point and {self.places} after"
        )

    def parse(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str):
            raise ValueError(f'send a decimal as a string, e.g. "{self.example}"')
        if not _compiled(self.pattern).fullmatch(value):
            raise ValueError(f"{self.description.lower()}, e.g. {self.example!r}")
        return Decimal(value)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(self.parse, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if handler.mode == "serialization":
            return {"type": "string", "pattern": DECIMAL_OUT_PATTERN, "examples": [self.example]}
        return {
            "type": "string",
            "pattern": self.pattern,
            "description": self.description,
            "examples": [self.example],
        }


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# Money: up to 12 digits before the point, cents after.
Money = Annotated[Decimal, DecimalString()]
PositiveMoney = Annotated[Decimal, DecimalString(minimum="positive")]
SignedMoney = Annotated[Decimal, DecimalString(minimum="any")]

DecimalOut = Annotated[
    Decimal,
    WithJsonSchema({"type": "string", "pattern": DECIMAL_OUT_PATTERN, "examples": ["1250.50"]}),
]


# Integers JSON consumers read exactly (JavaScript's safe range).
MAX_JSON_INT = 2**53 - 1


def no_nul(value: str) -> str:
    # The request's edge refuses these already (`servicekit.inputs`); a value built from
    # another source (a CSV row, an event) meets the same rule here.
    if (reason := unstorable(value)) is not None:
        raise ValueError(reason)
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


# A number beyond ±MAX_JSON_INT is written with 16 digits or more, or with an exponent.
_DIGITS = bytes.maketrans(b"123456789E", b"000000000e")
_LONG_NUMBER = b"0" * len(str(MAX_JSON_INT))


def json_fits(encoded: bytes, *, max_bytes: int = 8192, max_depth: int = 5) -> bool:
    """Whether `encoded`, the JSON text of a value parsed from a body that
    `inputs.may_hold_refusals` cleared (no U+0000, no surrogate, no non-finite number), passes
    `json_checker(max_bytes=, max_depth=)` for certain, without the checker's walk in Python
    (a call per value): it is small enough, it has too few brackets to nest deeper, and no
    run of digits or exponent long enough for a number beyond ±MAX_JSON_INT. False: it may
    not (brackets and digits inside strings count too); the checker tells."""
    if len(encoded) > max_bytes:
        return False
    if encoded.count(b"{") + encoded.count(b"[") > max_depth:
        return False
    folded = encoded.translate(_DIGITS)
    return _LONG_NUMBER not in folded and b"0e" not in folded


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
