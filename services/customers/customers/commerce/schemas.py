"""The input and output contracts of contacts, orders and payments (field names are public)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from servicekit.inputs import Date

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


# --- orders ---------------------------------------------------------------------------------


class OrderLine(_Input):
    product: Text
    quantity: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)]
    unit_price: NonNegativeMoney


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


class OrderRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    order_date: date
    amount: Decimal
    gross_profit: Decimal | None
    due_date: date | None
    lines: list[OrderLine]
    source: str
    external_ref: str | None
    paid_amount: Decimal
    outstanding_amount: Decimal


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
