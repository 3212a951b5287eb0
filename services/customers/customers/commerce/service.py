"""The rules of contacts, orders and payments. Services flush; the request commits.

Contacts are part of the customer's content: each change is an entry of its history (so the
file as of a past time shows the contacts as they were) and counts as a change of its content
(data quality). Orders keep the customer's last order date and lifecycle (dormant, lost,
reactivated: `archive.lifecycle`). An order is cancelled (never with payments standing: they
are reversed first), or amended while unpaid; the events say what changed so consumers can
correct figures they already counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import events as archive_events
from customers.archive import lifecycle
from customers.archive import repository as archive_repository
from customers.archive import settings as archive_settings
from customers.archive.access import can_see
from customers.archive.extensions import ArchiveExtensions
from customers.archive.history import as_actor, history_row, write_history
from customers.archive.models import Customer
from customers.archive.schemas import CustomerCreate
from customers.archive.service import content_changed
from customers.commerce import events, repository
from customers.commerce.exceptions import (
    ContactNotFound,
    ExternalRefTaken,
    OrderNotFound,
    PaymentNotFound,
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
    OrderLineRead,
    OrderListQuery,
    OrderRead,
    OrderUpdate,
    PaymentCreate,
)
from customers.products.service import resolve_lines
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Conflict, Forbidden, ValidationFailed
from servicekit.ids import new_id
from servicekit.pagination import PageParams

CENT = Decimal("0.01")
ORDERS_READ = "orders:read"
ORDERS_WRITE = "orders:write"


# --- contacts -------------------------------------------------------------------------------


def contact_state(contact: Any) -> dict[str, Any]:
    """A contact as the history keeps it (and the file shows it): `ContactRead`'s JSON."""
    return ContactRead.model_validate(contact, from_attributes=True).model_dump(mode="json")


async def _contacts_changed(
    session: AsyncSession,
    principal: Principal | None,
    customer: Customer,
    extensions: ArchiveExtensions,
    changes: Sequence[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """History entries (action, old state, new state) and the content change."""
    who = as_actor(principal)
    now = utcnow()
    await write_history(
        session,
        [
            history_row(customer.id, customer.version, who, action, {"contact": (old, new)}, at=now)
            for action, old, new in changes
        ],
    )
    await content_changed(session, extensions, customer)


async def _unprimaried(
    session: AsyncSession, customer_id: uuid.UUID, keep: uuid.UUID | None = None
) -> list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]:
    cleared = await repository.clear_primary(session, customer_id, keep=keep)
    out: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
    for row in cleared:
        new = contact_state(row)
        out.append(("contact_updated", {**new, "is_primary": True}, new))
    return out


async def create_contact(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    body: ContactCreate,
    extensions: ArchiveExtensions,
) -> Contact:
    """The caller holds the customer's row lock, so the one-primary rule cannot race."""
    contact = Contact(customer_id=customer.id, **body.model_dump())
    changes = await _unprimaried(session, customer.id) if contact.is_primary else []
    await repository.add(session, contact)
    await session.flush()
    changes.append(("contact_added", None, contact_state(contact)))
    await _contacts_changed(session, principal, customer, extensions, changes)
    await archive_events.emit(
        session, events.CONTACT_CREATED, customer.id, events.contact_payload(customer, contact)
    )
    return contact


async def update_contact(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    contact_id: uuid.UUID,
    body: ContactUpdate,
    extensions: ArchiveExtensions,
) -> Contact:
    contact = await repository.contact_of(session, customer.id, contact_id)
    if contact is None:
        raise ContactNotFound(contact_id)
    changes = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if getattr(contact, k) != v
    }
    if not changes:
        return contact
    before = contact_state(contact)
    entries = (
        await _unprimaried(session, customer.id, keep=contact.id)
        if changes.get("is_primary")
        else []
    )
    for field, value in changes.items():
        setattr(contact, field, value)
    contact.updated_at = utcnow()
    await session.flush()
    entries.append(("contact_updated", before, contact_state(contact)))
    await _contacts_changed(session, principal, customer, extensions, entries)
    await archive_events.emit(
        session,
        events.CONTACT_UPDATED,
        customer.id,
        events.contact_payload(customer, contact, changed=sorted(changes)),
    )
    return contact


async def delete_contact(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    contact_id: uuid.UUID,
    extensions: ArchiveExtensions,
) -> None:
    contact = await repository.contact_of(session, customer.id, contact_id)
    if contact is None:
        raise ContactNotFound(contact_id)
    payload = events.contact_payload(customer, contact)
    before = contact_state(contact)
    await repository.delete(session, contact)
    await session.flush()
    await _contacts_changed(
        session, principal, customer, extensions, [("contact_removed", before, None)]
    )
    await archive_events.emit(session, events.CONTACT_DELETED, customer.id, payload)


