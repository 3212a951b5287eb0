"""The rules of the daily visit plan: one per rep per day, items on that day without
overlaps and only for customers the rep may see; draft -> submitted -> approved | returned
(-> edited and submitted again); only the rep edits and submits, only a manager over the rep's
team (or an admin) decides; an approved plan is frozen."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.ids import new_id
from servicekit.outbox import record_event
from servicekit.pagination import PageParams, make_page
from visits import calendar
from visits.access import (
    acting_rep,
    decision,
    rep_clause,
    rep_name,
    require_read,
    require_user,
    visible,
)
from visits.config import Settings
from visits.customer_facts.service import visible_customers
from visits.models import directory
from visits.plans import events, repository
from visits.plans.exceptions import PlanExists, PlanNotFound, WrongPlanState
from visits.plans.models import PLANS
from visits.plans.schemas import (
    PlanCreate,
    PlanItemInput,
    PlanItemRead,
    PlanListQuery,
    PlanRead,
    PlanUpdate,
)
from visits.schemas import row_fields

EDITABLE = ("draft", "returned")


def _invalid(path: str, msg: str) -> ValidationFailed:
    return ValidationFailed.field(path, msg)


async def _checked_items(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    plan_date: date,
    items: Sequence[PlanItemInput],
    known_ids: set[uuid.UUID],
) -> list[dict[str, Any]]:
    """The rows of `items`, or a 422 naming the first bad one: each on the plan's day (company
    time), start before end, no two overlapping, ids only of the plan's own items, customers
    the caller may see."""
    first, last = calendar.day_bounds(plan_date, settings.zone)
    seen: set[uuid.UUID] = set()
    for n, item in enumerate(items):
        if item.slot_end <= item.slot_start:
            raise _invalid(f"items.{n}.slot_end", "must be after slot_start")
        if item.slot_start < first or item.slot_end > last:
            raise _invalid(
                f"items.{n}.slot_start",
                f"the slot must fall on the plan's day {plan_date} ({settings.time_zone})",
            )
        if item.id is not None:
            if item.id in seen:
                raise _invalid(f"items.{n}.id", "appears twice")
            if item.id not in known_ids:
                raise _invalid(f"items.{n}.id", "not an item of this plan")
            seen.add(item.id)
    order = sorted(range(len(items)), key=lambda k: items[k].slot_start)
    for before, after in itertools.pairwise(order):
        if items[after].slot_start < items[before].slot_end:
            raise _invalid(f"items.{after}.slot_start", f"overlaps item {before}'s slot")
    await visible_customers(
        session, principal, ((f"items.{n}.customer_id", i.customer_id) for n, i in enumerate(items))
    )
    return [
        {
            "id": item.id or new_id(),
            "customer_id": item.customer_id,
            "slot_start": item.slot_start,
            "slot_end": item.slot_end,
            "purpose": item.purpose,
            "note": item.note,
        }
        for item in items
    ]


async def read(session: AsyncSession, plan: Any) -> PlanRead:
    items = (await repository.items_of(session, [plan.id]))[plan.id]
    return _read(plan, items)


def _read(plan: Any, items: Sequence[Any]) -> PlanRead:
    return PlanRead(
        **row_fields(plan, PlanRead),
        items=[PlanItemRead.model_validate(i) for i in items],
    )


async def visible_plan(
    session: AsyncSession, principal: Principal, plan_id: uuid.UUID, *, for_update: bool = False
) -> Any:
    """The plan, or 404 when it does not exist or is another rep's the caller may not see."""
    require_read(principal)
    plan = await repository.get_plan(session, plan_id, for_update=for_update)
    return await visible(session, principal, plan, lambda: PlanNotFound(plan_id))


