"""Every statement on the fact tables that the feeds' handlers run."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts.events import REENGAGED_STATUSES
from analytics.facts.models import (
    CASE_STEPS,
    CUSTOMER_VERSIONS,
    CUSTOMERS,
    FIELD_REPORTS,
    LEADS,
    MEMBERSHIPS,
    OPPORTUNITIES,
    ORDER_LINES,
    ORDERS,
    PAYMENTS,
    PLAN_ITEMS,
    STAGE_MOVES,
    VISITS,
)
from analytics.rollups.contributions import (
    Attribution,
    CustomerFacts,
    OrderFact,
    PaymentFact,
    PlanItemFact,
    State,
)

# --- customers --------------------------------------------------------------------------------


def _last_visit(customer_id: Any) -> Any:
    """The day of the customer's latest completed visit (one step down its visits index)."""
    v = VISITS.c
    return sa.select(sa.func.max(v.day)).where(v.customer_id == customer_id).scalar_subquery()


async def upsert_customer(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the customer, or set the given columns of the one we know. A new row takes the
    day of the visits already applied (the visits feed may run ahead of this one)."""
    stmt = pg_insert(CUSTOMERS).values({**values, "last_visit_day": _last_visit(values["id"])})
    changed = {k: stmt.excluded[k] for k in values if k != "id"}
    await session.execute(stmt.on_conflict_do_update(index_elements=[CUSTOMERS.c.id], set_=changed))


async def ensure_customers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Customers known only from their orders so far (the feed began after they were created):
    a row to hang the facts on; their own events fill it in."""
    if rows:
        await session.execute(
            pg_insert(CUSTOMERS)
            .values([{**r, "last_visit_day": _last_visit(r["id"])} for r in rows])
            .on_conflict_do_nothing(index_elements=[CUSTOMERS.c.id])
        )


async def mark_visited(session: AsyncSession, customer_ids: Iterable[uuid.UUID] | None) -> None:
    """Set the customers' `last_visit_day` from their visits (None: every customer, as a
    rebuild does). A customer not known yet gets it when its row is inserted."""
    c = CUSTOMERS.c
    latest = _last_visit(c.id)
    where = [c.last_visit_day.is_distinct_from(latest)]
    if customer_ids is not None:
        ids = sorted(set(customer_ids))
        if not ids:
            return
        where.append(c.id == sa.any_(sa.literal(ids, ARRAY(sa.Uuid))))
    await session.execute(sa.update(CUSTOMERS).where(*where).values(last_visit_day=latest))


async def add_version(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        pg_insert(CUSTOMER_VERSIONS)
        .values(values)
        .on_conflict_do_nothing(index_elements=[CUSTOMER_VERSIONS.c.event_id])
    )


async def set_first_orders(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Each customer's first-ever order (id, day and attribution; None when it has none)."""
    if not rows:
        return
    c, o = CUSTOMERS.c, ORDERS.c
    names = ("first_order_id", "first_order_day", "first_owner_id", "first_team_id", "first_region")
    stmt = (
        sa.update(CUSTOMERS)
        .where(c.id == sa.bindparam("customer_id"))
        .values({n: sa.bindparam(f"new_{n}") for n in names})
    )
    await session.execute(
        stmt, [{"customer_id": r["id"], **{f"new_{n}": r[n] for n in names}} for r in rows]
    )
    ids = [r["id"] for r in rows]
    firsts = [r["first_order_id"] for r in rows if r["first_order_id"] is not None]
    await session.execute(
        sa.update(ORDERS)
        .where(
            o.customer_id == sa.any_(sa.literal(ids, ARRAY(sa.Uuid))),
            o.first != (o.id == sa.any_(sa.literal(firsts, ARRAY(sa.Uuid)))),
        )
        .values(first=o.id == sa.any_(sa.literal(firsts, ARRAY(sa.Uuid))))
    )


async def move_commerce(
    session: AsyncSession, duplicate_id: uuid.UUID, survivor_id: uuid.UUID
) -> None:
    """A merge moves the duplicate's orders and payments to the survivor (as customers does);
    each keeps the attribution it had when it happened."""
    for table in (ORDERS, PAYMENTS):
        await session.execute(
            sa.update(table)
            .where(table.c.customer_id == duplicate_id)
            .values(customer_id=survivor_id)
        )


# --- orders and payments ---------------------------------------------------------------------


async def add_order(
    session: AsyncSession, values: dict[str, Any], lines: list[dict[str, Any]]
) -> bool:
    """Insert the order (once); whether it was new."""
    inserted = await session.execute(
        pg_insert(ORDERS)
        .values(values)
        .on_conflict_do_nothing(index_elements=[ORDERS.c.id])
        .returning(ORDERS.c.id)
    )
    if inserted.first() is None:
        return False
    if lines:
        await session.execute(pg_insert(ORDER_LINES).values(lines).on_conflict_do_nothing())
    return True


async def change_order(
    session: AsyncSession,
    order_id: uuid.UUID,
    values: dict[str, Any],
    lines: list[dict[str, Any]] | None,
) -> None:
    await session.execute(sa.update(ORDERS).where(ORDERS.c.id == order_id).values(values))
    if lines is not None:
        await session.execute(sa.delete(ORDER_LINES).where(ORDER_LINES.c.order_id == order_id))
        if lines:
            await session.execute(pg_insert(ORDER_LINES).values(lines))


async def order_customer(session: AsyncSession, order_id: uuid.UUID) -> uuid.UUID | None:
    row = (
        await session.execute(sa.select(ORDERS.c.customer_id).where(ORDERS.c.id == order_id))
    ).first()
    return None if row is None else row[0]


async def add_payment(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        pg_insert(PAYMENTS).values(values).on_conflict_do_nothing(index_elements=[PAYMENTS.c.id])
    )


async def reverse_payment(session: AsyncSession, payment_id: uuid.UUID) -> uuid.UUID | None:
    """Mark the payment reversed; its customer (None when unknown)."""
    row = (
        await session.execute(
            sa.update(PAYMENTS)
            .where(PAYMENTS.c.id == payment_id)
            .values(reversed=True)
            .returning(PAYMENTS.c.customer_id)
        )
    ).first()
    return None if row is None else row[0]


async def refresh_paid(session: AsyncSession, customer_ids: Iterable[uuid.UUID]) -> None:
    """Each order's paid amount: the payments against it that were not reversed."""
    ids = list(customer_ids)
    if not ids:
        return
    p = PAYMENTS.c
    paid = (
        sa.select(sa.func.coalesce(sa.func.sum(p.amount), 0))
        .where(p.order_id == ORDERS.c.id, p.reversed.is_(False))
        .scalar_subquery()
    )
    await session.execute(
        sa.update(ORDERS).where(ORDERS.c.customer_id.in_(ids)).values(paid_amount=paid)
    )


def _who(row: Any, prefix: str = "") -> Attribution:
    return Attribution(
        getattr(row, f"{prefix}owner_id"),
        getattr(row, f"{prefix}team_id"),
        getattr(row, f"{prefix}region"),
    )


async def customer_facts(
    session: AsyncSession, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, CustomerFacts]:
    """Everything the rollups derive from, for these customers."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    found: dict[uuid.UUID, CustomerFacts] = {}
    c = CUSTOMERS.c
    for row in await session.execute(
        sa.select(
            c.id, c.status, c.created_day, c.created_owner_id, c.created_team_id, c.created_region
        ).where(c.id.in_(ids))
    ):
        found[row.id] = CustomerFacts(row.id, row.status, row.created_day, _who(row, "created_"))
    return await _with_history(session, found)


async def _with_history(
    session: AsyncSession, found: dict[uuid.UUID, CustomerFacts]
) -> dict[uuid.UUID, CustomerFacts]:
    ids = list(found)
    if not ids:
        return found
    v, o, p = CUSTOMER_VERSIONS.c, ORDERS.c, PAYMENTS.c
    versions = await session.execute(
        sa.select(
            v.customer_id, v.day, v.seq, v.owner_id, v.team_id, v.region, v.level, v.status
        ).where(v.customer_id.in_(ids))
    )
    for version in versions:
        found[version.customer_id].versions.append(
            State(version.day, version.seq, _who(version), version.level, version.status)
        )
    orders = await session.execute(
        sa.select(
            o.id,
            o.customer_id,
            o.seq,
            o.day,
            o.owner_id,
            o.team_id,
            o.region,
            o.amount,
            o.gross_profit,
            o.cancelled,
        ).where(o.customer_id.in_(ids))
    )
    for order in orders:
        found[order.customer_id].orders.append(
            OrderFact(
                order.id,
                order.seq,
                order.day,
                _who(order),
                order.amount,
                order.gross_profit,
                order.cancelled,
            )
        )
    r = VISITS.c
    reengaged = await session.execute(
        sa.select(r.customer_id, r.day).where(
            r.customer_id.in_(ids), r.customer_status.in_(REENGAGED_STATUSES)
        )
    )
    for visit in reengaged:
        found[visit.customer_id].reengaged.append(visit.day)
    payments = await session.execute(
        sa.select(
            p.id,
            p.order_id,
            p.customer_id,
            p.day,
            p.owner_id,
            p.team_id,
            p.region,
            p.amount,
            p.reversed,
        ).where(p.customer_id.in_(ids))
    )
    for payment in payments:
        found[payment.customer_id].payments.append(
            PaymentFact(
                payment.id,
                payment.order_id,
                payment.day,
                _who(payment),
                payment.amount,
                payment.reversed,
            )
        )
    return found


# --- visits and plans ------------------------------------------------------------------------


async def add_visits(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert the completed visits not known yet; the ids of those inserted."""
    if not rows:
        return set()
    inserted = await session.execute(
        pg_insert(VISITS)
        .on_conflict_do_nothing(index_elements=[VISITS.c.id])
        .returning(VISITS.c.id),
        list(rows),
    )
    return {r[0] for r in inserted}


def _item(row: Any) -> PlanItemFact:
    return PlanItemFact(
        Attribution(row.rep_id, row.team_id, None),
        row.day,
        row.approved,
        row.fulfilled_by is not None,
    )


async def plan_items(
    session: AsyncSession, plan_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[PlanItemFact]]:
    out: dict[uuid.UUID, list[PlanItemFact]] = defaultdict(list)
    ids = list(set(plan_ids))
    if not ids:
        return out
    p = PLAN_ITEMS.c
    for row in await session.execute(sa.select(PLAN_ITEMS).where(p.plan_id.in_(ids))):
        out[row.plan_id].append(_item(row))
    return out


async def replace_plan_items(
    session: AsyncSession, plan_id: uuid.UUID, rows: list[dict[str, Any]]
) -> None:
    """The plan's items as its latest event lists them (a fulfilled item stays fulfilled)."""
    p = PLAN_ITEMS.c
    await session.execute(
        sa.delete(PLAN_ITEMS).where(p.plan_id == plan_id, p.id.not_in([r["id"] for r in rows]))
    )
    if rows:
        stmt = pg_insert(PLAN_ITEMS).values(rows)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[p.id],
                set_={k: stmt.excluded[k] for k in rows[0] if k not in ("id", "fulfilled_by")},
            )
        )


