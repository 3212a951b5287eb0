"""Commerce's parts of the archive's full file and card, registered on import (main imports
the commerce router, which imports this)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import extensions
from customers.archive.models import Customer
from customers.archive.schemas import CustomerCreate, CustomerRead
from customers.commerce import events, summary
from customers.commerce.models import CONTACTS, ORDERS, Contact
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.outbox import record_event

FILE_RECENT_ORDERS = 10
CARD_RECENT_ORDERS = 3


async def _file_contacts(session: AsyncSession, _: Principal, c: CustomerRead) -> Any:
    return [x.model_dump(mode="json") for x in await summary.contacts(session, c.id)]


async def _file_orders(session: AsyncSession, _: Principal, c: CustomerRead) -> Any:
    return {
        "summary": (await summary.order_summary(session, c.id)).model_dump(mode="json"),
        "recent": [
            o.model_dump(mode="json")
            for o in await summary.recent_orders(session, c.id, FILE_RECENT_ORDERS)
        ],
    }


async def _card_key_contact(session: AsyncSession, _: Principal, c: CustomerRead) -> Any:
    contact = await summary.key_contact(session, c.id)
    return None if contact is None else contact.model_dump(mode="json")


async def _card_last_orders(session: AsyncSession, _: Principal, c: CustomerRead) -> Any:
    return [
        o.model_dump(mode="json")
        for o in await summary.recent_orders(session, c.id, CARD_RECENT_ORDERS)
    ]


def purchases_since(since: datetime) -> sa.Select[Any]:
    """(customer_id, amount) of orders dated on or after `since`: the level proposal's input."""
    return (
        sa.select(ORDERS.c.customer_id, sa.func.sum(ORDERS.c.amount).label("amount"))
        .where(ORDERS.c.order_date >= since.date())
        .group_by(ORDERS.c.customer_id)
    )


async def create_initial_contacts(
    session: AsyncSession,
    principal: Principal | None,
    created: Sequence[tuple[uuid.UUID, CustomerCreate]],
) -> None:
    """The contacts given with new customers: one multi-row INSERT, one event per contact."""
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
                    "id": uuid.uuid4(),
                    "customer_id": cid,
                    **given.model_dump(exclude={"is_primary"}),
                    "is_primary": is_primary,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    await session.execute(sa.insert(CONTACTS), rows)
    ids = [cid for cid, _ in wanted]
    customers = {
        c.id: c
        for c in (
            await session.execute(sa.select(Customer).where(Customer.id.in_(ids)))  # type: ignore[attr-defined]
        ).scalars()
    }
    for row in rows:
        customer = customers[row["customer_id"]]
        contact = Contact(**row)
        await record_event(
            session,
            events.CONTACT_CREATED,
            customer.id,
            events.contact_payload(customer, contact),
        )


def register() -> None:
    extensions.file_sections.register("contacts", _file_contacts)
    extensions.file_sections.register("orders", _file_orders)
    extensions.card_sections.register("key_contact", _card_key_contact)
    extensions.card_sections.register("last_orders", _card_last_orders)
    extensions.set_purchases_source(purchases_since)
    extensions.add_after_create(create_initial_contacts)


register()
