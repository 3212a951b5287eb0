"""What the archive's full file, card and level proposal read from commerce.

The core archive imports these; commerce never imports the archive's services, so the two
halves stay decoupled through this small surface.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from customers.commerce import repository
from customers.commerce.models import CONTACTS, ORDERS, Contact
from customers.commerce.schemas import ContactRead, OrderRead
from customers.commerce.service import order_read
from servicekit.pagination import PageParams

TRAILING_DAYS = 365


class OrderSummary(BaseModel):
    count: int
    total: Decimal
    last_order_date: date | None
    trailing_12m_amount: Decimal


@dataclass(frozen=True, slots=True)
class _Window:
    since: date

    @classmethod
    def trailing(cls, today: date | None = None) -> _Window:
        return cls((today or date.today()) - timedelta(days=TRAILING_DAYS))


async def order_summary(
    session: AsyncSession, customer_id: uuid.UUID, *, today: date | None = None
) -> OrderSummary:
    """Count, total, last order date and the trailing-12-month amount of one customer."""
    row = await repository.order_totals(session, customer_id, _Window.trailing(today).since)
    if row is None:
        return OrderSummary(
            count=0, total=Decimal("0"), last_order_date=None, trailing_12m_amount=Decimal("0")
        )
    return OrderSummary(
        count=row.count,
        total=Decimal(row.total),
        last_order_date=row.last_order_date,
        trailing_12m_amount=Decimal(row.trailing_12m),
    )


async def recent_orders(session: AsyncSession, customer_id: uuid.UUID, n: int) -> list[OrderRead]:
    orders, _ = await repository.orders_page(session, customer_id, PageParams(n, None))
    return [order_read(o) for o in orders]


async def contacts(session: AsyncSession, customer_id: uuid.UUID) -> list[ContactRead]:
    return [
        ContactRead.model_validate(c) for c in await repository.contacts_of(session, customer_id)
    ]


async def key_contact(session: AsyncSession, customer_id: uuid.UUID) -> ContactRead | None:
    """The primary contact, else a decision maker, else the first one recorded."""
    stmt = (
        sa.select(Contact)
        .where(CONTACTS.c.customer_id == customer_id)
        .order_by(
            CONTACTS.c.is_primary.desc(),
            CONTACTS.c.is_decision_maker.desc(),
            CONTACTS.c.created_at,
            CONTACTS.c.id,
        )
        .limit(1)
    )
    contact = (await session.execute(stmt)).scalar_one_or_none()
    return None if contact is None else ContactRead.model_validate(contact)


async def trailing_purchases(
    session: AsyncSession, customer_ids: Iterable[uuid.UUID], *, today: date | None = None
) -> dict[uuid.UUID, Decimal]:
    """Trailing-12-month order amount per customer (0 for those without orders)."""
    ids = list(customer_ids)
    if not ids:
        return {}
    since = _Window.trailing(today).since
    stmt = (
        sa.select(ORDERS.c.customer_id, sa.func.sum(ORDERS.c.amount))
        .where(ORDERS.c.customer_id.in_(ids), ORDERS.c.order_date >= since)
        .group_by(ORDERS.c.customer_id)
    )
    found = {cid: Decimal(total) for cid, total in (await session.execute(stmt)).all()}
    return {cid: found.get(cid, Decimal("0")) for cid in ids}
