"""Statements of the visit plans."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import PageParams, keyset
from visits.customer_facts.models import CUSTOMERS
from visits.plans.models import PLAN_ITEMS, PLANS
from visits.visitlog.models import VISITS

P, IT, V, CF = PLANS.c, PLAN_ITEMS.c, VISITS.c, CUSTOMERS.c


async def insert_plan(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(PLANS).values(values))


async def find_plan_id(session: AsyncSession, rep_id: uuid.UUID, day: date) -> uuid.UUID | None:
    stmt = sa.select(P.id).where(P.rep_id == rep_id, P.plan_date == day)
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_plan(
    session: AsyncSession, plan_id: uuid.UUID, *, for_update: bool = False
) -> sa.Row[Any] | None:
    stmt = sa.select(PLANS).where(P.id == plan_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def update_plan(session: AsyncSession, plan_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(PLANS).where(P.id == plan_id).values(version=P.version + 1, **values)
    )


async def replace_items(
    session: AsyncSession, plan_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> None:
    """Only draft and returned plans are edited, and only approved plans' items can be
    visited: no visit ever points at an item replaced here."""
    await session.execute(sa.delete(PLAN_ITEMS).where(IT.plan_id == plan_id))
    if rows:
        await session.execute(sa.insert(PLAN_ITEMS), [{**r, "plan_id": plan_id} for r in rows])


async def items_of(
    session: AsyncSession, plan_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[sa.Row[Any]]]:
    """The plans' items in slot order, with the customer's code and name and the visit that
    fulfils each (if any)."""
    out: dict[uuid.UUID, list[sa.Row[Any]]] = {pid: [] for pid in plan_ids}
    if not plan_ids:
        return out
    rows = await session.execute(_items().where(IT.plan_id.in_(list(plan_ids))))
    for row in rows:
        out[row.plan_id].append(row)
    return out


def _items() -> sa.Select[Any]:
    visit = sa.and_(V.plan_item_id == IT.id, V.status != "cancelled")
    return (
        sa.select(
            IT.id,
            IT.plan_id,
            IT.customer_id,
            CF.code.label("customer_code"),
            CF.name.label("customer_name"),
            IT.slot_start,
            IT.slot_end,
            IT.purpose,
            IT.note,
            V.id.label("visit_id"),
            sa.func.coalesce(V.status == "completed", sa.false()).label("fulfilled"),
        )
        .select_from(
            PLAN_ITEMS.outerjoin(CUSTOMERS, CF.id == IT.customer_id).outerjoin(VISITS, visit)
        )
        .order_by(IT.plan_id, IT.slot_start, IT.id)
    )


async def items_page(
    session: AsyncSession, plan_id: uuid.UUID, page: PageParams
) -> list[sa.Row[Any]]:
    stmt = _items().where(IT.plan_id == plan_id).order_by(None)
    return list((await session.execute(keyset(stmt, [IT.slot_start, IT.id], page))).all())


async def get_item(session: AsyncSession, item_id: uuid.UUID) -> Any:
    """A plan item with its plan's rep, day and status (for a visit that fulfils it)."""
    stmt = (
        sa.select(IT.id, IT.plan_id, IT.customer_id, IT.purpose, P.rep_id, P.status, P.plan_date)
        .select_from(PLAN_ITEMS.join(PLANS, P.id == IT.plan_id))
        .where(IT.id == item_id)
    )
    return (await session.execute(stmt)).first()


async def list_page(
    session: AsyncSession, where: list[sa.ColumnElement[bool]], page: PageParams
) -> list[sa.Row[Any]]:
    stmt = sa.select(PLANS).where(*where)
    return list((await session.execute(keyset(stmt, [P.plan_date, P.id], page))).all())
