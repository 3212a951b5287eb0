"""Commerce's parts of the archive's full file and card, registered on import (main imports
the commerce router, which imports this)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import extensions
from customers.archive.models import Customer
from customers.archive.schemas import CustomerCreate, CustomerRead
from customers.commerce import events, summary
from customers.commerce.models import CONTACTS, ORDERS, Contact
from servicekit.auth import Principal
from servicekit.db import money_type, utcnow
from servicekit.ids import new_id
from servicekit.outbox import record_event

FILE_RECENT_ORDERS = 10
CARD_RECENT_ORDERS = 3


def _money_text(value: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    # Decimal strings in JSON, as everywhere else: never a JSON number (a float to clients).
    return sa.cast(sa.cast(value, money_type()), sa.Text)


def _json_object(**fields: Any) -> sa.ColumnElement[Any]:
    return sa.func.json_build_object(*[part for k, v in fields.items() for part in (k, v)])


def contacts_sql(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The full file's contacts, as one correlated JSON subquery (primary first)."""
    t = CONTACTS.c
    entry = _json_object(
        id=t.id,
        customer_id=t.customer_id,
        name=t.name,
        title=t.title,
        phone=t.phone,
        email=t.email,
        is_decision_maker=t.is_decision_maker,
        is_primary=t.is_primary,
    )
    ordered = aggregate_order_by(entry, t.is_primary.desc(), t.created_at, t.id)
    return (
        sa.select(sa.func.coalesce(sa.func.json_agg(ordered), sa.text("'[]'::json")))
        .where(t.customer_id == customer_id)
        .scalar_subquery()
    )


def orders_sql(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """Order summary (count, total, last date, trailing 12 months) and the latest orders."""
    o = ORDERS.c
    since = sa.cast(sa.func.current_date() - summary.TRAILING_DAYS, sa.Date)
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
    latest = (
        sa.select(ORDERS)
        .where(o.customer_id == customer_id)
        .order_by(o.order_date.desc(), o.id.desc())
        .limit(FILE_RECENT_ORDERS)
        # A FROM-subquery is not auto-correlated: without this SQLAlchemy adds its own
        # customers table and the file listed the latest orders of every customer.
        .correlate_except(ORDERS)
        .subquery("latest")
    )
    r = latest.c
    entry = _json_object(
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
    recent = sa.select(
        sa.func.coalesce(
            sa.func.json_agg(aggregate_order_by(entry, r.order_date.desc(), r.id.desc())),
            sa.text("'[]'::json"),
        )
    ).scalar_subquery()
    return _json_object(summary=totals, recent=recent)


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
                    "id": new_id(),
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
    # On the full file as SQL: the hot GET /{id} stays one statement on the direct reads.
    extensions.file_sql_sections.register("contacts", contacts_sql)
    extensions.file_sql_sections.register("orders", orders_sql)
    extensions.card_sections.register("key_contact", _card_key_contact)
    extensions.card_sections.register("last_orders", _card_last_orders)
    extensions.set_purchases_source(purchases_since)
    extensions.add_after_create(create_initial_contacts)


register()
