"""The input and output contracts of contacts, orders and payments (field names are public)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from servicekit.inputs import Date
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT

Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
NonNegativeMoney = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Ref = Annotated[str, Field(min_length=1, max_length=200)]
# A plausibility check only: deliverability is the mail server's business.
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[str, Field(min_length=3, max_length=40)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- contacts -------------------------------------------------------------------------------


class ContactCreate(_Input):
    name: Text
    title: Text | None = None
    phone: Phone | None = None
    email: Email | None = None
    is_decision_maker: bool = False
    is_primary: bool = False


class ContactUpdate(_Input):
    name: Text | None = None
    title: Text | None = None
    phone: Phone | None = None
    email: Email | None = None
    is_decision_maker: bool | None = None
    is_primary: bool | None = None

    @field_validator("name", "is_decision_maker", "is_primary")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    name: str
    title: str | None
    phone: str | None
    email: str | None
    is_decision_maker: bool
    is_primary: bool
    created_at: datetime


# --- orders ---------------------------------------------------------------------------------


Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class OrderLine(_Input):
    """A line names a catalogue product by `sku`; the order keeps the product's name (and
    category and unit) as they were. `product` (a name) is for free-text lines, when the
    settings allow them."""

    sku: Sku | None = None
    product: Text | None = None
    quantity: Quantity
    unit_price: NonNegativeMoney

    @model_validator(mode="after")
    def _names_something(self) -> OrderLine:
        if self.sku is None and self.product is None:
            raise ValueError("a line names its product by sku (or by product name)")
        return self


class OrderLineRead(BaseModel):
    sku: str | None = None
    product: str | None = None
    category: str | None = None
    unit: str | None = None
    quantity: Decimal
    unit_price: Decimal


class OrderCreate(_Input):
    order_date: Date
    amount: NonNegativeMoney
    gross_profit: Money | None = None
    due_date: Date | None = None
    lines: list[OrderLine] = Field(default_factory=list, max_length=1000)
    # `external_ref` is unique per `source`: an ERP pushing the same order again gets the
    # order it already created instead of a second one.
    source: Annotated[str, Field(min_length=1, max_length=60)] = "api"
    external_ref: Ref | None = None


class OrderUpdate(_Input):
    """An amendment of an unpaid order (If-Match): its lines, dates or amounts."""

    order_date: date | None = None
    amount: NonNegativeMoney | None = None
    gross_profit: Money | None = None
    due_date: date | None = None
    lines: list[OrderLine] | None = Field(default=None, max_length=1000)
    reason: Reason | None = None

    @field_validator("order_date", "amount", "lines")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out but not set to null")
        return value


class OrderRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    order_date: date
    amount: Decimal
    gross_profit: Decimal | None
    due_date: date | None
    lines: list[OrderLineRead]
    source: str
    external_ref: str | None
    status: Literal["placed", "cancelled"]
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    paid_amount: Decimal
    outstanding_amount: Decimal
    version: int
    created_at: datetime


class OrderListQuery(BaseModel):
    """`GET /orders`: orders of the customers the caller may see."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
    customer_id: uuid.UUID | None = None
    from_: date | None = Field(None, alias="from", description="orders dated on or after")
    to: date | None = Field(None, description="orders dated before")
    status: Literal["placed", "cancelled", "outstanding", "paid"] | None = Field(
        None, description="outstanding: placed and not fully paid; paid: placed and paid"
    )


class ReasonBody(_Input):
    reason: Reason


# --- payments -------------------------------------------------------------------------------


class PaymentCreate(_Input):
    amount: PositiveMoney
    received_on: Date
    method: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    source: Annotated[str, Field(min_length=1, max_length=60)] = "api"
    external_ref: Ref | None = None


class PaymentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    order_id: uuid.UUID
    customer_id: uuid.UUID
    amount: Decimal
    received_on: date
    method: str | None
    source: str
    external_ref: str | None
    # A reversed payment no longer counts as paid.
    reversed_at: datetime | None = None
    reverse_reason: str | None = None
