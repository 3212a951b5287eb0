"""Field types whose document must say exactly what the server accepts and sends.

- `Omittable[T]`: a field of an update that may be left out but never sent as null (a name, a
  level): the document shows no null, and a null is a 422 naming the field.
- `DecimalString(...)`: money and other exact decimals travel as decimal strings
  (`"1250.50"`, never a JSON number, which a client would read as a float). The pattern the
  document shows is the one the server checks, digits and places included, so a client (or a
  property-based tester) and the server agree on every value.
- `DecimalOut`: a decimal the API sends, as the string it is written as.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

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
