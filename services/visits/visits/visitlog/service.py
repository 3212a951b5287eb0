"""The rules of the visit log.

A visit is about a customer the caller may see; it is checked in (never in the future), and
either logged whole (`completed`) or checked in first (`planned`) and completed or cancelled
later; only completed visits count anywhere, and a completed visit is final. A visit may fulfil
one item of the rep's approved plan of that day, once. A check-in location records the
distance to the customer's point and flags a far one; it never refuses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.ids import new_id
from servicekit.outbox import event_rows, record_event
from servicekit.pagination import PageParams, make_page
from servicekit.routing import lone_statement
from visits import calendar
from visits.access import (
    acting_rep,
    may_write_for,
    rep_clause,
    rep_name,
    require_read,
    require_write,
    sees_rep,
    visible,
)
from visits.config import Settings
from visits.customer_facts import repository as customers
from visits.customer_facts.access import see_params
from visits.customer_facts.exceptions import UnknownCustomer
from visits.customer_facts.service import visible_customer
from visits.geo import haversine_m
from visits.plans import repository as plans
from visits.schemas import cents
from visits.visitlog import events, repository
from visits.visitlog.exceptions import PlanItemTaken, VisitNotFound, WrongVisitState
from visits.visitlog.models import VISITS
from visits.visitlog.schemas import (
    LocationRead,
    VisitCreate,
    VisitListQuery,
    VisitOutcome,
    VisitRead,
    VisitUpdate,
)

# Zero at the scale money is answered with ("0.00").
NO_MONEY = Decimal("0.00")
_OUTCOME_COLUMNS = (
    "contact_id",
    "check_out_at",
    "effective",
    "order_taken",
    "order_amount",
    "collected_amount",
    "memo",
    "next_step",
    "next_visit_on",
    "competitor_news",
    "customer_feedback",
)


def read(row: Any) -> VisitRead:
    """The visit of a row (with the customer's code and name joined)."""
    return _visit(row._mapping)


_ANSWERED = tuple(VisitRead.model_fields)


def answer(row: Any) -> dict[str, Any]:
    """A row (with the customer's code and name joined) as `VisitRead` answers it, field for
    field, without building the model: a list answers fifty of them, and validating and
    dumping each cost more than reading the page (`json_response` writes the values the way
    the model dumps them)."""
    return _answer(row._mapping)


def _answer(columns: Mapping[str, Any]) -> dict[str, Any]:
    """A visit's columns (a row's, or those a new visit was written with, with its customer's
    code and name) as `VisitRead` answers them."""
    lat, lon = columns["check_in_lat"], columns["check_in_lon"]
    nested: dict[str, Any] = {
        "check_in_location": None,
        # In the model's order: jsonb keeps an object's keys in an order of its own.
        "expenses": [
            {"category": e["category"], "amount": e["amount"]} for e in columns["expenses"]
        ],
    }
    if lat is not None and lon is not None:
        nested["check_in_location"] = {
            "lat": lat,
            "lon": lon,
            "accuracy_m": columns["check_in_accuracy_m"],
        }
    return {name: nested[name] if name in nested else columns[name] for name in _ANSWERED}


def _visit(columns: Mapping[str, Any], **extra: Any) -> VisitRead:
    """The visit of its columns (a row's, or those about to be inserted), `extra` added."""
    fields = {k: columns[k] for k in VisitRead.model_fields if k in columns} | extra
    location = None
    lat, lon = columns["check_in_lat"], columns["check_in_lon"]
    if lat is not None and lon is not None:
        location = LocationRead(lat=lat, lon=lon, accuracy_m=columns["check_in_accuracy_m"])
    return VisitRead(
        **{**fields, "check_in_location": location, "expenses": columns["expenses"] or []}
    )


async def visible_visit(
    session: AsyncSession, principal: Principal, visit_id: uuid.UUID, *, for_update: bool = False
) -> Any:
    require_read(principal)
    row = await repository.get(session, visit_id, for_update=for_update)
    return await visible(session, principal, row, lambda: VisitNotFound(visit_id))


def _invalid(path: str, msg: str) -> ValidationFailed:
    return ValidationFailed.field(path, msg)


def _check_times(settings: Settings, values: dict[str, Any], *, completing: bool) -> None:
    """Check-out not before check-in, neither in the future (beyond the allowed skew), and a
    completed visit checked out."""
    latest = utcnow() + timedelta(seconds=settings.future_tolerance_seconds)
    check_in, check_out = values["check_in_at"], values.get("check_out_at")
    if check_in > latest:
        raise _invalid("check_in_at", "is in the future: visits are logged once they happen")
    if check_out is not None:
        if check_out < check_in:
            raise _invalid("check_out_at", "must not be before check_in_at")
        if check_out > latest:
            raise _invalid("check_out_at", "is in the future")
    elif completing:
        raise _invalid("check_out_at", "a completed visit needs its check-out time")


def _check_money(values: dict[str, Any], changes: dict[str, Any]) -> None:
    """An order amount goes with an order taken; without one it is zero."""
    if values.get("order_taken"):
        if values.get("order_amount") is None:
            raise _invalid("order_amount", "required when order_taken is true")
    elif values.get("order_amount"):
        raise _invalid("order_amount", "given, but order_taken is not true")
    if values.get("order_amount") is None:
        changes["order_amount"] = NO_MONEY


def _outcome(body: VisitOutcome, *, only_sent: bool) -> dict[str, Any]:
    """The columns an outcome sets (only those sent, for a PATCH)."""
    sent = body.model_fields_set if only_sent else set(VisitOutcome.model_fields)
    values: dict[str, Any] = {k: getattr(body, k) for k in _OUTCOME_COLUMNS if k in sent}
    # null is "not so": no flag, nothing collected (the order amount is judged with its flag).
    empty: dict[str, Any] = {"effective": False, "order_taken": False, "collected_amount": NO_MONEY}
    for key, value in empty.items():
        if key in values and values[key] is None:
            values[key] = value
    for key in ("order_amount", "collected_amount"):
        if values.get(key) is not None:
            values[key] = cents(values[key])
    if "expenses" in sent:
        amounts = [(e.category, cents(e.amount)) for e in body.expenses or []]
        values["expenses"] = [{"category": c, "amount": a} for c, a in amounts]
        values["expenses_total"] = sum((a for _, a in amounts), NO_MONEY)
    if "check_in_location" in sent:
        loc = body.check_in_location
        values["check_in_lat"] = loc.lat if loc else None
        values["check_in_lon"] = loc.lon if loc else None
        values["check_in_accuracy_m"] = loc.accuracy_m if loc else None
    return values


def _distance(settings: Settings, customer: Any, values: dict[str, Any]) -> None:
    lat, lon = values.get("check_in_lat"), values.get("check_in_lon")
    if lat is None or lon is None or customer.lat is None or customer.lon is None:
        values["distance_m"], values["far_from_customer"] = None, False
        return
    distance = haversine_m(lat, lon, customer.lat, customer.lon)
    values["distance_m"] = round(distance, 1)
    values["far_from_customer"] = distance > settings.far_from_customer_m


async def _plan_item(
    session: AsyncSession, item_id: uuid.UUID, rep_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    item = await plans.get_item(session, item_id)
    if item is None or item.rep_id != rep_id:
        raise _invalid("plan_item_id", "not an item of the rep's plans")
    if item.status != "approved":
        raise _invalid("plan_item_id", f"the plan is {item.status}; only approved plans count")
    if item.customer_id != values["customer_id"]:
        raise _invalid("plan_item_id", "the item plans a visit to another customer")
    if item.plan_date != values["visit_date"]:
        raise _invalid("plan_item_id", f"the item is planned for {item.plan_date}")
    return item


async def create(
    session: AsyncSession, principal: Principal, settings: Settings, body: VisitCreate
) -> dict[str, Any]:
    """The new visit, as `VisitRead` answers it."""
    require_write(principal)
    rep = await acting_rep(session, principal, body.rep_id)
    now = utcnow()
    completed = body.status == "completed"
    values: dict[str, Any] = {
        **_outcome(body, only_sent=False),
        "id": new_id(),
        "rep_id": rep.id,
        "team_id": rep.team_id,
        "customer_id": body.customer_id,
        "channel": body.channel,
        "purpose": body.purpose,
        "plan_item_id": body.plan_item_id,
        "status": body.status,
        "check_in_at": body.check_in_at,
        "visit_date": calendar.local_date(body.check_in_at, settings.zone),
        "created_by": principal.sub,
        "version": 1,
        "created_at": now,
        "updated_at": now,
        "completed_at": now if completed else None,
        "cancel_reason": None,
        "cancelled_at": None,
    }
    item = None
    try:
        _check_times(settings, values, completing=completed)
        _check_money(values, values)
        if body.plan_item_id is not None:
            item = await _plan_item(session, body.plan_item_id, rep.id, values)
    except ValidationFailed:
        # A customer the caller may not see is refused first, whatever else is wrong.
        await visible_customer(session, principal, body.customer_id, "customer_id")
        raise
    # The customer is read by the statement that writes the visit (its row decides the
    # customer's columns, the distance and the event's customer facts): every other column,
    # the answer and the event's other facts are made here beforehand.
    visit = values | _UNREAD
    logged = None
    if completed:
        data = _event(visit, None, rep.name, item)
        (event,) = event_rows(session, [(events.VISIT_COMPLETED, values["id"], data)])
        logged = (_contact(visit), event)
    # Nothing was written before and nothing is after: the one statement is the change.
    await lone_statement(session)
    try:
        row = await repository.insert_logged(
            session, values, see_params(principal), settings.far_from_customer_m, logged
        )
    except IntegrityError as exc:
        # Two visits for one item at the same moment: the index decides (the statement wrote
        # nothing).
        if body.plan_item_id is None or "uq_visits_plan_item" not in str(exc.orig):
            raise
        raise PlanItemTaken(body.plan_item_id) from None
    if row is None:  # nothing was written
        raise UnknownCustomer("customer_id", body.customer_id)
    # Answered as the list answers a stored visit, from the same columns (no model to build).
    return _answer(visit | row._asdict())


# The columns of a new visit its statement takes from the customer's row, until it has.
_UNREAD = {"customer_status": "", "distance_m": None, "far_from_customer": False}


def _contact(visit: Mapping[str, Any]) -> dict[str, Any]:
    return repository.contact_values(
        visit["customer_id"], visit["id"], visit["check_in_at"], visit["effective"],
        visit["visit_date"],
    )  # fmt: skip


def _event(
    visit: Mapping[str, Any], customer: Any, rep_name: str | None, item: Any
) -> dict[str, Any]:
    return events.completed(visit, customer, rep_name, item.plan_id if item is not None else None)


async def _completed(
    session: AsyncSession, visit: VisitRead, customer: Any, rep_name: str | None, item: Any
) -> None:
    await repository.record_contact(session, _contact(dict(visit)))
    await record_event(
        session, events.VISIT_COMPLETED, visit.id, _event(dict(visit), customer, rep_name, item)
    )


def _changeable(principal: Principal, row: Any, what: str) -> None:
    require_write(principal)
    if not may_write_for(principal, row.rep_id):
        raise Forbidden(f"only the rep {what} their visit")
    if row.status != "planned":
        raise WrongVisitState(f"a {row.status} visit is final")


async def update(
    session: AsyncSession, principal: Principal, settings: Settings, row: Any, body: VisitUpdate
) -> VisitRead:
    """A planned visit's details, only what is sent."""
    _changeable(principal, row, "edits")
    values = _outcome(body, only_sent=True)
    for key in ("channel", "purpose", "check_in_at"):
        if key in body.model_fields_set:
            value = getattr(body, key)
            if value is None:
                raise _invalid(key, "cannot be removed")
            values[key] = value
    await _apply(session, principal, settings, row, values, complete=False)
    return read(await repository.get(session, row.id))


async def complete(
    session: AsyncSession, principal: Principal, settings: Settings, row: Any, body: VisitOutcome
) -> VisitRead:
    _changeable(principal, row, "completes")
    values = _outcome(body, only_sent=True)
    return await _apply(session, principal, settings, row, values, complete=True)


async def _apply(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    row: Any,
    values: dict[str, Any],
    *,
    complete: bool,
) -> VisitRead:
    merged = {**row._mapping, **values}
    if "check_in_at" in values:
        values["visit_date"] = merged["visit_date"] = calendar.local_date(
            merged["check_in_at"], settings.zone
        )
    _check_times(settings, merged, completing=complete)
    _check_money(merged, values)
    customer = await customers.get(session, row.customer_id)
    if customer is None:  # the read model never forgets a customer; kept for safety
        raise VisitNotFound(row.id)
    if {"check_in_lat", "check_in_lon"} & values.keys():
        _distance(settings, customer, merged)
        values["distance_m"] = merged["distance_m"]
        values["far_from_customer"] = merged["far_from_customer"]
    item = None
    if row.plan_item_id is not None:
        item = await _plan_item(session, row.plan_item_id, row.rep_id, merged)
    now = utcnow()
    values["updated_at"] = now
    if complete:
        values.update(
            status="completed",
            completed_at=now,
            customer_status=customer.status,
            customer_level=customer.level,
            customer_region=customer.region,
        )
    await repository.update(session, row.id, values)
    visit = read(await repository.get(session, row.id))
    if complete:
        name = await rep_name(session, principal, row.rep_id)
        await _completed(session, visit, customer, name, item)
    return visit


async def cancel(session: AsyncSession, principal: Principal, row: Any, reason: str) -> VisitRead:
    _changeable(principal, row, "cancels")
    now = utcnow()
    await repository.update(
        session,
        row.id,
        {"status": "cancelled", "cancel_reason": reason, "cancelled_at": now, "updated_at": now},
    )
    visit = read(await repository.get(session, row.id))
    customer = await customers.get(session, row.customer_id)
    item = await plans.get_item(session, row.plan_item_id) if row.plan_item_id else None
    await record_event(
        session,
        events.VISIT_CANCELLED,
        visit.id,
        events.cancelled(
            dict(visit),
            customer,
            await rep_name(session, principal, row.rep_id),
            item.plan_id if item else None,
        ),
    )
    return visit


async def list_visits(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    query: VisitListQuery,
    page: PageParams,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of visits, each as `answer` writes it."""
    require_read(principal)
    V = VISITS.c
    where: list[sa.ColumnElement[bool]] = []
    if query.rep_id is not None:
        # One rep's log: the rule decided here, so the statement walks the rep's index alone.
        if not await sees_rep(session, principal, query.rep_id):
            return [], None
        where.append(V.rep_id == query.rep_id)
    else:
        where.append(rep_clause(principal, V.rep_id))
    if query.customer_id is not None:
        where.append(V.customer_id == query.customer_id)
    if query.from_ is not None:
        where.append(V.check_in_at >= calendar.day_start(query.from_, settings.zone))
    if query.to is not None:
        where.append(V.check_in_at < calendar.day_bounds(query.to, settings.zone)[1])
    if query.status is not None:
        where.append(V.status == query.status)
    rows = await repository.list_page(session, where, page)
    items, cursor = make_page(rows, page, lambda r: [r.check_in_at, r.id])
    return [answer(r) for r in items], cursor
