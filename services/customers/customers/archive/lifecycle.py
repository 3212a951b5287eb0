"""The customer's lifecycle: active, dormant (computed), lost (a manager's verdict), and back.

- **dormant**: a customer with at least one order and none for the settings'
  `dormant_after_days` (180 by default). It is materialised in the status column, so
  `GET /customers?status=dormant` is an index range like any status, and announced with
  `customer.dormant` when it happens, its `since` (and `occurred_at`) the day the last order
  got too old, not the moment it was noticed. Two paths notice it: the service's periodic pass
  (`pass_once`, every `CUSTOMERS_MAINTENANCE_INTERVAL_SECONDS` on the app's clock), and every
  order written for the customer (`orders_changed`), so an order never lands on a customer
  whose dormancy nobody recorded yet. Raising the days later does not revive customers already
  dormant; their next order does.
- **lost**: set by a manager of the customer's team (or an admin) with a reason and, when
  known, the competitor that won it (`customer.lost`).
- **reactivated**: a dormant customer whose new order makes its last order recent again, or a
  lost customer with an order dated on or after the day it was lost, becomes active
  (`customer.reactivated`, saying from which state and since when). A manager may also take
  back a `lost` verdict (PATCH status active). An order that is cancelled later does not undo
  a reactivation; the next pass sees the dates as they are.

Each change is one version of the record and one history entry (action `status_changed`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import events, repository
from customers.archive import settings as archive_settings
from customers.archive.history import SYSTEM, Actor, as_actor, history_row, write_history
from customers.archive.models import Customer
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Conflict, Forbidden

# How many customers one statement of the pass turns dormant.
PASS_BATCH = 1000


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def dormant_since(last_order_date: date, days: int) -> datetime:
    """The moment a customer whose last order is dated `last_order_date` becomes dormant."""
    return midnight(last_order_date + timedelta(days=days))


def occurred_on(day: date, now: datetime) -> datetime:
    """When something dated `day` happened: now for today (or later), else that day's start."""
    return now if day >= now.date() else midnight(day)


async def pass_once(session: AsyncSession) -> int:
    """Turn every active customer whose last order is too old dormant (the periodic pass);
    returns how many. Rows another transaction holds are skipped: that one (an order being
    placed, another replica's pass) decides them."""
    doc, _ = await archive_settings.load(session)
    days = doc.dormant_after_days
    now = utcnow()
    # Dormant from the day last_order_date + days starts: last_order_date <= today - days.
    latest = now.date() - timedelta(days=days)
    total = 0
    while True:
        rows = await repository.mark_dormant(
            session, latest_order=latest, days=days, at=now, limit=PASS_BATCH
        )
        if not rows:
            return total
        await _record_dormant(session, SYSTEM, rows, days)
        total += len(rows)
        if len(rows) < PASS_BATCH:
            return total


async def _record_dormant(session: AsyncSession, who: Actor, rows: list[Any], days: int) -> None:
    history = []
    announced: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    for r in rows:
        since = r.status_since
        history.append(
            history_row(
                r.id,
                r.version,
                who,
                "status_changed",
                {"status": ("active", "dormant")},
                comment=f"no order for {days} days since {r.last_order_date.isoformat()}",
                at=since,
            )
        )
        announced.append(
            (
                events.CUSTOMER_DORMANT,
                r.id,
                events.status_changed(
                    r._mapping,
                    "active",
                    since,
                    who.id,
                    last_order_date=r.last_order_date,
                    dormant_after_days=days,
                ),
            )
        )
    await write_history(session, history)
    await events.emit_many(session, announced)


async def _change_status(
    session: AsyncSession,
    who: Actor,
    customer: Customer,
    new: str,
    since: datetime,
    *,
    extra: dict[str, tuple[Any, Any]] | None = None,
    comment: str | None = None,
) -> str:
    """Set the status of a loaded (locked) customer with its history entry; returns the old
    status. The caller announces it."""
    old = customer.status
    changes: dict[str, tuple[Any, Any]] = {"status": (old, new), **(extra or {})}
    customer.status = new
    customer.status_since = since
    for name, (_, value) in (extra or {}).items():
        setattr(customer, name, value)
    customer.version += 1
    customer.updated_at = utcnow()
    customer.updated_by = who.id
    await session.flush()
    await write_history(
        session,
        [
            history_row(
                customer.id,
                customer.version,
                who,
                "status_changed",
                changes,
                comment=comment,
                at=since,
            )
        ],
    )
    return old


