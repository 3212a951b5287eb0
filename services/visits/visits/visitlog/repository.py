"""Statements of the visit log."""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.outbox import outbox_table
from servicekit.pagination import PageParams, keyset
from visits.customer_facts.models import CUSTOMERS
from visits.visitlog.models import LAST_CONTACTS, VISITS

V, CF, LC = VISITS.c, CUSTOMERS.c, LAST_CONTACTS.c


def _with_customer() -> sa.Select[Any]:
    return sa.select(
        VISITS, CF.code.label("customer_code"), CF.name.label("customer_name")
    ).select_from(VISITS.outerjoin(CUSTOMERS, CF.id == V.customer_id))


def _binds(table: sa.Table, prefix: str = "") -> dict[str, sa.BindParameter[Any]]:
    """Every column of `table` as a named parameter (`prefix` + its name)."""
    return {c.name: sa.bindparam(prefix + c.name, type_=c.type) for c in table.c}


# Built once: a statement made per request costs more to build than to run (its cache key is
# generated from every value), so the hot writes bind their values as parameters.
_INSERT = sa.insert(VISITS).values(_binds(VISITS))
_CONTACT_PREFIX = "contact_"
_EVENT_PREFIX = "event_"
_EVENT_COLUMNS = ("id", "type", "source", "subject", "time", "data", "dataversion")


@functools.cache
def _insert_completed(outbox: sa.Table) -> sa.Insert:
    """A completed visit, its customer's last contact and its event: one statement (one round
    trip instead of three), the contact and the event as data-modifying CTEs, which PostgreSQL
    runs whether or not the statement reads them."""
    contact = _contact_upsert(_CONTACT_PREFIX).cte("last_contact")
    binds = _binds(outbox, _EVENT_PREFIX)
    event = sa.insert(outbox).values({k: binds[k] for k in _EVENT_COLUMNS}).cte("event")
    return _INSERT.add_cte(contact, event)


async def insert(session: AsyncSession, values: dict[str, Any]) -> None:
    """A visit checked in (planned): `values` has every column."""
    await session.execute(_INSERT, values)


async def insert_completed(
    session: AsyncSession, values: dict[str, Any], contact: dict[str, Any], event: dict[str, Any]
) -> None:
    """A completed visit (`values`: every column) with its customer's last contact (as
    `contact_values` gives it) and its outbox row (`outbox.event_rows`)."""
    params = {
        **values,
        **{_CONTACT_PREFIX + k: v for k, v in contact.items()},
        **{_EVENT_PREFIX + k: event[k] for k in _EVENT_COLUMNS},
    }
    await session.execute(_insert_completed(outbox_table(session)), params)


async def get(session: AsyncSession, visit_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = _with_customer().where(V.id == visit_id)
    if for_update:
        stmt = stmt.with_for_update(of=VISITS)
    return (await session.execute(stmt)).first()


async def update(session: AsyncSession, visit_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(
        sa.update(VISITS).where(V.id == visit_id).values(version=V.version + 1, **values)
    )


def _contact_upsert(prefix: str = "") -> Any:
    stmt = pg_insert(LAST_CONTACTS).values(_binds(LAST_CONTACTS, prefix))
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


async def record_contact(session: AsyncSession, contact: dict[str, Any]) -> None:
    """A completed visit moves the customer's last contact (and last effective one) forwards
    (`contact`: `contact_values`); a visit logged late for an earlier time moves nothing back."""
    await session.execute(_CONTACT_UPSERT, contact)


def contact_values(
    customer_id: uuid.UUID, visit_id: uuid.UUID, at: datetime, effective: bool, day: date
) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "last_visit_id": visit_id,
        "last_visit_at": at,
        "last_effective_at": at if effective else None,
        "last_effective_on": day if effective else None,
    }


async def list_page(
    session: AsyncSession, where: list[sa.ColumnElement[bool]], page: PageParams
) -> list[Any]:
    """Newest check-in first."""
    stmt = keyset(_with_customer().where(*where), [V.check_in_at, V.id], page, descending=True)
    return list((await session.execute(stmt)).all())
