"""Statements of the customers read model."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import utcnow
from visits.customer_facts.models import CADENCES, CUSTOMERS

C = CUSTOMERS.c


def visible_clause() -> sa.ColumnElement[bool]:
    """`access.can_see` as SQL over the read model's row, its values bound as parameters
    (`access.see_params`), so that a statement using it is built once."""
    teams = sa.bindparam("see_teams", type_=postgresql.ARRAY(sa.Uuid))
    return sa.or_(
        sa.bindparam("see_all", type_=sa.Boolean),
        sa.and_(C.owner_id.is_(None), sa.bindparam("see_pool", type_=sa.Boolean)),
        C.owner_id == sa.bindparam("see_owner", type_=sa.Uuid),
        C.team_id == sa.any_(teams),
    )


_BY_ID = sa.select(CUSTOMERS).where(C.id == sa.bindparam("customer_id", type_=sa.Uuid))


async def get(session: AsyncSession, customer_id: uuid.UUID) -> sa.Row[Any] | None:
    return (await session.execute(_BY_ID, {"customer_id": customer_id})).first()


async def get_many(
    session: AsyncSession, customer_ids: list[uuid.UUID]
) -> dict[uuid.UUID, sa.Row[Any]]:
    if not customer_ids:
        return {}
    rows = await session.execute(sa.select(CUSTOMERS).where(C.id.in_(set(customer_ids))))
    return {r.id: r for r in rows}


async def upsert(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """The customer's facts as an event gave them; an event older than what the model holds
    (a lower version) changes nothing."""
    row = {**values, "updated_at": utcnow()}
    stmt = pg_insert(CUSTOMERS).values(row)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[C.id],
            set_={k: stmt.excluded[k] for k in row if k != "id"},
            where=C.version <= stmt.excluded.version,
        )
    )


async def set_cadences(session: AsyncSession, days: Mapping[str, int]) -> None:
    if not days:
        return
    stmt = pg_insert(CADENCES).values(
        [{"level": level, "days": n, "updated_at": utcnow()} for level, n in days.items()]
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CADENCES.c.level],
            set_={"days": stmt.excluded.days, "updated_at": stmt.excluded.updated_at},
        )
    )


async def cadence_days(session: AsyncSession, level: str) -> int | None:
    stmt = sa.select(CADENCES.c.days).where(CADENCES.c.level == level)
    return (await session.execute(stmt)).scalar_one_or_none()
