"""Field types every feature's contract shares: text without NUL bytes, money as exact
decimals, company days and UTC moments within sane bounds (so that no input can overflow the
date arithmetic behind it)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from servicekit.fields import NO_NUL
from servicekit.inputs import Date, Timestamp

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)


def _in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


def _utc(value: datetime) -> datetime:
    if not FIRST_DAY <= value.astimezone(UTC).date() <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value.astimezone(UTC)


def _text(max_length: int, min_length: int = 0) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


ShortText = Annotated[str, _text(200), NO_NUL]
LongText = Annotated[str, _text(4000), NO_NUL]
Category = Annotated[str, _text(100, 1), NO_NUL]
Comment = Annotated[str, _text(2000), NO_NUL]
Required = Annotated[str, _text(4000, 1), NO_NUL]
CENT = Decimal("0.01")
# ISO text only (the kit's Date: never a number of seconds), within the company's years.
Day = Annotated[Date, AfterValidator(_in_range)]
# A moment with a time zone, stored and answered in UTC ("...Z").
Moment = Annotated[Timestamp, AfterValidator(_utc)]


class Input(BaseModel):
    """Request bodies refuse fields they do not know."""

    model_config = ConfigDict(extra="forbid")


class Decision(Input):
    comment: Comment | None = None


def cents(amount: Decimal) -> Decimal:
    """An amount at the scale money is stored and answered with ("300" -> 300.00)."""
    return amount.quantize(CENT)


def row_fields(row: Any, model: type[BaseModel]) -> dict[str, Any]:
    """The columns of a result row that `model` has fields for (by name)."""
    mapping = row._mapping
    return {k: mapping[k] for k in model.model_fields if k in mapping}
