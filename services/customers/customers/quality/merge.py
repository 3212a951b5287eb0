"""Fold a duplicate into the customer that survives.

Contacts, orders and payments move to the survivor; the survivor takes the fields it lacks
from the duplicate; the duplicate keeps its own history, becomes `merged` and points at the
survivor. Both rows are locked in id order, the same order every merge uses, so two merges of
the same pair cannot deadlock, and payments lock the customer before the order, so a payment
and a merge cannot either.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import events as archive_events
from customers.archive.access import can_change
from customers.archive.history import record_change
from customers.archive.models import Customer
from customers.archive.normalize import normalize_email, normalize_phone
from customers.archive.service import get_visible_customer
from customers.commerce.models import CONTACTS, ORDERS, PAYMENTS
from customers.quality.schemas import MergeResult
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Conflict, Forbidden, ValidationFailed
from servicekit.outbox import record_event

# Fields a survivor without a value takes from the duplicate.
FILLABLE = ("industry", "address", "phone", "email", "source", "estimated_potential")
_NORMALIZED = {
    "phone": ("normalized_phone", normalize_phone),
    "email": ("normalized_email", normalize_email),
}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


async def merge_customers(
    session: AsyncSession, principal: Principal, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> MergeResult:
    if survivor_id == duplicate_id:
        raise ValidationFailed.field("duplicate_id", "is the customer itself")
    if principal.kind == "key":
        raise Forbidden("merging customers is a decision for a person, not an integration")
    locked: dict[uuid.UUID, Customer] = {}
    for cid in sorted((survivor_id, duplicate_id)):
        locked[cid] = await get_visible_customer(session, principal, cid, for_update=True)
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    # Merging touches two records: the caller must be able to change both (a rep their own).
    if not principal.is_admin:
        for c in (survivor, duplicate):
            if not can_change(principal, c):
                raise Forbidden(f"you may read customer {c.code} but not change it")
    for c, path in ((survivor, "id"), (duplicate, "duplicate_id")):
        if c.status == "merged":
            raise Conflict(
                f"customer {c.code} was already merged into {c.merged_into_id}",
                field=path,
                merged_into_id=str(c.merged_into_id),
            )

    moved_contacts = await _move_contacts(session, survivor_id, duplicate_id)
    moved_orders = _rowcount(
        await session.execute(
            sa.update(ORDERS)
            .where(ORDERS.c.customer_id == duplicate_id)
            .values(customer_id=survivor_id)
        )
    )
    moved_payments = _rowcount(
        await session.execute(
            sa.update(PAYMENTS)
            .where(PAYMENTS.c.customer_id == duplicate_id)
            .values(customer_id=survivor_id)
        )
    )

    now = utcnow()
    filled: dict[str, tuple[Any, Any]] = {}
    for field in FILLABLE:
        mine, theirs = getattr(survivor, field), getattr(duplicate, field)
        if _empty(mine) and not _empty(theirs):
            filled[field] = (mine, theirs)
            setattr(survivor, field, theirs)
            if field in _NORMALIZED:
                column, fn = _NORMALIZED[field]
                setattr(survivor, column, fn(theirs))
    new_tags = [t for t in duplicate.tags if t not in survivor.tags]
    if new_tags:
        filled["tags"] = (list(survivor.tags), [*survivor.tags, *new_tags])
        survivor.tags = [*survivor.tags, *new_tags]
    survivor.version += 1
    survivor.updated_at = now
    survivor.updated_by = principal.sub
    # `merged_from` is not a field of the record, so an as-of replay skips it; the entry still
    # shows in the history, at the version it took.
    await record_change(
        session,
        survivor,
        principal,
        {**filled, "merged_from": (None, duplicate.code)},
        action="merged",
        comment=f"merged {duplicate.code} into this customer",
    )

    old_status = duplicate.status
    duplicate.status = "merged"
    duplicate.merged_into_id = survivor.id
    duplicate.version += 1
    duplicate.updated_at = now
    duplicate.updated_by = principal.sub
    await record_change(
        session,
        duplicate,
        principal,
        {"status": (old_status, "merged"), "merged_into_id": (None, survivor.id)},
        action="merged",
        comment=f"merged into {survivor.code}",
    )
    await session.flush()

    result = MergeResult(
        survivor_id=survivor.id,
        duplicate_id=duplicate.id,
        contacts_moved=moved_contacts,
        orders_moved=moved_orders,
        payments_moved=moved_payments,
        filled_fields=sorted(f for f in filled if f != "merged_from"),
        version=survivor.version,
    )
    data = archive_events.merged(duplicate, survivor, principal.sub)
    data.update(
        survivor=archive_events.customer_facts(survivor),
        contacts_moved=moved_contacts,
        orders_moved=moved_orders,
        payments_moved=moved_payments,
        filled_fields=result.filled_fields,
    )
    await record_event(session, archive_events.CUSTOMER_MERGED, duplicate.id, data)
    return result


async def _move_contacts(
    session: AsyncSession, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> int:
    survivor_has_primary = await session.scalar(
        sa.select(sa.exists().where(CONTACTS.c.customer_id == survivor_id, CONTACTS.c.is_primary))
    )
    values: dict[str, Any] = {"customer_id": survivor_id, "updated_at": utcnow()}
    if survivor_has_primary:
        # The survivor's primary contact stays the primary one.
        values["is_primary"] = False
    result = await session.execute(
        sa.update(CONTACTS).where(CONTACTS.c.customer_id == duplicate_id).values(**values)
    )
    return _rowcount(result)


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)
