"""Who may see or change a customer's contacts, orders and payments.

Users go through the archive's visibility rule (404 when the customer is not theirs to see) and
its change rule. Integration keys see by scope: `orders:write` lets an ERP push orders and
payments for any customer, `orders:read` read them, `customers:read` / `customers:write` the
contacts.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi import Path as PathParam
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import repository as archive_repository
from customers.archive.access import can_change
from customers.archive.models import Customer
from customers.archive.service import get_visible_customer
from customers.commerce import repository
from customers.commerce.exceptions import CustomerMerged, OrderNotFound, PaymentNotFound
from customers.commerce.models import Order, Payment
from servicekit.app import CurrentPrincipal
from servicekit.auth import Principal
from servicekit.errors import Forbidden, NotFound
from servicekit.routing import SessionDep

ORDERS_WRITE = "orders:write"
ORDERS_READ = "orders:read"
CUSTOMERS_READ = "customers:read"
CUSTOMERS_WRITE = "customers:write"


def require_any_scope(principal: Principal, *scopes: str) -> None:
    if not any(principal.has_scope(s) for s in scopes):
        raise Forbidden(f"this action needs one of the scopes {', '.join(scopes)}")


async def _customer_by_id(
    session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool
) -> Customer:
    customer = await archive_repository.customer_by_id(session, customer_id, for_update=for_update)
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    return customer


async def load_customer(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    *,
    write: bool,
    key_scopes: tuple[str, ...],
) -> Customer:
    """The customer, if `principal` may read it (or change it, with `write`, row locked)."""
    if principal.kind == "key":
        require_any_scope(principal, *key_scopes)
        customer = await _customer_by_id(session, customer_id, for_update=write)
    else:
        customer = await get_visible_customer(session, principal, customer_id, for_update=write)
        if write and not can_change(principal, customer):
            raise Forbidden("only the customer's owner, their managers or an admin change it")
    if write and customer.status == "merged":
        raise CustomerMerged(customer.id, customer.merged_into_id)
    return customer


async def _readable_for_contacts(
    customer_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Customer:
    return await load_customer(
        session, principal, customer_id, write=False, key_scopes=(CUSTOMERS_READ, CUSTOMERS_WRITE)
    )


async def _writable_for_contacts(
    customer_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Customer:
    return await load_customer(
        session, principal, customer_id, write=True, key_scopes=(CUSTOMERS_WRITE,)
    )


async def _readable_for_orders(
    customer_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Customer:
    return await load_customer(
        session, principal, customer_id, write=False, key_scopes=(ORDERS_READ, ORDERS_WRITE)
    )


async def _writable_for_orders(
    customer_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Customer:
    return await load_customer(
        session, principal, customer_id, write=True, key_scopes=(ORDERS_WRITE,)
    )


async def _customer_of(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID, *, write: bool
) -> Customer | None:
    """The customer an order or payment belongs to, when the caller may see (or change,
    locking it) that customer: a record of a customer they cannot see is simply not found."""
    try:
        return await load_customer(
            session,
            principal,
            customer_id,
            write=write,
            key_scopes=(ORDERS_WRITE,) if write else (ORDERS_READ, ORDERS_WRITE),
        )
    except NotFound:
        return None


async def order_and_customer(
    session: AsyncSession, principal: Principal, order_id: uuid.UUID, *, write: bool
) -> tuple[Order, Customer]:
    """The order and its customer, under its customer's rule."""
    order = await repository.order_by_id(session, order_id)
    customer = (
        None
        if order is None
        else await _customer_of(session, principal, order.customer_id, write=write)
    )
    if order is None or customer is None:
        raise OrderNotFound(order_id)
    return order, customer


async def payment_and_customer(
    session: AsyncSession, principal: Principal, payment_id: uuid.UUID, *, write: bool
) -> tuple[Payment, Customer]:
    """The payment and its customer, under the same rule as its order."""
    payment = await repository.payment_by_id(session, payment_id)
    customer = (
        None
        if payment is None
        else await _customer_of(session, principal, payment.customer_id, write=write)
    )
    if payment is None or customer is None:
        raise PaymentNotFound(payment_id)
    return payment, customer


ContactsCustomer = Annotated[Customer, Depends(_readable_for_contacts)]
ContactsCustomerForWrite = Annotated[Customer, Depends(_writable_for_contacts)]
OrdersCustomer = Annotated[Customer, Depends(_readable_for_orders)]
OrdersCustomerForWrite = Annotated[Customer, Depends(_writable_for_orders)]