async def create_initial_contacts(
    session: AsyncSession,
    principal: Principal | None,
    created: Sequence[tuple[uuid.UUID, CustomerCreate]],
) -> None:
    """The contacts given with new customers (the archive's `after_create`): one multi-row
    INSERT, one event per contact. The customer's `created` history entry lists them."""
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
    await archive_events.emit_many(
        session,
        [
            (
                events.CONTACT_CREATED,
                row["customer_id"],
                events.contact_payload(customers[row["customer_id"]], Contact(**row)),
            )
            for row in rows
        ],
    )


def contact_read(contact: Contact) -> ContactRead:
    return ContactRead.model_validate(contact)


# --- orders ---------------------------------------------------------------------------------


def lines_total(lines: Sequence[OrderLine]) -> Decimal:
    return sum(((line.quantity * line.unit_price).quantize(CENT) for line in lines), Decimal("0"))


def order_read(order: Order) -> OrderRead:
    return OrderRead(
        id=order.id,
        customer_id=order.customer_id,
        order_date=order.order_date,
        amount=order.amount,
        gross_profit=order.gross_profit,
        due_date=order.due_date,
        lines=[OrderLineRead.model_validate(line) for line in order.lines],
        source=order.source,
        external_ref=order.external_ref,
        status=order.status,
        cancelled_at=order.cancelled_at,
        cancel_reason=order.cancel_reason,
        paid_amount=order.paid_amount,
        outstanding_amount=order.amount - order.paid_amount
        if order.status == "placed"
        else Decimal("0.00"),
        version=order.version,
        created_at=order.created_at,
    )


async def _stored_lines(session: AsyncSession, lines: Sequence[OrderLine]) -> list[dict[str, Any]]:
    if not lines:
        return []
    doc, _ = await archive_settings.load(session)
    return await resolve_lines(session, lines, free_text=doc.free_text_order_lines)


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
        "lines": await _stored_lines(session, body.lines),
        "source": body.source,
        "external_ref": body.external_ref,
        "paid_amount": Decimal("0"),
        "status": "placed",
        "version": 1,
        "created_by": principal.sub,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    if not await repository.insert_order_once(session, values):
        assert body.external_ref is not None  # only a taken external_ref skips the insert
        existing = await repository.order_by_ref(session, body.source, body.external_ref)
        assert existing is not None
        if existing.customer_id != customer.id:
            raise await _ref_taken(session, principal, "order", existing.id, existing.customer_id)
        return existing, False
    order = await repository.order_by_id(session, values["id"])
    assert order is not None
    last = customer.last_order_date
    await lifecycle.orders_changed(
        session,
        principal,
        customer,
        body.order_date if last is None else max(last, body.order_date),
        order=order,
    )
    await archive_events.emit(
        session, events.ORDER_PLACED, order.id, events.order_payload(customer, order)
    )
    return order, True


async def _ref_taken(
    session: AsyncSession,
    principal: Principal,
    kind: str,
    existing_id: uuid.UUID,
    customer_id: uuid.UUID,
) -> ExternalRefTaken:
    """The conflict, naming the other record only to a caller who may see its customer (a
    key pushing orders reads every customer's orders; a user, their customers')."""
    if principal.kind != "key":
        holder = await archive_repository.customer_by_id(session, customer_id)
        if holder is None or not can_see(principal, holder.owner_id, holder.team_id):
            return ExternalRefTaken(kind, None)
    return ExternalRefTaken(kind, existing_id)


