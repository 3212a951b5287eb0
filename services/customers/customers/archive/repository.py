"""Queries of the archive (reads and the set-based writes); services decide, this fetches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import bulk
from customers.archive.models import CUSTOMERS, HISTORY, LEDGER
from servicekit.db import compile_sql
from servicekit.pagination import PageParams, keyset, make_page

C = CUSTOMERS.c

# The hot read: one row by primary key, compiled once for the raw asyncpg pool.
CUSTOMER_BY_ID = compile_sql(sa.select(CUSTOMERS).where(C.id == sa.bindparam("id")))

SORTS: dict[str, list[sa.ColumnElement[Any]]] = {
    "created_at": [C.created_at, C.id],
    "updated_at": [C.updated_at, C.id],
    "name": [C.name, C.id],
    "code": [C.code],
}


async def insert_customers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await bulk.insert_rows(session, CUSTOMERS, rows)


async def external_ref_owner(
    session: AsyncSession, source: str | None, external_ref: str
) -> uuid.UUID | None:
    stmt = sa.select(C.id).where(
        C.external_ref == external_ref,
        C.source.is_(None) if source is None else C.source == source,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def duplicate_candidates(
    session: AsyncSession,
    *,
    normalized_phone: str | None,
    normalized_email: str | None,
    normalized_name: str | None,
    region: str | None,
    exclude_id: uuid.UUID | None = None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Active customers with the same normalised phone or email, or the same normalised name
    in the same region; each index is used on its own (one OR branch each)."""
    branches: list[sa.ColumnElement[bool]] = []
    if normalized_phone:
        branches.append(C.normalized_phone == normalized_phone)
    if normalized_email:
        branches.append(C.normalized_email == normalized_email)
    if normalized_name and region:
        branches.append(sa.and_(C.region == region, C.normalized_name == normalized_name))
    if not branches:
        return []
    stmt = (
        sa.select(
            C.id,
            C.code,
            C.name,
            C.region,
            C.owner_id,
            C.normalized_phone,
            C.normalized_email,
            C.normalized_name,
        )
        .where(sa.or_(*branches), C.status == "active")
        .order_by(C.created_at)
        .limit(limit)
    )
    if exclude_id is not None:
        stmt = stmt.where(C.id != exclude_id)
    out = []
    for r in await session.execute(stmt):
        matched = []
        if normalized_phone and r.normalized_phone == normalized_phone:
            matched.append("phone")
        if normalized_email and r.normalized_email == normalized_email:
            matched.append("email")
        if normalized_name and r.normalized_name == normalized_name and r.region == region:
            matched.append("name")
        out.append(
            {
                "id": str(r.id),
                "code": r.code,
                "name": r.name,
                "region": r.region,
                "owner_id": None if r.owner_id is None else str(r.owner_id),
                "matched_on": matched,
            }
        )
    return out


async def list_customers(
    session: AsyncSession,
    where: Sequence[sa.ColumnElement[bool]],
    page: PageParams,
    sort: str,
    descending: bool,
) -> tuple[list[Any], str | None]:
    columns = SORTS[sort]
    stmt = keyset(sa.select(CUSTOMERS).where(*where), columns, page, descending=descending)
    rows = (await session.execute(stmt)).all()
    return make_page(rows, page, lambda r: [getattr(r, str(c.key)) for c in columns])


async def history_page(
    session: AsyncSession, customer_id: uuid.UUID, page: PageParams
) -> tuple[list[Any], str | None]:
    stmt = keyset(
        sa.select(HISTORY).where(HISTORY.c.customer_id == customer_id),
        [HISTORY.c.id],
        page,
        descending=True,
    )
    rows = (await session.execute(stmt)).all()
    return make_page(rows, page, lambda r: [r.id])


async def ledger(session: AsyncSession, customer_id: uuid.UUID) -> list[Any]:
    stmt = (
        sa.select(LEDGER)
        .where(LEDGER.c.customer_id == customer_id)
        .order_by(LEDGER.c.started_at, LEDGER.c.id)
    )
    return list((await session.execute(stmt)).all())


async def claims_since(session: AsyncSession, owner_id: uuid.UUID, since: datetime) -> int:
    stmt = sa.select(sa.func.count()).where(
        LEDGER.c.owner_id == owner_id, LEDGER.c.kind == "claimed", LEDGER.c.started_at >= since
    )
    return int((await session.execute(stmt)).scalar_one())


async def held_by(session: AsyncSession, owner_id: uuid.UUID) -> int:
    stmt = sa.select(sa.func.count()).where(C.owner_id == owner_id, C.status == "active")
    return int((await session.execute(stmt)).scalar_one())
