"""The input and output contracts of contacts, orders and payments (field names are public)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from servicekit.fields import (
    DecimalOut,
    DecimalString,
    Money,
    Omittable,
    PositiveMoney,
    SignedMoney,
)

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


# --- orders ---------------------------------------------------------------------------------


class OrderLine(_Input):
    product: Text
    quantity: Quantity
    unit_price: Money


class OrderCreate(_Input):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_date": "2026-01-05",
                    "amount": "2400.00",
                    "lines": [{"product": "Tea set", "quantity": "20", "unit_price": "120.00"}],
                    "source": "erp",
                    "external_ref": "SO-2026-0001",
                }
            ]
        }
    )

    order_date: date
    amount: Money
    gross_profit: SignedMoney | None = None
    due_date: date | None = None
    lines: list[OrderLine] = Field(default_factory=list, max_length=1000)
    # `external_ref` is unique per `source`: an ERP pushing the same order again gets the
    # order it already created instead of a second one.
    source: Annotated[str, Field(min_length=1, max_length=60)] = "api"
    external_ref: Ref | None = None


class OrderRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    order_date: date
    amount: DecimalOut
    gross_profit: DecimalOut | None
    due_date: date | None
    lines: list[OrderLine]
    source: str
    external_ref: str | None
    paid_amount: DecimalOut
    outstanding_amount: DecimalOut


# --- payments -------------------------------------------------------------------------------


class PaymentCreate(_Input):
    amount: PositiveMoney
    received_on: date
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


class PaymentReceipt(PaymentRead):
    """A payment received, with its order as it stands now."""

    order: OrderRead
