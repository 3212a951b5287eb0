"""Contacts, orders and payments: rows that hang off a customer and move with it on a merge."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from customers.models import Base
from servicekit.db import money_type, utcnow
from servicekit.ids import new_id

CUSTOMER_FK = "customers.customers.id"


def _ts() -> Any:
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)


class Contact(Base, table=True):
    __tablename__ = "contacts"
    __table_args__ = (
        # At most one primary contact per customer; writers lock the customer row first, so
        # this index is the last line of defence, not the rule's only enforcement.
        sa.Index(
            "uq_contacts_primary_per_customer",
            "customer_id",
            unique=True,
            postgresql_where=sa.text("is_primary"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key=CUSTOMER_FK, index=True)
    name: str
    title: str | None = None
    phone: str | None = None
    email: str | None = None
    is_decision_maker: bool = False
    is_primary: bool = False
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Order(Base, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_ref", name="uq_orders_source_external_ref"),
        sa.Index("ix_orders_customer_date", "customer_id", "order_date", "id"),
        # The orders list across customers (a collections screen), newest first.
        sa.Index("ix_orders_date", "order_date", "id"),
        sa.CheckConstraint("paid_amount <= amount", name="not_overpaid"),
        sa.CheckConstraint("amount >= 0 AND paid_amount >= 0", name="non_negative"),
        sa.CheckConstraint("status IN ('placed', 'cancelled')", name="status"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    customer_id: uuid.UUID = Field(foreign_key=CUSTOMER_FK)
    order_date: date
    amount: Decimal = Field(sa_type=money_type())
    gross_profit: Decimal | None = Field(default=None, sa_type=money_type())
    due_date: date | None = None
    lines: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(JSONB, nullable=False)
    )
    source: str = "api"
    external_ref: str | None = None
    # Kept on the order and changed only under the order's row lock, so the overpayment check
    # reads a total that no concurrent payment can change under it.
    paid_amount: Decimal = Field(default=Decimal("0"), sa_type=money_type())
    # placed | cancelled; a cancelled order counts nowhere (figures, levels, dormancy).
    status: str = "placed"
    cancelled_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    cancelled_by: str | None = None
    cancel_reason: str | None = None
    version: int = 1
    created_by: str
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Payment(Base, table=True):
    __tablename__ = "payments"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_ref", name="uq_payments_source_external_ref"),
        sa.CheckConstraint("amount > 0", name="positive"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    order_id: uuid.UUID = Field(foreign_key="customers.orders.id", index=True)
    # Denormalised so that a merge and the collection figures need no join through orders.
    customer_id: uuid.UUID = Field(foreign_key=CUSTOMER_FK, index=True)
    amount: Decimal = Field(sa_type=money_type())
    received_on: date
    method: str | None = None
    source: str = "api"
    external_ref: str | None = None
    created_by: str
    created_at: datetime = _ts()
    # A reversed payment (a bounced transfer, a refund) no longer counts as paid.
    reversed_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    reversed_by: str | None = None
    reverse_reason: str | None = None


CONTACTS: sa.Table = Contact.__table__  # type: ignore[attr-defined]
ORDERS: sa.Table = Order.__table__  # type: ignore[attr-defined]
PAYMENTS: sa.Table = Payment.__table__  # type: ignore[attr-defined]
