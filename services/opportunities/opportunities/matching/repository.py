"""Statements of the customer index: applying the customers feed, finding a lead's customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.matching.models import CUSTOMER_INDEX
from servicekit.bulk import unplanned_text_array

C = CUSTOMER_INDEX.c
_COLUMNS = (C.id, C.code, C.normalized_phone, C.normalized_email, C.normalized_name, C.region)


async def upsert(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert or update one customer; an older version never overwrites a newer one."""
    stmt = pg_insert(CUSTOMER_INDEX).values(values)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[C.id],
        set_={k: excluded[k] for k in values if k != "id"},
        where=C.version <= excluded.version,
    )
    await session.execute(stmt)


async def owner_and_team(session: AsyncSession, customer_id: Any) -> Any:
    """(owner_id, team_id) of an indexed customer, or None."""
    stmt = sa.select(C.owner_id, C.team_id).where(C.id == customer_id)
    return (await session.execute(stmt)).one_or_none()


def _array(values: list[str]) -> sa.ColumnElement[list[str]]:
    # One array parameter per rule, whatever the number of leads in the call.
    return unplanned_text_array(values)


async def candidates(
    session: AsyncSession,
    phones: Sequence[str],
    emails: Sequence[str],
    pairs: Sequence[tuple[str, str]],
) -> list[Any]:
    """Active customers with one of the phones, one of the emails, or one of the names in one
    of the regions: one index-driven branch per rule."""
    active = C.status == "active"
    branches: list[sa.Select[Any]] = []
    if phones:
        branches.append(
            sa.select(*_COLUMNS).where(C.normalized_phone == sa.any_(_array(list(phones))), active)
        )
    if emails:
        branches.append(
            sa.select(*_COLUMNS).where(C.normalized_email == sa.any_(_array(list(emails))), active)
        )
    if pairs:
        # Names and regions as two arrays: the (region, name) index is probed per value, where
        # a join to the unnested pairs hashed the whole index (150 ms at 100,000 customers).
        # Pairs crossed over (one's region, another's name) are dropped by the caller.
        branches.append(
            sa.select(*_COLUMNS).where(
                C.region == sa.any_(_array(list({p[0] for p in pairs}))),
                C.normalized_name == sa.any_(_array(list({p[1] for p in pairs}))),
                active,
            )
        )
    if not branches:
        return []
    stmt = branches[0] if len(branches) == 1 else sa.union(*branches)
    return list((await session.execute(stmt)).all())
