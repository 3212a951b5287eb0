"""The follow-up list as one statement: a rep's (or teams') active customers with their last
contact and their level's cadence, A first, then the most overdue."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import PageParams, keyset
from visits.customer_facts.models import CADENCES, CUSTOMERS
from visits.visitlog.models import LAST_CONTACTS

C, CAD, LC = CUSTOMERS.c, CADENCES.c, LAST_CONTACTS.c
# Never visited sorts first among its level: due since the beginning of time.
NEVER = date(1, 1, 1)
_due = sa.cast(LC.last_effective_on + CAD.days, sa.Date)
DUE_KEY = sa.func.coalesce(_due, sa.literal(NEVER, sa.Date)).label("due_key")


async def due_page(
    session: AsyncSession, where: list[sa.ColumnElement[bool]], due_before: date, page: PageParams
) -> list[Any]:
    stmt = (
        sa.select(
            C.id,
            C.code,
            C.name,
            C.level,
            C.region,
            C.owner_id,
            C.team_id,
            CAD.days.label("cadence_days"),
            LC.last_visit_at,
            LC.last_effective_on,
            _due.label("due_on"),
            DUE_KEY,
        )
        .select_from(
            CUSTOMERS.join(CADENCES, CAD.level == C.level).outerjoin(
                LAST_CONTACTS, LC.customer_id == C.id
            )
        )
        .where(C.status == "active", sa.or_(_due.is_(None), _due < due_before), *where)
    )
    keyed = keyset(stmt, [C.level, DUE_KEY, C.id], page)
    return list((await session.execute(keyed)).all())
