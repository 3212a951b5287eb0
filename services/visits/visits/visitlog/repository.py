"""Statements of the visit log."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.pagination import PageParams, keyset
from visits.customer_facts.models import CUSTOMERS
from visits.visitlog.models import LAST_CONTACTS, VISITS

V, CF, LC = VISITS.c, CUSTOMERS.c, LAST_CONTACTS.c


def _with_customer() -> sa.Select[Any]:
    return sa.select(
        VISITS, CF.code.label("customer_code"), CF.name.label("customer_name")
    ).select_from(VISITS.outerjoin(CUSTOMERS, CF.id == V.customer_id))


# Built once: a statement made per request costs more to build than to run (its cache key is
# generated from every value), so the hot writes bind their values as parameters.
_INSERT = sa.insert(VISITS).returning(VISITS)


async def insert(session: AsyncSession, values: dict[str, Any]) -> Any:
    """The new row, as stored (defaults included)."""
    return (await session.execute(_INSERT, values)).one()


async def get(session: AsyncSession, visit_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = _with_customer().where(V.id == visit_id)
    if for_update:
        stmt = stmt.with_for_update(of=VISITS)
    return (await session.execute(stmt)).first()


async def update(session: AsyncSession, visit_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(VISITS).where(V.id == visit_id).values(version=V.version + 1, **values)
    )


def _contact_upsert() -> Any:
    stmt = pg_insert(LAST_CONTACTS)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=[LC.customer_id],
        set_={
            "last_visit_id": sa.case(
                (new.last_visit_at >= LC.last_visit_at, new.last_visit_id),
                else_=LC.last_visit_id,
            ),
            "last_visit_at": sa.func.greatest(LC.last_visit_at, new.last_visit_at),
            # GREATEST ignores NULLs: an ineffective visit keeps the last effective one.
            "last_effective_at": sa.func.greatest(LC.last_effective_at, new.last_effective_at),
            "last_effective_on": sa.func.greatest(LC.last_effective_on, new.last_effective_on),
        },
    )


_CONTACT_UPSERT = _contact_upsert()


async def record_contact(
    session: AsyncSession,
    customer_id: uuid.UUID,
    visit_id: uuid.UUID,
    at: datetime,
    effective: bool,
    day: date,
) -> None:
    """A completed visit moves the customer's last contact (and last effective one) forwards;
    a visit logged late for an earlier time moves nothing back."""
    await session.execute(
        _CONTACT_UPSERT,
        {
            "customer_id": customer_id,
            "last_visit_id": visit_id,
            "last_visit_at": at,
            "last_effective_at": at if effective else None,
            "last_effective_on": day if effective else None,
        },
    )


async def list_page(
    session: AsyncSession, where: list[sa.ColumnElement[bool]], page: PageParams
) -> list[Any]:
    """Newest check-in first."""
    stmt = keyset(_with_customer().where(*where), [V.check_in_at, V.id], page, descending=True)
    return list((await session.execute(stmt)).all())
