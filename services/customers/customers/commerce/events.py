"""Event names and payloads: each carries what a consumer needs without calling back (the
customer's owner, team, region, level and status; money as decimal strings; `occurred_at`).

An order counts on its order date: `order.placed` says `occurred_at` = that day (now for an
order of today). `order.cancelled`, `order.amended` and `payment.reversed` tell a consumer
what to correct in figures it already counted: the order's amount and date as they were, and
what changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from customers.archive.events import what_changed
from customers.archive.lifecycle import occurred_on
from customers.archive.models import Customer
from customers.commerce.models import Contact, Order, Payment
from servicekit.db import utcnow

CONTACT_CREATED = "contact.created"
CONTACT_UPDATED = "contact.updated"
CONTACT_DELETED = "contact.deleted"
ORDER_PLACED = "order.placed"
ORDER_CANCELLED = "order.cancelled"
ORDER_AMENDED = "order.amended"
PAYMENT_RECEIVED = "payment.received"
PAYMENT_REVERSED = "payment.reversed"


def customer_context(customer: Customer) -> dict[str, Any]:
    """The customer facts every commerce event repeats (KPIs slice by owner, team, region)."""
    return {
        "customer_id": str(customer.id),
        "customer_code": customer.code,
        "owner_id": str(customer.owner_id) if customer.owner_id else None,
        "team_id": str(customer.team_id) if customer.team_id else None,
        "region": customer.region,
        "level": customer.level,
        "status": customer.status,
    }


def contact_payload(
    customer: Customer, contact: Contact, changed: list[str] | None = None
) -> dict[str, Any]:
    data = customer_context(customer)
    data.update(
        contact_id=str(contact.id),
        name=contact.name,
        title=contact.title,
        phone=contact.phone,
        email=contact.email,
        is_decision_maker=contact.is_decision_maker,
        is_primary=contact.is_primary,
    )
    if changed is not None:
        data["changed"] = changed
    return data


def _money(value: Any) -> str | None:
    return None if value is None else str(value)


def order_payload(customer: Customer, order: Order) -> dict[str, Any]:
    data = customer_context(customer)
    data.update(
        order_id=str(order.id),
        order_date=order.order_date.isoformat(),
        amount=str(order.amount),
        gross_profit=_money(order.gross_profit),
        due_date=order.due_date.isoformat() if order.due_date else None,
        lines=order.lines,
        source=order.source,
        external_ref=order.external_ref,
        order_status=order.status,
        paid_amount=str(order.paid_amount),
        outstanding_amount=str(order.amount - order.paid_amount),
        version=order.version,
        occurred_at=occurred_on(order.order_date, utcnow()),
    )
    return data


def order_cancelled(
    customer: Customer, order: Order, reason: str, actor: str | None, at: datetime
) -> dict[str, Any]:
    return {
        **order_payload(customer, order),
        "reason": reason,
        "cancelled_by": actor,
        "occurred_at": at,
    }


def order_amended(
    customer: Customer,
    order: Order,
    changes: Mapping[str, tuple[Any, Any]],
    reason: str | None,
    actor: str | None,
) -> dict[str, Any]:
    # Values as they are: the outbox writes dates as ISO text and decimals as exact strings.
    return {
        **order_payload(customer, order),
        **what_changed(changes),
        "reason": reason,
        "amended_by": actor,
        "occurred_at": utcnow(),
    }


def payment_payload(customer: Customer, order: Order, payment: Payment) -> dict[str, Any]:
    data = customer_context(customer)
    data.update(
        payment_id=str(payment.id),
        order_id=str(order.id),
        order_date=order.order_date.isoformat(),
        order_amount=str(order.amount),
        amount=str(payment.amount),
        received_on=payment.received_on.isoformat(),
        method=payment.method,
        source=payment.source,
        external_ref=payment.external_ref,
        paid_amount=str(order.paid_amount),
        outstanding_amount=str(order.amount - order.paid_amount),
        occurred_at=occurred_on(payment.received_on, utcnow()),
    )
    return data


def payment_reversed(
    customer: Customer, order: Order, payment: Payment, reason: str, actor: str | None
) -> dict[str, Any]:
    return {
        **payment_payload(customer, order, payment),
        "reason": reason,
        "reversed_by": actor,
        "occurred_at": payment.reversed_at,
    }
