"""Statements of the assignment rules and of the reps' open load."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.assignment.models import ASSIGNMENT_RULES
from opportunities.leads.models import HELD, LEADS
from opportunities.pipeline.models import OPPORTUNITIES

R = ASSIGNMENT_RULES.c


async def rules(session: AsyncSession, *, active_only: bool, lock: bool = False) -> list[Any]:
    stmt = sa.select(ASSIGNMENT_RULES).order_by(R.position, R.id)
    if active_only:
        stmt = stmt.where(R.active.is_(True))
    if lock:
        # Round robin's place is read and moved in the same transaction: concurrent intakes
        # take turns here instead of handing two leads to one rep.
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).all())


async def get(session: AsyncSession, rule_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = sa.select(ASSIGNMENT_RULES).where(R.id == rule_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def last_position(session: AsyncSession) -> int:
    return int((await session.execute(sa.select(sa.func.max(R.position)))).scalar_one() or 0)


async def insert(session: AsyncSession, values: dict[str, Any]) -> Any:
    stmt = sa.insert(ASSIGNMENT_RULES).values(values).returning(ASSIGNMENT_RULES)
    return (await session.execute(stmt)).one()


async def update(session: AsyncSession, rule_id: uuid.UUID, values: dict[str, Any]) -> Any:
    stmt = (
        sa.update(ASSIGNMENT_RULES)
        .where(R.id == rule_id)
        .values(version=R.version + 1, **values)
        .returning(ASSIGNMENT_RULES)
    )
    return (await session.execute(stmt)).one()


async def delete(session: AsyncSession, rule_id: uuid.UUID) -> None:
    await session.execute(sa.delete(ASSIGNMENT_RULES).where(R.id == rule_id))


async def move_pointers(session: AsyncSession, pointers: dict[uuid.UUID, uuid.UUID]) -> None:
    """Round robin: each rule's last rep, in one executemany."""
    if pointers:
        await session.execute(
            sa.update(ASSIGNMENT_RULES)
            .where(R.id == sa.bindparam("rule"))
            .values(last_owner_id=sa.bindparam("rep")),
            [{"rule": rule, "rep": rep} for rule, rep in sorted(pointers.items())],
        )


def open_load_statement(reps: Sequence[uuid.UUID]) -> sa.Select[Any]:
    """Per rep of `reps`: (rep, leads in hand (assigned, contacted) and open opportunities),
    each read from a partial index of what reps hold, not from their whole history."""
    lead, o = LEADS.c, OPPORTUNITIES.c
    leads = sa.select(lead.owner_id.label("rep")).where(lead.owner_id.in_(reps), HELD)
    opportunities = sa.select(o.owner_id.label("rep")).where(
        o.owner_id.in_(reps), o.closed_at.is_(None)
    )
    both = sa.union_all(leads, opportunities).subquery("load")
    return sa.select(both.c.rep, sa.func.count()).group_by(both.c.rep)


async def open_load(session: AsyncSession, reps: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Per rep: leads in hand (assigned, contacted) and open opportunities."""
    ids = sorted(set(reps))
    if not ids:
        return {}
    counts = {rep: int(n) for rep, n in await session.execute(open_load_statement(ids))}
    return {rep: counts.get(rep, 0) for rep in ids}
