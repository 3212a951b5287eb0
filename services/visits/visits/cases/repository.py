"""Statements of the market reports and complaints."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import PageParams, keyset
from visits.cases.models import CASE_CHANGES, CASES
from visits.customer_facts.models import CUSTOMERS

K, CH, CF = CASES.c, CASE_CHANGES.c, CUSTOMERS.c


def _with_customer() -> sa.Select[Any]:
    return sa.select(
        CASES, CF.code.label("customer_code"), CF.name.label("customer_name")
    ).select_from(CASES.outerjoin(CUSTOMERS, CF.id == K.customer_id))


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(CASES).values(values))


async def get(
    session: AsyncSession, kind: str, case_id: uuid.UUID, *, for_update: bool = False
) -> Any:
    stmt = _with_customer().where(K.id == case_id, K.kind == kind)
    if for_update:
        stmt = stmt.with_for_update(of=CASES)
    return (await session.execute(stmt)).first()


async def update(session: AsyncSession, case_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(CASES).where(K.id == case_id).values(version=K.version + 1, **values)
    )


async def add_change(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(CASE_CHANGES).values(values))


async def changes_page(session: AsyncSession, case_id: uuid.UUID, page: PageParams) -> list[Any]:
    stmt = sa.select(CASE_CHANGES).where(CH.case_id == case_id)
    return list((await session.execute(keyset(stmt, [CH.id], page))).all())


async def list_page(
    session: AsyncSession, where: list[sa.ColumnElement[bool]], page: PageParams
) -> list[Any]:
    """Newest first."""
    stmt = keyset(_with_customer().where(*where), [K.created_at, K.id], page, descending=True)
    return list((await session.execute(stmt)).all())
