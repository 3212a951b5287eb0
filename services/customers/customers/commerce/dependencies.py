"""Who may see or change a customer's contacts, orders and payments.

Users go through the archive's visibility rule (404 when the customer is not theirs to see) and
its change rule. Integration keys see by scope, for any customer: `orders:read` the orders and
payments, `orders:write` pushes them (and reads them), `customers:read` the contacts,
`customers:write` changes them (the archive's `key_may`: a write scope includes its read).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends
from fastapi import Path as PathParam
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import repository as archive_repository
from customers.archive.access import (
    ORDERS_READ_SCOPE,
    ORDERS_WRITE_SCOPE,
    READ_SCOPE,
    WRITE_SCOPE,
    can_change,
    key_may,
)
from customers.archive.models import Customer
from customers.archive.service import get_visible_customer
from customers.commerce import repository
from customers.commerce.exceptions import CustomerMerged, OrderNotFound, PaymentNotFound
from customers.commerce.models import Order, Payment
from servicekit.app import CurrentPrincipal
from servicekit.auth import Principal
from servicekit.errors import Forbidden, NotFound
from servicekit.routing import SessionDep

ORDERS_WRITE = ORDERS_WRITE_SCOPE
ORDERS_READ = ORDERS_READ_SCOPE
CUSTOMERS_READ = READ_SCOPE
CUSTOMERS_WRITE = WRITE_SCOPE


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
    scope: str,
) -> Customer:
    """The customer, if `principal` may read it (or change it, with `write`, row locked);
    a key needs `scope`."""
    if principal.kind == "key":
        if not key_may(principal, scope):
            raise Forbidden(f"this action needs the '{scope}' scope")
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
    return await load_customer(session, principal, customer_id, write=False, scope=CUSTOMERS_READ)


async def _writable_for_contacts(
    customer_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Customer:
    return await load_customer(session, principal, customer_id, write=True, scope=CUSTOMERS_WRITE)


async def _readable_for_orders(
    customer_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Customer:
    return await load_customer(session, principal, customer_id, write=False, scope=ORDERS_READ)


async def _writable_for_orders(
    customer_id: Annotated[uuid.UUID, PathParam()],
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Customer:
    return await load_customer(session, principal, customer_id, write=True, scope=ORDERS_WRITE)


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
            scope=ORDERS_WRITE if write else ORDERS_READ,
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
