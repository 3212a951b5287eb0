"""The rules of market reports and complaints: raised from a visit or on their own (a
complaint is always about a customer), tracked open -> in_progress -> resolved -> closed,
reopened when needed; every change kept with who and when; a critical complaint's event is
written with its creation, so a follower of the feed learns of it with the same commit."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import ValidationFailed
from servicekit.ids import new_id
from servicekit.outbox import record_event
from servicekit.pagination import PageParams, make_page
from visits import calendar
from visits.access import (
    Rep,
    acting_rep,
    rep_clause,
    rep_name,
    require_read,
    require_write,
    sees_rep,
    visible,
)
from visits.cases import events, repository
from visits.cases.exceptions import CaseNotFound, WrongCaseState
from visits.cases.models import CASES
from visits.cases.schemas import CaseCreate, CaseListQuery, CaseRead
from visits.config import Settings
from visits.customer_facts import repository as customers
from visits.customer_facts.service import visible_customer
from visits.schemas import row_fields
from visits.visitlog import repository as visit_log


@dataclass(frozen=True)
class Kind:
    """One kind of case: its name in the table, in messages and in its events."""

    name: str  # "complaint" | "market"
    noun: str
    raised: str
    resolved: str | None = None
    closed: str | None = None
    reopened: str | None = None


COMPLAINT = Kind(
    "complaint",
    "complaint",
    events.COMPLAINT_RAISED,
    events.COMPLAINT_RESOLVED,
    events.COMPLAINT_CLOSED,
    events.COMPLAINT_REOPENED,
)
MARKET = Kind("market", "market report", events.MARKET_REPORT_RAISED)

# Transitions: action -> (states it starts from, state it leads to).
TRANSITIONS = {
    "start": (("open",), "in_progress"),
    "resolve": (("open", "in_progress"), "resolved"),
    "close": (("resolved",), "closed"),
    "reopen": (("resolved", "closed"), "open"),
}


def read(row: Any) -> CaseRead:
    now = utcnow()
    end = row.closed_at or now
    resolution = row.resolved_at
    fields = row_fields(row, CaseRead)
    return CaseRead(
        **fields,
        age_seconds=max(0, int((end - row.created_at).total_seconds())),
        time_to_resolution_seconds=None
        if resolution is None
        else max(0, int((resolution - row.created_at).total_seconds())),
    )


async def visible_case(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    case_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Any:
    require_read(principal)
    row = await repository.get(session, kind.name, case_id, for_update=for_update)
    return await visible(session, principal, row, lambda: CaseNotFound(kind.noun, case_id))


async def _whose(
    session: AsyncSession, principal: Principal, body: CaseCreate, customer: Any
) -> Rep:
    if body.rep_id is None and principal.kind == "key" and customer is not None:
        if customer.owner_id is None:
            raise ValidationFailed.field("rep_id", "the customer is in the pool: name the rep")
        return await acting_rep(session, principal, customer.owner_id)
    return await acting_rep(session, principal, body.rep_id)


async def raise_case(
    session: AsyncSession, principal: Principal, settings: Settings, kind: Kind, body: CaseCreate
) -> CaseRead:
    require_write(principal)
    customer_id = body.customer_id
    if body.visit_id is not None:
        visit = await visit_log.get(session, body.visit_id)
        if visit is None or not await sees_rep(session, principal, visit.rep_id):
            raise ValidationFailed.field("visit_id", f"no visit {body.visit_id} that you may see")
        if customer_id is None:
            customer_id = visit.customer_id
    customer = None
    if customer_id is not None:
        customer = await visible_customer(session, principal, customer_id, "customer_id")
    elif kind is COMPLAINT:
        raise ValidationFailed.field("customer_id", "a complaint is about a customer")
    rep = await _whose(session, principal, body, customer)
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id(),
        "kind": kind.name,
        "rep_id": rep.id,
        "team_id": rep.team_id,
        "visit_id": body.visit_id,
        "customer_id": customer_id,
        "category": body.category,
        "severity": body.severity,
        "description": body.description,
        "status": "open",
        "raised_by": principal.sub,
        "raised_on": calendar.local_date(now, settings.zone),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    await repository.insert(session, values)
    await repository.add_change(
        session,
        {
            "case_id": values["id"],
            "at": now,
            "actor_id": principal.sub,
            "from_status": None,
            "to_status": "open",
            "note": None,
        },
    )
    case = read(await repository.get(session, kind.name, values["id"]))
    await record_event(session, kind.raised, case.id, events.case_facts(case, customer, rep.name))
    return case


async def transition(
    session: AsyncSession,
    principal: Principal,
    kind: Kind,
    row: Any,
    action: str,
    note: str | None,
) -> CaseRead:
    """Move the case (the caller sees it: its rep, their managers, admins, keys); `note` is the
    resolution for "resolve" and the reason for "reopen"."""
    require_write(principal)
    sources, target = TRANSITIONS[action]
    if row.status not in sources:
        raise WrongCaseState(f"{action}: not possible for a {row.status} {kind.noun}")
    now = utcnow()
    values: dict[str, Any] = {"status": target, "updated_at": now}
    if action == "resolve":
        values.update(resolution=note, resolved_by=principal.sub, resolved_at=now)
    elif action == "close":
        values.update(closed_by=principal.sub, closed_at=now)
    elif action == "reopen":
        values.update(
            resolution=None,
            resolved_by=None,
            resolved_at=None,
            closed_by=None,
            closed_at=None,
            reopen_count=CASES.c.reopen_count + 1,
        )
    await repository.update(session, row.id, values)
    await repository.add_change(
        session,
        {
            "case_id": row.id,
            "at": now,
            "actor_id": principal.sub,
            "from_status": row.status,
            "to_status": target,
            "note": note,
        },
    )
    case = read(await repository.get(session, kind.name, row.id))
    event = {"resolve": kind.resolved, "close": kind.closed, "reopen": kind.reopened}.get(action)
    if event is not None:
        customer = await customers.get(session, row.customer_id) if row.customer_id else None
        name = await rep_name(session, principal, row.rep_id)
        if action == "resolve":
            data = events.resolved(case, customer, name)
        elif action == "close":
            data = events.closed(case, customer, name)
        else:
            data = events.reopened(case, customer, name, note or "", principal.sub)
        await record_event(session, event, case.id, data)
    return case


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    kind: Kind,
    query: CaseListQuery,
    page: PageParams,
) -> tuple[list[CaseRead], str | None]:
    require_read(principal)
    K = CASES.c
    where: list[sa.ColumnElement[bool]] = [K.kind == kind.name, rep_clause(principal, K.rep_id)]
    for column, value in (
        (K.rep_id, query.rep_id),
        (K.customer_id, query.customer_id),
        (K.status, query.status),
        (K.severity, query.severity),
    ):
        if value is not None:
            where.append(column == value)
    if query.from_ is not None:
        where.append(K.created_at >= calendar.day_start(query.from_, settings.zone))
    if query.to is not None:
        where.append(K.created_at < calendar.day_bounds(query.to, settings.zone)[1])
    rows = await repository.list_page(session, where, page)
    items, cursor = make_page(rows, page, lambda r: [r.created_at, r.id])
    return [read(r) for r in items], cursor