async def create(
    session: AsyncSession, principal: Principal, settings: Settings, body: PlanCreate
) -> PlanRead:
    require_user(principal, "planning a day")
    rep = await acting_rep(session, principal, None)
    existing = await repository.find_plan_id(session, rep.id, body.plan_date)
    if existing is not None:
        raise PlanExists(existing)
    now = utcnow()
    plan: dict[str, Any] = {
        "id": new_id(),
        "rep_id": rep.id,
        "team_id": rep.team_id,
        "plan_date": body.plan_date,
        "area": body.area,
        "status": "draft",
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    rows = await _checked_items(session, principal, settings, body.plan_date, body.items, set())
    try:
        await repository.insert_plan(session, plan)
    except IntegrityError:
        raise PlanExists(None) from None  # the same day, created at the same moment
    await repository.replace_items(session, plan["id"], rows)
    created = await repository.get_plan(session, plan["id"])
    return await read(session, created)


def _own(principal: Principal, plan: Any, what: str) -> None:
    if plan.rep_id != principal.user_id:
        raise Forbidden(f"only the rep {what} their plan")


async def update(
    session: AsyncSession, principal: Principal, settings: Settings, plan: Any, body: PlanUpdate
) -> PlanRead:
    require_user(principal, "editing a plan")
    _own(principal, plan, "edits")
    if plan.status not in EDITABLE:
        raise WrongPlanState(f"a {plan.status} plan cannot be edited")
    change = body.model_dump(exclude_unset=True)
    values: dict[str, Any] = {"updated_at": utcnow()}
    if "area" in change:
        values["area"] = body.area
    if body.items is not None:
        known = {i.id for i in (await repository.items_of(session, [plan.id]))[plan.id]}
        rows = await _checked_items(session, principal, settings, plan.plan_date, body.items, known)
        await repository.replace_items(session, plan.id, rows)
    elif "items" in change:
        raise _invalid("items", "must be a list (send [] to empty the plan)")
    await repository.update_plan(session, plan.id, values)
    return await read(session, await repository.get_plan(session, plan.id))


async def submit(session: AsyncSession, principal: Principal, plan: Any) -> PlanRead:
    require_user(principal, "submitting a plan")
    _own(principal, plan, "submits")
    if plan.status not in EDITABLE:
        raise WrongPlanState(f"a {plan.status} plan cannot be submitted")
    current = await read(session, plan)
    if not current.items:
        raise _invalid("items", "a plan needs at least one item to be submitted")
    await repository.update_plan(
        session,
        plan.id,
        {
            "status": "submitted",
            "submitted_at": utcnow(),
            "updated_at": utcnow(),
            "comment": None,
            "decided_at": None,
            "decided_by": None,
        },
    )
    result = await read(session, await repository.get_plan(session, plan.id))
    supervisor = await directory.manager_of(session, plan.rep_id)
    await record_event(
        session,
        events.PLAN_SUBMITTED,
        plan.id,
        events.submitted(result, principal.name, supervisor.id if supervisor else None),
    )
    return result


async def decide(
    session: AsyncSession, principal: Principal, plan: Any, *, approve: bool, comment: str | None
) -> PlanRead:
    values = await decision(
        session,
        principal,
        plan,
        what="plan",
        status="approved" if approve else "returned",
        comment=comment,
        wrong_state=WrongPlanState,
    )
    await repository.update_plan(session, plan.id, values)
    result = await read(session, await repository.get_plan(session, plan.id))
    await record_event(
        session,
        events.PLAN_APPROVED if approve else events.PLAN_RETURNED,
        plan.id,
        events.decided(result, await rep_name(session, principal, plan.rep_id)),
    )
    return result


async def list_plans(
    session: AsyncSession, principal: Principal, query: PlanListQuery, page: PageParams
) -> tuple[list[PlanRead], str | None]:
    require_read(principal)
    P = PLANS.c
    where = [rep_clause(principal, P.rep_id)]
    if query.rep_id is not None:
        where.append(P.rep_id == query.rep_id)
    if query.from_ is not None:
        where.append(P.plan_date >= query.from_)
    if query.to is not None:
        where.append(P.plan_date <= query.to)
    if query.status is not None:
        where.append(P.status == query.status)
    rows = await repository.list_page(session, where, page)
    plans, cursor = make_page(rows, page, lambda r: [r.plan_date, r.id])
    items = await repository.items_of(session, [p.id for p in plans])
    return [_read(p, items[p.id]) for p in plans], cursor
