"""The rules of contacts, orders and payments. Services flush; the request commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import repository as archive_repository
from customers.archive.models import Customer
from customers.archive.schemas import CustomerCreate
from customers.commerce import events, repository
from customers.commerce.exceptions import (
    ContactNotFound,
    ExternalRefTaken,
    OrderNotFound,
    amount_mismatch,
    overpayment,
)
from customers.commerce.models import Contact, Order, Payment
from customers.commerce.schemas import (
    ContactCreate,
    ContactRead,
    ContactUpdate,
    OrderCreate,
    OrderLine,
    OrderRead,
    PaymentCreate,
)
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.ids import new_id
from servicekit.outbox import record_event

CENT = Decimal("0.01")


# --- contacts -------------------------------------------------------------------------------


async def create_contact(session: AsyncSession, customer: Customer, body: ContactCreate) -> Contact:
    """The caller holds the customer's row lock, so the one-primary rule cannot race."""
    contact = Contact(customer_id=customer.id, **body.model_dump())
    if contact.is_primary:
        await repository.clear_primary(session, customer.id)
    await repository.add(session, contact)
    await session.flush()
    await record_event(
        session, events.CONTACT_CREATED, customer.id, events.contact_payload(customer, contact)
    )
    return contact


async def update_contact(
    session: AsyncSession, customer: Customer, contact_id: uuid.UUID, body: ContactUpdate
) -> Contact:
    contact = await repository.contact_of(session, customer.id, contact_id)
    if contact is None:
        raise ContactNotFound(contact_id)
    changes = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if getattr(contact, k) != v
    }
    if not changes:
        return contact
    if changes.get("is_primary"):
        await repository.clear_primary(session, customer.id, keep=contact.id)
    for field, value in changes.items():
        setattr(contact, field, value)
    contact.updated_at = utcnow()
    await session.flush()
    await record_event(
        session,
        events.CONTACT_UPDATED,
        customer.id,
        events.contact_payload(customer, contact, changed=sorted(changes)),
    )
    return contact


async def delete_contact(session: AsyncSession, customer: Customer, contact_id: uuid.UUID) -> None:
    contact = await repository.contact_of(session, customer.id, contact_id)
    if contact is None:
        raise ContactNotFound(contact_id)
    payload = events.contact_payload(customer, contact)
    await repository.delete(session, contact)
    await session.flush()
    await record_event(session, events.CONTACT_DELETED, customer.id, payload)


async def create_initial_contacts(
    session: AsyncSession,
    principal: Principal | None,
    created: Sequence[tuple[uuid.UUID, CustomerCreate]],
) -> None:
    """The contacts given with new customers (the archive's `after_create`): one multi-row
    INSERT, one event per contact."""
    wanted = [(cid, body) for cid, body in created if body.contacts]
    if not wanted:
        return
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for cid, body in wanted:
        # One primary at most: the first one flagged wins.
        primary_taken = False
        for given in body.contacts:
            is_primary = given.is_primary and not primary_taken
            primary_taken = primary_taken or is_primary
            rows.append(
                {
                    "id": new_id(),
                    "customer_id": cid,
                    **given.model_dump(exclude={"is_primary"}),
                    "is_primary": is_primary,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    await repository.insert_contacts(session, rows)
    customers = {
        c.id: c
        for c in await archive_repository.customers_by_ids(session, [cid for cid, _ in wanted])
    }
    for row in rows:
        customer = customers[row["customer_id"]]
        await record_event(
            session,
            events.CONTACT_CREATED,
            customer.id,
            events.contact_payload(customer, Contact(**row)),
        )


def contact_read(contact: Contact) -> ContactRead:
    return ContactRead.model_validate(contact)


# --- orders ---------------------------------------------------------------------------------


def lines_total(lines: list[OrderLine]) -> Decimal:
    return sum(((line.quantity * line.unit_price).quantize(CENT) for line in lines), Decimal("0"))


def order_read(order: Order) -> OrderRead:
    return OrderRead(
        id=order.id,
        customer_id=order.customer_id,
        order_date=order.order_date,
        amount=order.amount,
        gross_profit=order.gross_profit,
        due_date=order.due_date,
        lines=[OrderLine.model_validate(line) for line in order.lines],
        source=order.source,
        external_ref=order.external_ref,
        paid_amount=order.paid_amount,
        outstanding_amount=order.amount - order.paid_amount,
    )


async def place_order(
    session: AsyncSession, customer: Customer, body: OrderCreate, principal: Principal
) -> tuple[Order, bool]:
    """(order, created). A second push of the same source + external_ref for the same
    customer answers with the order it already created (created=False); for another customer
    it is a conflict naming the existing order."""
    if body.lines:
        total = lines_total(body.lines)
        if total != body.amount:
            raise amount_mismatch(body.amount, total)
    values: dict[str, Any] = {
        "id": new_id(),
        "customer_id": customer.id,
        "order_date": body.order_date,
        "amount": body.amount,
        "gross_profit": body.gross_profit,
        "due_date": body.due_date,
        "lines": [line.model_dump(mode="json") for line in body.lines],
        "source": body.source,
        "external_ref": body.external_ref,
        "paid_amount": Decimal("0"),
        "created_by": principal.sub,
        "created_at": utcnow(),
    }
    if not await repository.insert_order_once(session, values):
        assert body.external_ref is not None  # only a taken external_ref skips the insert
        existing = await repository.order_by_ref(session, body.source, body.external_ref)
        assert existing is not None
        if existing.customer_id != customer.id:
            raise ExternalRefTaken("order", existing.id)
        return existing, False
    order = await repository.order_by_id(session, values["id"])
    assert order is not None
    await record_event(
        session, events.ORDER_PLACED, order.id, events.order_payload(customer, order)
    )
    return order, True


async def get_order(session: AsyncSession, order_id: uuid.UUID) -> Order:
    order = await repository.order_by_id(session, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


# --- payments -------------------------------------------------------------------------------


async def receive_payment(
    session: AsyncSession,
    customer: Customer,
    order_id: uuid.UUID,
    body: PaymentCreate,
    principal: Principal,
) -> tuple[Payment, Order, bool]:
    """(payment, order, created). The order row is locked before the outstanding amount is
    read, so two payments arriving together are checked one after the other and can never
    overpay together. The caller already holds the customer's lock (taken first, in the same
    order a merge takes its locks, so a payment and a merge never deadlock)."""
    order = await repository.order_by_id(session, order_id, for_update=True)
    if order is None or order.customer_id != customer.id:
        raise OrderNotFound(order_id)
    if body.external_ref is not None:
        existing = await repository.payment_by_ref(session, body.source, body.external_ref)
        if existing is not None:
            if existing.order_id != order.id:
                raise ExternalRefTaken("payment", existing.id)
            return existing, order, False
    outstanding = order.amount - order.paid_amount
    if body.amount > outstanding:
        raise overpayment(body.amount, outstanding)
    payment = Payment(
        order_id=order.id,
        customer_id=customer.id,
        amount=body.amount,
        received_on=body.received_on,
        method=body.method,
        source=body.source,
        external_ref=body.external_ref,
        created_by=principal.sub,
    )
    await repository.add(session, payment)
    order.paid_amount = order.paid_amount + body.amount
    await session.flush()
    await record_event(
        session,
        events.PAYMENT_RECEIVED,
        payment.id,
        events.payment_payload(customer, order, payment),
    )
    return payment, order, True
