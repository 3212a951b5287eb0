"""The input and output contracts of contacts, orders and payments (field names are public)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from servicekit.fields import (
    DecimalOut,
    DecimalString,
    Money,
    Omittable,
    PositiveMoney,
    SignedMoney,
)
from servicekit.inputs import Date
from servicekit.pagination import DEFAULT_LIMIT, MAX_LIMIT

Quantity = Annotated[Decimal, DecimalString(digits=12, places=3, minimum="positive", example="2.5")]
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
    name: Omittable[Text] = None
    title: Text | None = None
    phone: Phone | None = None
    email: Email | None = None
    is_decision_maker: Omittable[bool] = None
    is_primary: Omittable[bool] = None


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


Sku = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S+$")]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class OrderLine(_Input):
    """A line names a catalogue product by `sku`; the order keeps the product's name (and
    category and unit) as they were. `product` (a name) is for free-text lines, when the
    settings allow them."""

    sku: Sku | None = None
    product: Text | None = None
    quantity: Quantity
    unit_price: Money

    @model_validator(mode="after")
    def _names_something(self) -> OrderLine:
        if self.sku is None and self.product is None:
            raise ValueError("a line names its product by sku (or by product name)")
        return self


class OrderStatus(StrEnum):
    placed = "placed"
    cancelled = "cancelled"


class OrderLineRead(BaseModel):
    sku: str | None = None
    product: str | None = None
    category: str | None = None
    unit: str | None = None
    quantity: DecimalOut
    unit_price: DecimalOut


class OrderCreate(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_date": "2026-01-05",
                    "amount": "2400.00",
                    "lines": [{"sku": "TEA-SET", "quantity": "20", "unit_price": "120.00"}],
                    "source": "erp",
                    "external_ref": "SO-2026-0001",
                }
            ]
        }
    )

    order_date: Date
    amount: Money
    gross_profit: SignedMoney | None = None
    due_date: Date | None = None
    lines: list[OrderLine] = Field(default_factory=list, max_length=1000)
    # `external_ref` is unique per `source`: an ERP pushing the same order again gets the
    # order it already created instead of a second one.
    source: Annotated[str, Field(min_length=1, max_length=60)] = "api"
    external_ref: Ref | None = None


class OrderUpdate(_Input):
    """An amendment of an unpaid order (If-Match): its lines, dates or amounts."""

    order_date: Omittable[Date] = None
    amount: Omittable[Money] = None
    gross_profit: SignedMoney | None = None
    due_date: Date | None = None
    lines: Omittable[list[OrderLine]] = Field(default=None, max_length=1000)
    reason: Reason | None = None


class OrderRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    order_date: date
    amount: DecimalOut
    gross_profit: DecimalOut | None
    due_date: date | None
    lines: list[OrderLineRead]
    source: str
    external_ref: str | None
    status: OrderStatus
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    paid_amount: DecimalOut
    outstanding_amount: DecimalOut
    version: int
    created_at: datetime


class OrderFilter(StrEnum):
    """outstanding: placed and not fully paid; paid: placed and paid."""

    placed = "placed"
    cancelled = "cancelled"
    outstanding = "outstanding"
    paid = "paid"


class OrderListQuery(BaseModel):
    """`GET /orders`: orders of the customers the caller may see."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
    customer_id: uuid.UUID | None = None
    from_: date | None = Field(None, alias="from", description="orders dated on or after")
    to: date | None = Field(None, description="orders dated before")
    status: OrderFilter | None = None


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
    amount: DecimalOut
    received_on: date
    method: str | None
    source: str
    external_ref: str | None
    # A reversed payment no longer counts as paid.
    reversed_at: datetime | None = None
    reverse_reason: str | None = None


class PaymentReceipt(PaymentRead):
    """A payment received, with its order as it stands now."""

    order: OrderRead
