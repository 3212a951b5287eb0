"""Queries on contacts, orders and payments (no rules here: those live in service.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from customers.commerce.models import CONTACTS, ORDERS, PAYMENTS, Contact, Order, Payment
from servicekit.pagination import PageParams, keyset, make_page


async def contacts_of(session: AsyncSession, customer_id: uuid.UUID) -> Sequence[Contact]:
    stmt = (
        sa.select(Contact)
        .where(CONTACTS.c.customer_id == customer_id)
        .order_by(CONTACTS.c.is_primary.desc(), CONTACTS.c.created_at, CONTACTS.c.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def contact_of(
    session: AsyncSession, customer_id: uuid.UUID, contact_id: uuid.UUID
) -> Contact | None:
    stmt = sa.select(Contact).where(
        CONTACTS.c.id == contact_id, CONTACTS.c.customer_id == customer_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def clear_primary(
    session: AsyncSession, customer_id: uuid.UUID, keep: uuid.UUID | None = None
) -> None:
    stmt = (
        sa.update(CONTACTS)
        .where(CONTACTS.c.customer_id == customer_id, CONTACTS.c.is_primary)
        .values(is_primary=False)
    )
    if keep is not None:
        stmt = stmt.where(CONTACTS.c.id != keep)
    await session.execute(stmt, execution_options={"synchronize_session": "fetch"})


async def order_by_id(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> Order | None:
    stmt = sa.select(Order).where(ORDERS.c.id == order_id)
    if for_update:
        # populate_existing: the locked read must replace what the session loaded before it.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def order_by_ref(session: AsyncSession, source: str, external_ref: str) -> Order | None:
    stmt = sa.select(Order).where(ORDERS.c.source == source, ORDERS.c.external_ref == external_ref)
    return (await session.execute(stmt)).scalar_one_or_none()


async def insert_order_once(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert unless the (source, external_ref) is taken; a concurrent push of the same ref
    waits for the first to commit and then finds it taken, so an ERP retry never doubles."""
    stmt = (
        insert(ORDERS)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source", "external_ref"])
        .returning(ORDERS.c.id)
    )
    return (await session.execute(stmt)).first() is not None


async def orders_page(
    session: AsyncSession, customer_id: uuid.UUID, page: PageParams
) -> tuple[list[Order], str | None]:
    cols = [ORDERS.c.order_date, ORDERS.c.id]
    stmt = keyset(
        sa.select(Order).where(ORDERS.c.customer_id == customer_id), cols, page, descending=True
    )
    rows = list((await session.execute(stmt)).scalars().all())
    return make_page(rows, page, lambda o: (o.order_date, o.id))


async def payment_by_ref(session: AsyncSession, source: str, external_ref: str) -> Payment | None:
    stmt = sa.select(Payment).where(
        PAYMENTS.c.source == source, PAYMENTS.c.external_ref == external_ref
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def payments_of(session: AsyncSession, order_id: uuid.UUID) -> Sequence[Payment]:
    stmt = (
        sa.select(Payment)
        .where(PAYMENTS.c.order_id == order_id)
        .order_by(PAYMENTS.c.received_on, PAYMENTS.c.created_at, PAYMENTS.c.id)
    )
    return (await session.execute(stmt)).scalars().all()


async def order_totals(
    session: AsyncSession, customer_id: uuid.UUID, since: date
) -> sa.Row[Any] | None:
    stmt = sa.select(
        sa.func.count().label("count"),
        sa.func.coalesce(sa.func.sum(ORDERS.c.amount), 0).label("total"),
        sa.func.max(ORDERS.c.order_date).label("last_order_date"),
        sa.func.coalesce(
            sa.func.sum(ORDERS.c.amount).filter(ORDERS.c.order_date >= since), 0
        ).label("trailing_12m"),
    ).where(ORDERS.c.customer_id == customer_id)
    return (await session.execute(stmt)).first()
