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

from customers.archive.models import CUSTOMERS
from customers.archive.repository import visibility_filter
from customers.commerce.models import CONTACTS, ORDERS, PAYMENTS, Contact, Order, Payment
from servicekit.auth import Principal
from servicekit.db import money_type
from servicekit.pagination import PageParams, keyset, make_page

# The order summary's trailing window, in days.
TRAILING_DAYS = 365
OR = ORDERS.c
PAY = PAYMENTS.c


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
) -> list[Any]:
    """No contact of the customer is primary any more (but `keep`); returns the changed rows."""
    stmt = (
        sa.update(CONTACTS)
        .where(CONTACTS.c.customer_id == customer_id, CONTACTS.c.is_primary)
        .values(is_primary=False)
        .returning(*CONTACTS.c)
    )
    if keep is not None:
        stmt = stmt.where(CONTACTS.c.id != keep)
    result = await session.execute(stmt, execution_options={"synchronize_session": "fetch"})
    return list(result.all())


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


async def orders_of_customer_page(
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


async def add(session: AsyncSession, obj: Contact | Order | Payment) -> None:
    """A new contact or payment, written with the next flush."""
    session.add(obj)


async def delete(session: AsyncSession, obj: Contact) -> None:
    """Delete a contact with the next flush."""
    await session.delete(obj)


async def insert_contacts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await session.execute(sa.insert(CONTACTS), list(rows))


async def payment_by_id(
    session: AsyncSession, payment_id: uuid.UUID, *, for_update: bool = False
) -> Payment | None:
    stmt = sa.select(Payment).where(PAY.id == payment_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def has_payments(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """Does the order have a payment that was not reversed?"""
    stmt = sa.select(sa.exists().where(PAY.order_id == order_id, PAY.reversed_at.is_(None)))
    return bool(await session.scalar(stmt))


async def last_order_date(session: AsyncSession, customer_id: uuid.UUID) -> date | None:
    """The date of the customer's latest order that is not cancelled."""
    stmt = sa.select(sa.func.max(OR.order_date)).where(
        OR.customer_id == customer_id, OR.status == "placed"
    )
    last: date | None = await session.scalar(stmt)
    return last


async def orders_page(
    session: AsyncSession,
    visible_to: Principal | None,
    page: PageParams,
    *,
    customer_id: uuid.UUID | None,
    since: date | None,
    before: date | None,
    status: str | None,
) -> tuple[list[Order], str | None]:
    """Orders of the customers `visible_to` may see (None: every customer), newest first."""
    stmt = sa.select(Order)
    if visible_to is not None:
        stmt = stmt.join(CUSTOMERS, CUSTOMERS.c.id == OR.customer_id).where(
            visibility_filter(visible_to)
        )
    if customer_id is not None:
        stmt = stmt.where(OR.customer_id == customer_id)
    if since is not None:
        stmt = stmt.where(OR.order_date >= since)
    if before is not None:
        stmt = stmt.where(OR.order_date < before)
    if status in ("placed", "cancelled"):
        stmt = stmt.where(OR.status == status)
    elif status == "outstanding":
        stmt = stmt.where(OR.status == "placed", OR.paid_amount < OR.amount)
    elif status == "paid":
        stmt = stmt.where(OR.status == "placed", OR.paid_amount >= OR.amount)
    stmt = keyset(stmt, [OR.order_date, OR.id], page, descending=True)
    rows = list((await session.execute(stmt)).scalars().all())
    return make_page(rows, page, lambda o: (o.order_date, o.id))


# --- sections of the archive's full file and card (JSON built by PostgreSQL) -------------------
#
# Bound per read (see `archive.extensions`): `as_of`, the time the file shows (now, or a past
# time), and `today`, its date. An order counts when it was recorded by then and not cancelled
# by then; a payment when it was received by then and not reversed by then.

AS_OF = sa.bindparam("as_of", type_=sa.DateTime(timezone=True))
TODAY = sa.bindparam("today", type_=sa.Date)


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
        created_at=t.created_at,
    )


def _recorded(o: Any) -> sa.ColumnElement[bool]:
    recorded: sa.ColumnElement[bool] = o.created_at <= AS_OF
    return recorded


def _counted(o: Any) -> sa.ColumnElement[bool]:
    """The order counts in the figures as of `as_of`."""
    return sa.and_(_recorded(o), sa.or_(o.cancelled_at.is_(None), o.cancelled_at > AS_OF))


def _paid_as_of(where: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.func.coalesce(
        sa.select(sa.func.sum(PAY.amount))
        .where(
            where,
            PAY.created_at <= AS_OF,
            sa.or_(PAY.reversed_at.is_(None), PAY.reversed_at > AS_OF),
        )
        .scalar_subquery(),
        0,
    )


def _order_json(r: Any) -> sa.ColumnElement[Any]:
    """An order as `OrderRead`'s JSON, as it stood at `as_of`."""
    cancelled = sa.and_(r.cancelled_at.is_not(None), r.cancelled_at <= AS_OF)
    paid = _paid_as_of(PAY.order_id == r.id)
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
        status=sa.case((cancelled, sa.literal("cancelled")), else_=sa.literal("placed")),
        cancelled_at=sa.case((cancelled, r.cancelled_at)),
        cancel_reason=sa.case((cancelled, r.cancel_reason)),
        paid_amount=_money_text(paid),
        outstanding_amount=_money_text(sa.case((cancelled, 0), else_=r.amount - paid)),
        version=r.version,
        created_at=r.created_at,
    )


def _latest_orders(customer_id: sa.ColumnElement[uuid.UUID], n: int) -> sa.ColumnElement[Any]:
    latest = (
        sa.select(ORDERS)
        .where(OR.customer_id == customer_id, _recorded(OR))
        .order_by(OR.order_date.desc(), OR.id.desc())
        .limit(n)
        # A FROM-subquery is not auto-correlated: without this SQLAlchemy adds its own
        # customers table and the file listed the latest orders of every customer.
        .correlate_except(ORDERS)
        .subquery("latest")
    )
    r = latest.c
    return sa.select(_json_list(_order_json(r), r.order_date.desc(), r.id.desc())).scalar_subquery()


def contacts_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The full file's contacts, primary first (as they are: the file as of replays them)."""
    t = CONTACTS.c
    return (
        sa.select(_json_list(_contact_json(t), t.is_primary.desc(), t.created_at, t.id))
        .where(t.customer_id == customer_id)
        .scalar_subquery()
    )


FILE_RECENT_ORDERS = 10
CARD_RECENT_ORDERS = 3


def _reorder_interval(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The usual reorder interval in days: the median gap between the customer's order days,
    once it ordered on at least three days (orders of one day are one purchase)."""
    days = (
        sa.select(OR.order_date.label("d"))
        .where(OR.customer_id == customer_id, _counted(OR))
        .distinct()
        .correlate_except(ORDERS)
        .subquery("order_days")
    )
    gaps = sa.select(
        (days.c.d - sa.func.lag(days.c.d).over(order_by=days.c.d)).label("gap")
    ).subquery("gaps")
    median = sa.func.percentile_cont(0.5).within_group(gaps.c.gap)
    return (
        sa.select(sa.func.round(sa.cast(median, sa.Numeric), 1))
        .where(gaps.c.gap.is_not(None))
        .having(sa.func.count(gaps.c.gap) >= 2)
        .scalar_subquery()
    )


def _figures(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The purchase figures of a customer (`orders.summary`): counts and money as of `as_of`.

    - `count`, `total` (= `lifetime_value`: every order that counts), `lifetime_gross_profit`;
    - `paid_total`, `outstanding_total`: received against them (reversals excluded);
    - `first_order_date`, `last_order_date`, `days_since_last_order` (to `today`);
    - `trailing_12m_amount`: orders dated in the 365 days up to `today`;
    - `repeat_orders`: orders after the first; `repeat_share_12m`: the part of the trailing
      amount that came from them (a decimal string, 4 places; null without trailing orders);
    - `usual_reorder_interval_days`: see `_reorder_interval`.
    """
    counted = (
        sa.select(
            OR.order_date,
            OR.amount,
            OR.gross_profit,
            sa.func.row_number().over(order_by=(OR.order_date, OR.created_at, OR.id)).label("n"),
        )
        .where(OR.customer_id == customer_id, _counted(OR))
        .correlate_except(ORDERS)
        .subquery("counted")
    )
    c = counted.c
    window = sa.and_(c.order_date >= TODAY - TRAILING_DAYS, c.order_date <= TODAY)
    total = sa.func.coalesce(sa.func.sum(c.amount), 0)
    trailing = sa.func.coalesce(sa.func.sum(c.amount).filter(window), 0)
    repeat_trailing = sa.func.coalesce(sa.func.sum(c.amount).filter(window, c.n > 1), 0)
    paid = _paid_as_of(PAY.customer_id == customer_id)
    last = sa.func.max(c.order_date)
    return sa.select(
        _json_object(
            count=sa.func.count(),
            total=_money_text(total),
            lifetime_value=_money_text(total),
            lifetime_gross_profit=_money_text(sa.func.coalesce(sa.func.sum(c.gross_profit), 0)),
            paid_total=_money_text(paid),
            outstanding_total=_money_text(total - paid),
            first_order_date=sa.func.min(c.order_date),
            last_order_date=last,
            days_since_last_order=TODAY - last,
            trailing_12m_amount=_money_text(trailing),
            repeat_orders=sa.func.greatest(sa.func.count() - 1, 0),
            repeat_share_12m=sa.cast(
                sa.func.round(repeat_trailing / sa.func.nullif(trailing, 0), 4), sa.Text
            ),
            usual_reorder_interval_days=_reorder_interval(customer_id),
        )
    ).scalar_subquery()


def orders_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The purchase figures (`_figures`) and the latest orders."""
    return _json_object(
        summary=_figures(customer_id), recent=_latest_orders(customer_id, FILE_RECENT_ORDERS)
    )


def purchases_card_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The card's purchase facts: last order date, days since, what is still to be paid."""
    o = ORDERS.c
    last = sa.func.max(o.order_date)
    amount = sa.func.coalesce(sa.func.sum(o.amount), 0)
    return (
        sa.select(
            _json_object(
                last_order_date=last,
                days_since_last_order=TODAY - last,
                outstanding_total=_money_text(amount - _paid_as_of(PAY.customer_id == customer_id)),
            )
        )
        .where(o.customer_id == customer_id, _counted(o))
        .scalar_subquery()
    )


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


def purchases_between(
    since: sa.ColumnElement[date], until: sa.ColumnElement[date]
) -> sa.Select[Any]:
    """(customer_id, amount) of orders dated from `since` to `until` that are not cancelled:
    the level proposal's input."""
    return (
        sa.select(OR.customer_id, sa.func.sum(OR.amount).label("amount"))
        .where(OR.order_date >= since, OR.order_date <= until, OR.status == "placed")
        .group_by(OR.customer_id)
    )
