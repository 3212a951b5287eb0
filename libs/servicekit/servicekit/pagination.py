"""Keyset (cursor) pagination: opaque cursors, `limit` default 50, max 200."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import orjson
import sqlalchemy as sa
from fastapi import Depends, Query
from pydantic import BaseModel, Field

from servicekit.errors import ValidationFailed
from servicekit.inputs import unstorable

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

T = TypeVar("T")
R = TypeVar("R")


class SortOrder(StrEnum):
    asc = "asc"
    desc = "desc"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="null on the last page")


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageDep = Annotated[PageParams, Depends(page_params)]


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values), default=str)).decode().rstrip("=")


def decode_cursor(cursor: str, size: int, param: str = "cursor") -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise ValidationFailed.field(param, "not a cursor this list gave out") from None
    if not isinstance(values, list) or len(values) != size:
        raise ValidationFailed.field(param, "not a cursor this list gave out")
    return values


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("a cursor's times carry their zone")
    return value


def _same(value: Any) -> Any:
    return value


def _finite(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError("not a number a list gives out")
    return value


# How each column type's values travel in a cursor (`encode_cursor`) and are read back:
# ints as JSON integers, everything else as JSON strings.
_PARSERS: dict[type, tuple[type | tuple[type, ...], Callable[[Any], Any]]] = {
    datetime: (str, _aware),
    date: (str, date.fromisoformat),
    uuid.UUID: (str, uuid.UUID),
    Decimal: (str, _finite),
    int: (int, int),
    str: (str, str),
}
# The range of each integer column type: a cursor holding a larger value is foreign (and the
# driver could not send it).
_INT_BITS = ((sa.SmallInteger, 16), (sa.BigInteger, 64), (sa.Integer, 32))


def _int_bits(column_type: Any) -> int:
    for kind, bits in _INT_BITS:
        if isinstance(column_type, kind):
            return bits
    return 64


def _parse(column: sa.ColumnElement[Any], value: Any, param: str = "cursor") -> Any:
    if value is None:
        return None
    try:
        py: Any = column.type.python_type
    except NotImplementedError:
        py = None
    # A type without a parser gets the value as JSON gave it, when it is a plain one.
    expected, parser = _PARSERS.get(py) or ((str, int), _same)
    foreign = ValidationFailed.field(param, "not a cursor this list gave out")
    if not isinstance(value, expected) or isinstance(value, bool):
        raise foreign
    if isinstance(value, str) and unstorable(value) is not None:
        raise foreign
    if isinstance(value, int):
        half = 2 ** (_int_bits(column.type) - 1)
        if not -half <= value < half:
            raise foreign
    try:
        return parser(value)
    except (TypeError, ValueError, ArithmeticError):
        raise foreign from None


def cursor_values(params: PageParams, columns: Sequence[sa.ColumnElement[Any]]) -> list[Any] | None:
    """The cursor's values typed like `columns` (None on the first page); 422 when foreign.

    For statements that take the keyset position as bound parameters (compiled once, run on
    the read pool) instead of as literals (`keyset`)."""
    if not params.cursor:
        return None
    raw = decode_cursor(params.cursor, len(columns))
    return [_parse(c, v) for c, v in zip(columns, raw, strict=True)]


def keyset(
    stmt: sa.Select[Any],
    columns: Sequence[sa.ColumnElement[Any]],
    params: PageParams,
    *,
    descending: bool = False,
) -> sa.Select[Any]:
    """Order by `columns` (the last must be unique), resume after the cursor, fetch limit + 1."""
    values = cursor_values(params, columns)
    if values is not None:
        left = sa.tuple_(*columns)
        right = sa.tuple_(*[sa.literal(v, c.type) for c, v in zip(columns, values, strict=True)])
        stmt = stmt.where(left < right if descending else left > right)
    order = [c.desc() if descending else c.asc() for c in columns]
    return stmt.order_by(*order).limit(params.limit + 1)


def make_page(
    rows: Sequence[R], params: PageParams, key: Callable[[R], Sequence[Any]]
) -> tuple[list[R], str | None]:
    """Cut the extra row off and turn the last kept row into the next cursor."""
    items = list(rows[: params.limit])
    more = len(rows) > params.limit
    return items, (encode_cursor(key(items[-1])) if more and items else None)