async def orders_changed(
    session: AsyncSession,
    actor: Actor | Principal | None,
    customer: Customer,
    last_order_date: date | None,
    *,
    order: Any = None,
) -> None:
    """The customer's orders changed (the caller holds its row lock): keep its last order date
    and its lifecycle. `order`: the order just placed (or re-dated), which may reactivate it."""
    doc, _ = await archive_settings.load(session)
    days = doc.dormant_after_days
    now = utcnow()
    who = as_actor(actor)
    previous = customer.last_order_date
    # First what the pass would have recorded by now, had it run: the dormancy the previous
    # last order already meant.
    if (
        customer.status == "active"
        and previous is not None
        and dormant_since(previous, days) <= now
    ):
        await _become_dormant(session, who, customer, previous, days)
    customer.last_order_date = last_order_date
    await session.flush()
    if last_order_date is None:
        return
    due = dormant_since(last_order_date, days)
    if customer.status == "active" and due <= now:
        # Only old orders (an import of past ones): dormant since that day.
        await _become_dormant(session, who, customer, last_order_date, days)
        return
    if order is None or order.status != "placed":
        return
    revives = (customer.status == "dormant" and due > now) or (
        customer.status == "lost" and order.order_date >= customer.status_since.date()
    )
    if revives:
        since = max(occurred_on(order.order_date, now), customer.status_since)
        left_since = customer.status_since
        extra = _clear_lost(customer)
        old = await _change_status(
            session, who, customer, "active", since, extra=extra, comment="ordered again"
        )
        await events.emit(
            session,
            events.CUSTOMER_REACTIVATED,
            customer.id,
            events.status_changed(
                customer,
                old,
                since,
                who.id,
                from_since=left_since,
                order_id=order.id,
                order_date=order.order_date,
            ),
        )


def _clear_lost(customer: Customer) -> dict[str, tuple[Any, Any]]:
    return {
        name: (getattr(customer, name), None)
        for name in ("lost_reason", "lost_competitor")
        if getattr(customer, name) is not None
    }


async def _become_dormant(
    session: AsyncSession, who: Actor, customer: Customer, last_order_date: date, days: int
) -> None:
    since = dormant_since(last_order_date, days)
    await _change_status(
        session,
        who,
        customer,
        "dormant",
        since,
        comment=f"no order for {days} days since {last_order_date.isoformat()}",
    )
    await events.emit(
        session,
        events.CUSTOMER_DORMANT,
        customer.id,
        events.status_changed(
            customer,
            "active",
            since,
            who.id,
            last_order_date=last_order_date,
            dormant_after_days=days,
        ),
    )


def may_judge(principal: Principal, customer: Customer) -> bool:
    """Who declares a customer lost (or takes it back): its team's managers and admins."""
    if principal.kind != "user":
        return False
    if principal.is_admin:
        return True
    return principal.is_manager and (
        customer.owner_id is None
        or customer.owner_id == principal.user_id
        or principal.sees_team(customer.team_id)
    )


async def mark_lost(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    reason: str,
    competitor: str | None,
) -> None:
    """A manager declares the customer lost (the caller loaded it as changeable)."""
    if not may_judge(principal, customer):
        raise Forbidden("only a manager of the customer's team or an admin declares it lost")
    if customer.status not in ("active", "dormant"):
        raise Conflict(f"a {customer.status} customer cannot be declared lost")
    now = utcnow()
    who = Actor.of(principal)
    extra = {"lost_reason": (customer.lost_reason, reason)}
    if competitor is not None:
        extra["lost_competitor"] = (customer.lost_competitor, competitor)
    old = await _change_status(session, who, customer, "lost", now, extra=extra, comment=reason)
    await events.emit(
        session,
        events.CUSTOMER_LOST,
        customer.id,
        events.status_changed(customer, old, now, who.id, reason=reason, competitor=competitor),
    )


async def take_back_lost(session: AsyncSession, principal: Principal, customer: Customer) -> None:
    """A manager takes a `lost` verdict back (PATCH status active)."""
    if not may_judge(principal, customer):
        raise Forbidden("only a manager of the customer's team or an admin takes it back")
    now = utcnow()
    who = Actor.of(principal)
    left_since = customer.status_since
    old = await _change_status(
        session, who, customer, "active", now, extra=_clear_lost(customer), comment="taken back"
    )
    await events.emit(
        session,
        events.CUSTOMER_REACTIVATED,
        customer.id,
        events.status_changed(customer, old, now, who.id, from_since=left_since),
    )
