"""HTTP for contacts (`/api/v1/customers/{id}/contacts`), orders and payments.

An order pushed again with the same `source` + `external_ref` answers 200 with the order
created the first time (201 only when this call created it), so an ERP may retry blindly.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path as PathParam
from starlette.responses import Response

from customers.archive.models import Customer
from customers.commerce import repository, service
from customers.commerce.dependencies import (
    ORDERS_READ,
    ORDERS_WRITE,
    ContactsCustomer,
    ContactsCustomerForWrite,
    OrdersCustomer,
    OrdersCustomerForWrite,
    load_customer,
)
from customers.commerce.exceptions import OrderNotFound
from customers.commerce.models import Order
from customers.commerce.schemas import (
    ContactCreate,
    ContactRead,
    ContactUpdate,
    OrderCreate,
    OrderRead,
    PaymentCreate,
    PaymentRead,
    PaymentReceipt,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.errors import NotFound
from servicekit.openapi import with_headers
from servicekit.pagination import Page, PageDep
from servicekit.routing import SessionDep, kit_router

customers_router = kit_router(prefix="/api/v1/customers")
orders_router = kit_router(prefix="/api/v1/orders")
CONTACTS, ORDERS, PAYMENTS = "contacts", "orders", "payments"

BY_ID = "/{customer_id:uuid}"


def _dump(model: ContactRead | OrderRead | PaymentRead) -> dict[str, object]:
    return model.model_dump(mode="json")


# --- contacts -------------------------------------------------------------------------------


@customers_router.get(
    BY_ID + "/contacts",
    response_model=list[ContactRead],
    operation_id="contacts_list",
    tags=[CONTACTS],
    summary="A customer's contacts, the primary one first",
)
async def list_contacts(customer: ContactsCustomer, session: SessionDep) -> Response:
    contacts = await repository.contacts_of(session, customer.id)
    return json_response([_dump(service.contact_read(c)) for c in contacts])


@customers_router.post(
    BY_ID + "/contacts",
    status_code=201,
    response_model=ContactRead,
    operation_id="contacts_create",
    tags=[CONTACTS],
    responses={201: with_headers("Location")},
    summary="Add a contact",
)
async def create_contact(
    body: ContactCreate, customer: ContactsCustomerForWrite, session: SessionDep
) -> Response:
    contact = await service.create_contact(session, customer, body)
    return json_response(
        _dump(service.contact_read(contact)),
        201,
        {"Location": f"/api/v1/customers/{customer.id}/contacts/{contact.id}"},
    )


@customers_router.patch(
    BY_ID + "/contacts/{contact_id}",
    response_model=ContactRead,
    operation_id="contacts_update",
    tags=[CONTACTS],
    summary="Change a contact",
)
async def update_contact(
    contact_id: uuid.UUID,
    body: ContactUpdate,
    customer: ContactsCustomerForWrite,
    session: SessionDep,
) -> Response:
    contact = await service.update_contact(session, customer, contact_id, body)
    return json_response(_dump(service.contact_read(contact)))


@customers_router.delete(
    BY_ID + "/contacts/{contact_id}",
    status_code=204,
    operation_id="contacts_delete",
    tags=[CONTACTS],
    summary="Remove a contact",
)
async def delete_contact(
    contact_id: uuid.UUID, customer: ContactsCustomerForWrite, session: SessionDep
) -> Response:
    await service.delete_contact(session, customer, contact_id)
    return Response(status_code=204)


# --- orders ---------------------------------------------------------------------------------


@customers_router.get(
    BY_ID + "/orders",
    response_model=Page[OrderRead],
    operation_id="orders_list",
    tags=[ORDERS],
    summary="A customer's orders, newest first",
)
async def list_orders(customer: OrdersCustomer, session: SessionDep, page: PageDep) -> Response:
    orders, cursor = await repository.orders_page(session, customer.id, page)
    return json_response(
        {"items": [_dump(service.order_read(o)) for o in orders], "next_cursor": cursor}
    )


@customers_router.post(
    BY_ID + "/orders",
    status_code=201,
    response_model=OrderRead,
    operation_id="orders_place",
    tags=[ORDERS],
    responses={
        201: with_headers("Location"),
        200: {
            "model": OrderRead,
            "description": "This source + external_ref was already pushed: the order it made",
            **with_headers("Location"),
        },
    },
    summary="Place an order (idempotent by source + external_ref)",
)
async def place_order(
    body: OrderCreate,
    customer: OrdersCustomerForWrite,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    order, created = await service.place_order(session, customer, body, principal)
    return json_response(
        _dump(service.order_read(order)),
        201 if created else 200,
        {"Location": f"/api/v1/orders/{order.id}"},
    )


async def _order_customer(
    session: SessionDep,
    principal: CurrentPrincipal,
    order_id: uuid.UUID,
    *,
    write: bool,
) -> tuple[Order, Customer]:
    """The order and its customer, after checking the caller may see (or change, locking it)
    that customer; an order of a customer they cannot see is simply not found."""
    order = await service.get_order(session, order_id)
    try:
        customer = await load_customer(
            session,
            principal,
            order.customer_id,
            write=write,
            key_scopes=(ORDERS_WRITE,) if write else (ORDERS_READ, ORDERS_WRITE),
        )
    except NotFound:
        raise OrderNotFound(order_id) from None
    return order, customer


@orders_router.get(
    "/{order_id:uuid}",
    response_model=OrderRead,
    operation_id="orders_get",
    tags=[ORDERS],
    summary="An order, with what is paid and outstanding",
)
async def get_order(
    order_id: Annotated[uuid.UUID, PathParam()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    order, _ = await _order_customer(session, principal, order_id, write=False)
    return json_response(_dump(service.order_read(order)))


@orders_router.get(
    "/{order_id:uuid}/payments",
    response_model=list[PaymentRead],
    operation_id="payments_list",
    tags=[PAYMENTS],
    summary="An order's payments",
)
async def list_payments(
    order_id: Annotated[uuid.UUID, PathParam()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    await _order_customer(session, principal, order_id, write=False)
    payments = await repository.payments_of(session, order_id)
    return json_response([_dump(PaymentRead.model_validate(p)) for p in payments])


@orders_router.post(
    "/{order_id:uuid}/payments",
    status_code=201,
    response_model=PaymentReceipt,
    operation_id="payments_receive",
    tags=[PAYMENTS],
    responses={
        200: {
            "model": PaymentReceipt,
            "description": "This source + external_ref was already received: that payment",
        }
    },
    summary="Receive a payment (idempotent by source + external_ref)",
)
async def receive_payment(
    order_id: Annotated[uuid.UUID, PathParam()],
    body: PaymentCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    _, customer = await _order_customer(session, principal, order_id, write=True)
    payment, order, created = await service.receive_payment(
        session, customer, order_id, body, principal
    )
    payload = _dump(PaymentRead.model_validate(payment))
    payload["order"] = _dump(service.order_read(order))
    return json_response(payload, 201 if created else 200)
