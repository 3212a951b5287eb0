"""Statements of the leads and their assignment log."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.leads.access import READ_SCOPE
from opportunities.leads.models import HELD, LEAD_ASSIGNMENTS, LEADS
from opportunities.leads.schemas import LeadListQuery
from servicekit import bulk
from servicekit.auth import Principal
from servicekit.outbox import prepared_events
from servicekit.pagination import PageParams, keyset, make_page

L = LEADS.c
TEXT_ARRAY: Any = ARRAY(sa.Text)
# A lead's steps: what scoring, routing, placement and its later moves fill in (empty on a
# lead just received).
STEPS = (
    "score",
    "qualified",
    "model_id",
    "challenger_model_id",
    "challenger_score",
    "challenger_qualified",
    "customer_id",
    "owner_id",
    "team_id",
    "rule_id",
    "next_touch_on",
    "invalid_reason",
    "invalid_note",
    "opportunity_id",
    "qualified_at",
    "nurtured_at",
    "assigned_at",
    "contacted_at",
    "converted_at",
    "invalidated_at",
)
# What a user's change or a re-push may change, and what it compares.
CONTENT = (
    "company",
    "contact_name",
    "phone",
    "email",
    "region",
    "industry",
    "need",
    "evaluation",
    "attributes",
)
# What a change of a lead may write (everything but its identity and receipt).
MUTABLE = (*CONTENT, "status", *STEPS, "version", "updated_at")
_UPDATE = (
    sa.update(LEADS)
    .where(L.id == sa.bindparam("_id"))
    .values({name: sa.bindparam(name) for name in MUTABLE})
)


def visibility_filter(principal: Principal) -> sa.ColumnElement[bool]:
    """`access.can_see` as the WHERE clause of a list."""
    if principal.kind == "key":
        return sa.true() if principal.has_scope(READ_SCOPE) else sa.false()
    if principal.is_admin:
        return sa.true()
    own = L.owner_id == principal.user_id if principal.user_id else sa.false()
    if principal.is_rep:
        return own
    if principal.is_manager:
        clauses = [own, L.team_id.is_(None)]
        teams = principal.team_uuids()
        if teams:
            clauses.append(L.team_id.in_(teams))
        return sa.or_(*clauses)
    return sa.false()


async def lock_sources(session: AsyncSession, sources: Collection[str]) -> None:
    """Intakes of one source take turns (in source order, so two never deadlock): the leads
    a call finds missing cannot be created by another call before it inserts them, so the
    same lead pushed concurrently is still one lead, and COPY needs no conflict handling.
    One statement for all of them: the locks are taken in the order of the array."""
    if not sources:
        return
    source = sa.func.unnest(sa.cast(sa.bindparam("sources", sorted(set(sources))), TEXT_ARRAY))
    wanted = sa.select(source.label("source")).subquery()
    key = sa.func.hashtext(sa.literal("opportunities.leads:", sa.Text) + wanted.c.source)
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)).select_from(wanted))


async def by_keys(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> list[Any]:
    """The leads holding these (source, external_id) pairs, locked, in id order."""
    if not keys:
        return []
    wanted = sa.select(
        sa.func.unnest(bulk.text_array(list(map(itemgetter(0), keys)))),
        sa.func.unnest(bulk.text_array(list(map(itemgetter(1), keys)))),
    )
    stmt = (
        sa.select(LEADS)
        .where(L.external_id.is_not(None), sa.tuple_(L.source, L.external_id).in_(wanted))
        .order_by(L.id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).all())


async def get(session: AsyncSession, lead_id: uuid.UUID, *, for_update: bool = False) -> Any:
    stmt = sa.select(LEADS).where(L.id == lead_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def update(session: AsyncSession, leads: Sequence[dict[str, Any]]) -> None:
    """Write the mutable columns of each lead (one executemany)."""
    if leads:
        await session.execute(
            _UPDATE, [{"_id": lead["id"], **{n: lead[n] for n in MUTABLE}} for lead in leads]
        )


async def write(
    session: AsyncSession,
    created: Iterable[Sequence[dict[str, Any]]],
    changed: Sequence[dict[str, Any]],
    assignments: Sequence[dict[str, Any]],
    events: Callable[[], Sequence[tuple[str, Any, dict[str, Any]]]],
    *,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """A request's changes: the new leads (`created`, in parts, each made as it is asked for:
    `bulk.streaming`), the changed ones, the assignment log (complete once the last part is
    made) and the events (`events()` lists them). PostgreSQL stores the new leads while they
    are made and the log and the events are made ready, and the events while `meanwhile` runs
    (the caller's own work: its answer, letting go of what it made): a large intake's Python
    work and PostgreSQL's overlap instead of taking turns. A handful of rows go the same way,
    in the same order."""
    async with bulk.streaming(session, LEADS, created):
        log = bulk.prepare(LEAD_ASSIGNMENTS, assignments)
        outbox = prepared_events(session, events())
    await update(session, changed)
    await bulk.write(session, log)
    async with bulk.writing(session, outbox):
        if meanwhile is not None:
            meanwhile()


async def assignments(
    session: AsyncSession, lead_id: uuid.UUID, params: PageParams
) -> tuple[list[Any], str | None]:
    a = LEAD_ASSIGNMENTS.c
    stmt = sa.select(LEAD_ASSIGNMENTS).where(a.lead_id == lead_id)
    rows = (await session.execute(keyset(stmt, [a.id], params))).all()
    return make_page(rows, params, lambda r: [r.id])


async def page(
    session: AsyncSession, principal: Principal, query: LeadListQuery
) -> tuple[list[Any], str | None]:
    """Newest received first; each filter narrows on an indexed column."""
    stmt = sa.select(LEADS).where(visibility_filter(principal))
    if query.status is not None:
        stmt = stmt.where(L.status == query.status)
    if query.source is not None:
        stmt = stmt.where(L.source == query.source)
    if query.owner_id is not None:
        stmt = stmt.where(L.owner_id == query.owner_id)
    if query.team_id is not None:
        stmt = stmt.where(L.team_id == query.team_id)
    if query.queue is not None:
        waiting = sa.and_(L.status == "qualified", L.owner_id.is_(None))
        stmt = stmt.where(waiting if query.queue else sa.not_(waiting))
    if query.customer_id is not None:
        stmt = stmt.where(L.customer_id == query.customer_id)
    if query.touch_due_by is not None:
        stmt = stmt.where(L.status == "nurturing", L.next_touch_on <= query.touch_due_by)
    if query.received_from is not None:
        stmt = stmt.where(L.received_at >= query.received_from)
    if query.received_to is not None:
        stmt = stmt.where(L.received_at < query.received_to)
    params = PageParams(query.limit, query.cursor)
    rows = (
        await session.execute(keyset(stmt, [L.received_at, L.id], params, descending=True))
    ).all()
    return make_page(rows, params, lambda r: [r.received_at, r.id])


async def assigned_to_customer(
    session: AsyncSession, customer_id: uuid.UUID, owner_id: uuid.UUID | None
) -> list[Any]:
    """Assigned (not yet contacted) leads of a customer, of one rep when given; locked."""
    stmt = (
        sa.select(LEADS)
        .where(L.customer_id == customer_id, L.status == "assigned")
        .order_by(L.id)
        .with_for_update()
    )
    if owner_id is not None:
        stmt = stmt.where(L.owner_id == owner_id)
    return list((await session.execute(stmt)).all())


async def held_by(session: AsyncSession, owner_id: uuid.UUID) -> list[Any]:
    """The open leads a rep holds (assigned or contacted), oldest first; locked."""
    stmt = (
        sa.select(LEADS)
        .where(L.owner_id == owner_id, HELD)
        .order_by(L.received_at, L.id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).all())
