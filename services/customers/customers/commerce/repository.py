"""Queries on contacts, orders and payments (no rules here: those live in service.py), and
commerce's parts of the archive's full file and card, as SQL (see `archive.extensions`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession

from customers.commerce.models import CONTACTS, ORDERS, PAYMENTS, Contact, Order, Payment
from servicekit.db import money_type
from servicekit.pagination import PageParams, keyset, make_page

# The order summary's trailing window, in days.
TRAILING_DAYS = 365


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


async def add(session: AsyncSession, obj: Contact | Payment) -> None:
    """A new contact or payment, written with the next flush."""
    session.add(obj)


async def delete(session: AsyncSession, obj: Contact) -> None:
    """Delete a contact with the next flush."""
    await session.delete(obj)


async def insert_contacts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await session.execute(sa.insert(CONTACTS), list(rows))


# --- sections of the archive's full file and card (JSON built by PostgreSQL) -------------------


def _money_text(value: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    # Decimal strings in JSON, as everywhere else: never a JSON number (a float to clients).
    return sa.cast(sa.cast(value, money_type()), sa.Text)


def _json_object(**fields: Any) -> sa.ColumnElement[Any]:
    return sa.func.json_build_object(*[part for k, v in fields.items() for part in (k, v)])


def _json_list(entry: sa.ColumnElement[Any], *order: Any) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(
        sa.func.json_agg(aggregate_order_by(entry, *order)), sa.func.json_build_array()
    )


def _contact_json(t: Any) -> sa.ColumnElement[Any]:
    """A contact as `ContactRead`'s JSON."""
    return _json_object(
        id=t.id,
        customer_id=t.customer_id,
        name=t.name,
        title=t.title,
        phone=t.phone,
        email=t.email,
        is_decision_maker=t.is_decision_maker,
        is_primary=t.is_primary,
    )


def _order_json(r: Any) -> sa.ColumnElement[Any]:
    """An order as `OrderRead`'s JSON."""
    return _json_object(
        id=r.id,
        customer_id=r.customer_id,
        order_date=r.order_date,
        amount=_money_text(r.amount),
        gross_profit=_money_text(r.gross_profit),
        due_date=r.due_date,
        lines=r.lines,
        source=r.source,
        external_ref=r.external_ref,
        paid_amount=_money_text(r.paid_amount),
        outstanding_amount=_money_text(r.amount - r.paid_amount),
    )


def _latest_orders(customer_id: sa.ColumnElement[uuid.UUID], n: int) -> sa.ColumnElement[Any]:
    o = ORDERS.c
    latest = (
        sa.select(ORDERS)
        .where(o.customer_id == customer_id)
        .order_by(o.order_date.desc(), o.id.desc())
        .limit(n)
        # A FROM-subquery is not auto-correlated: without this SQLAlchemy adds its own
        # customers table and the file listed the latest orders of every customer.
        .correlate_except(ORDERS)
        .subquery("latest")
    )
    r = latest.c
    return sa.select(_json_list(_order_json(r), r.order_date.desc(), r.id.desc())).scalar_subquery()


def contacts_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The full file's contacts, primary first."""
    t = CONTACTS.c
    return (
        sa.select(_json_list(_contact_json(t), t.is_primary.desc(), t.created_at, t.id))
        .where(t.customer_id == customer_id)
        .scalar_subquery()
    )


FILE_RECENT_ORDERS = 10
CARD_RECENT_ORDERS = 3


def orders_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """Order summary (count, total, last date, trailing 12 months) and the latest orders."""
    o = ORDERS.c
    since = sa.cast(sa.func.current_date() - TRAILING_DAYS, sa.Date)
    totals = (
        sa.select(
            _json_object(
                count=sa.func.count(),
                total=_money_text(sa.func.coalesce(sa.func.sum(o.amount), 0)),
                last_order_date=sa.func.max(o.order_date),
                trailing_12m_amount=_money_text(
                    sa.func.coalesce(sa.func.sum(o.amount).filter(o.order_date >= since), 0)
                ),
            )
        )
        .where(o.customer_id == customer_id)
        .scalar_subquery()
    )
    return _json_object(summary=totals, recent=_latest_orders(customer_id, FILE_RECENT_ORDERS))


def key_contact_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The card's key contact: the primary one, else a decision maker, else the first."""
    t = CONTACTS.c
    return (
        sa.select(_contact_json(t))
        .where(t.customer_id == customer_id)
        .order_by(t.is_primary.desc(), t.is_decision_maker.desc(), t.created_at, t.id)
        .limit(1)
        .scalar_subquery()
    )


def last_orders_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The card's latest orders."""
    return _latest_orders(customer_id, CARD_RECENT_ORDERS)


def purchases_since(since: sa.ColumnElement[date]) -> sa.Select[Any]:
    """(customer_id, amount) of orders dated on or after `since`: the level proposal's input."""
    return (
        sa.select(ORDERS.c.customer_id, sa.func.sum(ORDERS.c.amount).label("amount"))
        .where(ORDERS.c.order_date >= since)
        .group_by(ORDERS.c.customer_id)
    )
