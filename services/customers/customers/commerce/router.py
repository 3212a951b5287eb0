"""HTTP for contacts (`/api/v1/customers/{id}/contacts`), orders and payments.

An order pushed again with the same `source` + `external_ref` answers 200 with the order
created the first time (201 only when this call created it), so an ERP may retry blindly.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path as PathParam
from fastapi import Query
from starlette.responses import Response

from customers.archive.dependencies import Extensions
from customers.commerce import repository, service
from customers.commerce.dependencies import (
    ContactsCustomer,
    ContactsCustomerForWrite,
    OrdersCustomer,
    OrdersCustomerForWrite,
    order_and_customer,
    payment_and_customer,
)
from customers.commerce.schemas import (
    ContactCreate,
    ContactRead,
    ContactUpdate,
    OrderCreate,
    OrderListQuery,
    OrderRead,
    OrderUpdate,
    PaymentCreate,
    PaymentRead,
    PaymentReceipt,
    ReasonBody,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.etag import IfMatch, etag_for
from servicekit.openapi import with_headers
from servicekit.pagination import Page, PageDep
from servicekit.routing import SessionDep, kit_router

customers_router = kit_router(prefix="/api/v1/customers")
orders_router = kit_router(prefix="/api/v1/orders")
payments_router = kit_router(prefix="/api/v1/payments")
CONTACTS, ORDERS, PAYMENTS = "contacts", "orders", "payments"

BY_ID = "/{customer_id:uuid}"


def _dump(model: ContactRead | OrderRead | PaymentRead) -> dict[str, object]:
    return model.model_dump(mode="json")


def _etag(version: int) -> dict[str, str]:
    return {"ETag": etag_for(version)}


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
    body: ContactCreate,
    customer: ContactsCustomerForWrite,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
) -> Response:
    contact = await service.create_contact(session, principal, customer, body, extensions)
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
    principal: CurrentPrincipal,
    extensions: Extensions,
) -> Response:
    contact = await service.update_contact(
        session, principal, customer, contact_id, body, extensions
    )
    return json_response(_dump(service.contact_read(contact)))


@customers_router.delete(
    BY_ID + "/contacts/{contact_id}",
    status_code=204,
    operation_id="contacts_delete",
    tags=[CONTACTS],
    summary="Remove a contact",
)
async def delete_contact(
    contact_id: uuid.UUID,
    customer: ContactsCustomerForWrite,
    session: SessionDep,
    principal: CurrentPrincipal,
    extensions: Extensions,
) -> Response:
    await service.delete_contact(session, principal, customer, contact_id, extensions)
    return Response(status_code=204)


# --- orders ---------------------------------------------------------------------------------


@customers_router.get(
    BY_ID + "/orders",
    response_model=Page[OrderRead],
    operation_id="orders_list_of_customer",
    tags=[ORDERS],
    summary="A customer's orders, newest first",
)
async def list_customer_orders(
    customer: OrdersCustomer, session: SessionDep, page: PageDep
) -> Response:
    orders, cursor = await repository.orders_of_customer_page(session, customer.id, page)
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


@orders_router.get(
    "",
    response_model=Page[OrderRead],
    operation_id="orders_list",
    tags=[ORDERS],
    summary="Orders across the customers you may see, newest first, with paid and outstanding",
)
async def list_orders(
    query: Annotated[OrderListQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    orders, cursor = await service.list_orders(session, principal, query)
    return json_response(
        {"items": [_dump(service.order_read(o)) for o in orders], "next_cursor": cursor}
    )


@orders_router.get(
    "/{order_id:uuid}",
    response_model=OrderRead,
    operation_id="orders_get",
    tags=[ORDERS],
    responses={200: with_headers("ETag")},
    summary="An order, with what is paid and outstanding",
)
async def get_order(
    order_id: Annotated[uuid.UUID, PathParam()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    order, _ = await order_and_customer(session, principal, order_id, write=False)
    return json_response(_dump(service.order_read(order)), headers=_etag(order.version))


@orders_router.patch(
    "/{order_id:uuid}",
    response_model=OrderRead,
    operation_id="orders_amend",
    tags=[ORDERS],
    summary="Amend an unpaid order: its lines, dates or amounts (If-Match)",
)
async def amend_order(
    order_id: Annotated[uuid.UUID, PathParam()],
    body: OrderUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatch,
) -> Response:
    _, customer = await order_and_customer(session, principal, order_id, write=True)
    order = await service.get_order(session, order_id, for_update=True)
    if_match.check(order.version)
    order = await service.amend_order(session, principal, customer, order, body)
    return json_response(_dump(service.order_read(order)), headers=_etag(order.version))


@orders_router.post(
    "/{order_id:uuid}/cancel",
    response_model=OrderRead,
    operation_id="orders_cancel",
    tags=[ORDERS],
    responses={200: with_headers("ETag")},
    summary="Cancel an order (never one with payments: reverse them first)",
)
async def cancel_order(
    order_id: Annotated[uuid.UUID, PathParam()],
    body: ReasonBody,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    _, customer = await order_and_customer(session, principal, order_id, write=True)
    order = await service.cancel_order(session, principal, customer, order_id, body.reason)
    return json_response(_dump(service.order_read(order)), headers=_etag(order.version))


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
    await order_and_customer(session, principal, order_id, write=False)
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
    _, customer = await order_and_customer(session, principal, order_id, write=True)
    payment, order, created = await service.receive_payment(
        session, customer, order_id, body, principal
    )
    payload = _dump(PaymentRead.model_validate(payment))
    payload["order"] = _dump(service.order_read(order))
    return json_response(payload, 201 if created else 200)


# --- payments -------------------------------------------------------------------------------


@payments_router.get(
    "/{payment_id:uuid}",
    response_model=PaymentRead,
    operation_id="payments_get",
    tags=[PAYMENTS],
    summary="A payment",
)
async def get_payment(
    payment_id: Annotated[uuid.UUID, PathParam()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    payment, _ = await payment_and_customer(session, principal, payment_id, write=False)
    return json_response(_dump(PaymentRead.model_validate(payment)))


@payments_router.post(
    "/{payment_id:uuid}/reverse",
    response_model=PaymentReceipt,
    operation_id="payments_reverse",
    tags=[PAYMENTS],
    summary="Reverse a payment that did not stand (it no longer counts as paid)",
)
async def reverse_payment(
    payment_id: Annotated[uuid.UUID, PathParam()],
    body: ReasonBody,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    _, customer = await payment_and_customer(session, principal, payment_id, write=True)
    payment, order = await service.reverse_payment(
        session, principal, customer, payment_id, body.reason
    )
    payload = _dump(PaymentRead.model_validate(payment))
    payload["order"] = _dump(service.order_read(order))
    return json_response(payload)