async def fulfil_items(
    session: AsyncSession, fulfilled: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> list[uuid.UUID]:
    """Mark plan items fulfilled by visits ((item, visit) pairs); the plans they belong to."""
    plans: list[uuid.UUID] = []
    for item_id, visit_id in fulfilled:
        row = (
            await session.execute(
                sa.update(PLAN_ITEMS)
                .where(PLAN_ITEMS.c.id == item_id, PLAN_ITEMS.c.fulfilled_by.is_(None))
                .values(fulfilled_by=visit_id)
                .returning(PLAN_ITEMS.c.plan_id)
            )
        ).first()
        if row is not None:
            plans.append(row[0])
    return plans


async def plans_of_items(session: AsyncSession, item_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    ids = list(set(item_ids))
    if not ids:
        return []
    rows = await session.execute(
        sa.select(PLAN_ITEMS.c.plan_id).distinct().where(PLAN_ITEMS.c.id.in_(ids))
    )
    return [r[0] for r in rows]


async def upsert_field_report(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = pg_insert(FIELD_REPORTS).values(values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[FIELD_REPORTS.c.id],
            set_={k: stmt.excluded[k] for k in values if k != "id"},
        )
    )


async def add_case_step(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        pg_insert(CASE_STEPS)
        .values(values)
        .on_conflict_do_nothing(index_elements=[CASE_STEPS.c.event_id])
    )


# --- leads and opportunities -----------------------------------------------------------------


async def upsert_lead(
    session: AsyncSession, values: dict[str, Any], keep: Sequence[str] = ()
) -> None:
    """Insert the lead or set its columns; `keep`: columns a later event never clears."""
    stmt = pg_insert(LEADS).values(values)
    changed: dict[str, Any] = {}
    for k in values:
        if k == "id":
            continue
        changed[k] = (
            sa.func.coalesce(stmt.excluded[k], LEADS.c[k]) if k in keep else stmt.excluded[k]
        )
    await session.execute(stmt.on_conflict_do_update(index_elements=[LEADS.c.id], set_=changed))


async def upsert_opportunity(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = pg_insert(OPPORTUNITIES).values(values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[OPPORTUNITIES.c.id],
            set_={k: stmt.excluded[k] for k in values if k != "id"},
        )
    )


async def add_stage_move(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        pg_insert(STAGE_MOVES)
        .values(values)
        .on_conflict_do_nothing(index_elements=[STAGE_MOVES.c.event_id])
    )


# --- memberships -----------------------------------------------------------------------------


async def close_membership(session: AsyncSession, user_id: uuid.UUID, at: datetime) -> None:
    m = MEMBERSHIPS.c
    await session.execute(
        sa.update(MEMBERSHIPS).where(m.user_id == user_id, m.valid_to.is_(None)).values(valid_to=at)
    )


async def open_membership(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(
        pg_insert(MEMBERSHIPS)
        .values(values)
        .on_conflict_do_nothing(index_elements=[MEMBERSHIPS.c.id])
    )


async def team_at(session: AsyncSession, user_id: uuid.UUID, at: datetime) -> uuid.UUID | None:
    """The team the user was a member of just before `at` (None: not known then)."""
    m = MEMBERSHIPS.c
    row = (
        await session.execute(
            sa.select(m.team_id)
            .where(m.user_id == user_id, sa.or_(m.valid_from.is_(None), m.valid_from < at))
            .order_by(m.valid_from.desc().nulls_last())
            .limit(1)
        )
    ).first()
    return None if row is None else row[0]
