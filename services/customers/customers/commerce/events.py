"""Event names and payloads: each carries what a consumer needs without calling back."""

from __future__ import annotations

from typing import Any

from customers.archive.models import Customer
from customers.commerce.models import Contact, Order, Payment

CONTACT_CREATED = "contact.created"
CONTACT_UPDATED = "contact.updated"
CONTACT_DELETED = "contact.deleted"
ORDER_PLACED = "order.placed"
PAYMENT_RECEIVED = "payment.received"


def customer_context(customer: Customer) -> dict[str, Any]:
    """The customer facts every commerce event repeats (KPIs slice by owner, team, region)."""
    return {
        "customer_id": str(customer.id),
        "customer_code": customer.code,
        "owner_id": str(customer.owner_id) if customer.owner_id else None,
        "team_id": str(customer.team_id) if customer.team_id else None,
        "region": customer.region,
        "level": customer.level,
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


def order_payload(customer: Customer, order: Order) -> dict[str, Any]:
    data = customer_context(customer)
    data.update(
        order_id=str(order.id),
        order_date=order.order_date.isoformat(),
        amount=str(order.amount),
        gross_profit=None if order.gross_profit is None else str(order.gross_profit),
        due_date=order.due_date.isoformat() if order.due_date else None,
        lines=order.lines,
        source=order.source,
        external_ref=order.external_ref,
    )
    return data


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
    )
    return data