async def get_order(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> Order:
    order = await repository.order_by_id(session, order_id, for_update=for_update)
    if order is None:
        raise OrderNotFound(order_id)
    return order


def _require_placed(order: Order, doing: str) -> None:
    if order.status != "placed":
        raise Conflict(f"the order is {order.status}; it cannot be {doing}")


async def cancel_order(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    order_id: uuid.UUID,
    reason: str,
) -> Order:
    """Cancel an order without standing payments (the caller holds the customer's lock)."""
    order = await get_order(session, order_id, for_update=True)
    _require_placed(order, "cancelled")
    if await repository.has_payments(session, order.id):
        raise Conflict(
            "the order has payments: reverse them first "
            "(POST /api/v1/payments/{id}/reverse with a reason)",
            order_id=str(order.id),
            paid_amount=str(order.paid_amount),
        )
    now = utcnow()
    order.status = "cancelled"
    order.cancelled_at = now
    order.cancelled_by = principal.sub
    order.cancel_reason = reason
    order.version += 1
    order.updated_at = now
    await session.flush()
    last = await repository.last_order_date(session, customer.id)
    await lifecycle.orders_changed(session, principal, customer, last)
    await archive_events.emit(
        session,
        events.ORDER_CANCELLED,
        order.id,
        events.order_cancelled(customer, order, reason, principal.sub, now),
    )
    return order


_AMENDABLE = ("order_date", "amount", "gross_profit", "due_date", "lines")


async def amend_order(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    order: Order,
    body: OrderUpdate,
) -> Order:
    """Change an unpaid order's lines, dates or amounts (the order locked and If-Match checked
    by the caller). With new lines and no new amount, the amount follows the lines."""
    _require_placed(order, "amended")
    if order.paid_amount > 0 or await repository.has_payments(session, order.id):
        raise Conflict("only an unpaid order is amended; reverse its payments first")
    given = body.model_dump(exclude_unset=True, exclude={"reason", "lines"})
    if body.lines is not None:
        given["lines"] = await _stored_lines(session, body.lines)
        if "amount" not in given:
            given["amount"] = lines_total(body.lines)
        elif body.lines and lines_total(body.lines) != given["amount"]:
            raise amount_mismatch(given["amount"], lines_total(body.lines))
    elif "amount" in given and order.lines:
        total = lines_total([OrderLine.model_validate(_line_input(x)) for x in order.lines])
        if total != given["amount"]:
            raise amount_mismatch(given["amount"], total)
    changes = {
        k: (getattr(order, k), given[k])
        for k in _AMENDABLE
        if k in given and getattr(order, k) != given[k]
    }
    if not changes:
        return order
    for name, (_, new) in changes.items():
        setattr(order, name, new)
    order.version += 1
    order.updated_at = utcnow()
    await session.flush()
    if "order_date" in changes:
        last = await repository.last_order_date(session, customer.id)
        await lifecycle.orders_changed(session, principal, customer, last, order=order)
    await archive_events.emit(
        session,
        events.ORDER_AMENDED,
        order.id,
        events.order_amended(customer, order, changes, body.reason, principal.sub),
    )
    return order


def _line_input(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: stored[k] for k in ("sku", "product", "quantity", "unit_price") if k in stored}


async def list_orders(
    session: AsyncSession, principal: Principal, query: OrderListQuery
) -> tuple[list[Order], str | None]:
    """Orders across the customers the caller may see (keys: with an orders scope)."""
    if principal.kind == "key":
        if not any(principal.has_scope(s) for s in (ORDERS_READ, ORDERS_WRITE)):
            raise Forbidden(f"this action needs one of the scopes {ORDERS_READ}, {ORDERS_WRITE}")
        visible_to = None
    else:
        visible_to = principal
    if query.from_ is not None and query.to is not None and query.to <= query.from_:
        raise ValidationFailed.field("to", "must be after from")
    return await repository.orders_page(
        session,
        visible_to,
        PageParams(query.limit, query.cursor),
        customer_id=query.customer_id,
        since=query.from_,
        before=query.to,
        status=query.status,
    )


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
                raise await _ref_taken(
                    session, principal, "payment", existing.id, existing.customer_id
                )
            return existing, order, False
    _require_placed(order, "paid")
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
    await archive_events.emit(
        session,
        events.PAYMENT_RECEIVED,
        payment.id,
        events.payment_payload(customer, order, payment),
    )
    return payment, order, True


async def get_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment:
    payment = await repository.payment_by_id(session, payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return payment


async def reverse_payment(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    payment_id: uuid.UUID,
    reason: str,
) -> tuple[Payment, Order]:
    """A payment that did not stand (bounced, refunded): it no longer counts as paid. The
    caller holds the customer's lock; the order is locked before its paid amount changes."""
    payment = await repository.payment_by_id(session, payment_id, for_update=True)
    if payment is None or payment.customer_id != customer.id:
        raise PaymentNotFound(payment_id)
    if payment.reversed_at is not None:
        raise Conflict("the payment was already reversed", reversed_at=payment.reversed_at)
    order = await get_order(session, payment.order_id, for_update=True)
    now = utcnow()
    payment.reversed_at = now
    payment.reversed_by = principal.sub
    payment.reverse_reason = reason
    order.paid_amount = order.paid_amount - payment.amount
    order.updated_at = now
    await session.flush()
    await archive_events.emit(
        session,
        events.PAYMENT_REVERSED,
        payment.id,
        events.payment_reversed(customer, order, payment, reason, principal.sub),
    )
    return payment, order
