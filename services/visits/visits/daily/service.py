"""The rules of the daily sales report.

One per rep per day, never for a day to come. Its figures are derived, never typed: computed
from the visit log (completed visits checked in that company day), the day's approved plan
and the complaints raised, live until it is submitted and frozen into it then. Submitted ->
signed off (the rep's manager, with a comment) or returned (-> edited, submitted again and
frozen anew). After the deadline hour (company time) of a working day, the reps without a
submitted report are listed as missing.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
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
    sees_everything,
    sees_rep,
    visible,
)
from visits.config import Settings
from visits.daily import events, repository
from visits.daily.exceptions import ReportExists, ReportNotFound, WrongReportState
from visits.daily.models import DAILY_REPORTS
from visits.daily.schemas import (
    DailyFigures,
    DailyReportRead,
    MissingPage,
    MissingQuery,
    MissingReport,
    ReportCreate,
    ReportListQuery,
    ReportUpdate,
)
from visits.models import directory
from visits.schemas import cents, row_fields

TYPED = ("attendance", "competitor_info", "customer_feedback", "lessons", "tomorrow_focus", "mood")


async def figures(
    session: AsyncSession, settings: Settings, rep_id: uuid.UUID, day: date
) -> DailyFigures:
    start, end = calendar.day_bounds(day, settings.zone)
    row = await repository.figures(session, rep_id, day, start, end)
    planned, fulfilled = row.planned_items, row.fulfilled_items
    return DailyFigures(
        visits_completed=row.visits_completed,
        effective_visits=row.effective_visits,
        visits_with_order=row.visits_with_order,
        order_amount=cents(Decimal(row.order_amount)),
        collected_amount=cents(Decimal(row.collected_amount)),
        complaints_raised=row.complaints_raised,
        far_check_ins=row.far_check_ins,
        planned_items=planned,
        fulfilled_items=fulfilled,
        plan_adherence=round(fulfilled / planned, 4) if planned else None,
    )


async def read(session: AsyncSession, settings: Settings, row: Any) -> DailyReportRead:
    frozen = row.status in ("submitted", "signed_off") and row.figures is not None
    numbers = (
        DailyFigures.model_validate(row.figures)
        if frozen
        else await figures(session, settings, row.rep_id, row.report_date)
    )
    return DailyReportRead(
        **row_fields(row, DailyReportRead) | {"figures": numbers, "figures_frozen": frozen}
    )


async def visible_report(
    session: AsyncSession, principal: Principal, report_id: uuid.UUID, *, for_update: bool = False
) -> Any:
    require_read(principal)
    row = await repository.get(session, report_id, for_update=for_update)
    return await visible(session, principal, row, lambda: ReportNotFound(report_id))


def _today(settings: Settings) -> date:
    return calendar.local_date(utcnow(), settings.zone)


async def day_report(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    day: date,
    rep_id: uuid.UUID | None,
) -> DailyReportRead:
    """The rep's report of the day: the submitted one, or what it would say now."""
    require_read(principal)
    rep = rep_id or principal.user_id
    if rep is None:
        raise ValidationFailed.field("rep_id", "an API key must name the rep (rep_id)")
    if not await sees_rep(session, principal, rep):
        raise ReportNotFound(rep)
    row = await repository.get_for_day(session, rep, day)
    if row is not None:
        return await read(session, settings, row)
    if rep == principal.user_id and principal.team_id is not None:
        team: uuid.UUID | None = uuid.UUID(principal.team_id)
    else:
        user = await directory.get_user(session, rep)
        team = user.team_id if user else None
    return DailyReportRead(
        id=None,
        rep_id=rep,
        team_id=team,
        report_date=day,
        status="not_submitted",
        attendance=None,
        competitor_info=None,
        customer_feedback=None,
        lessons=None,
        tomorrow_focus=None,
        mood=None,
        figures=await figures(session, settings, rep, day),
        figures_frozen=False,
        submitted_at=None,
        decided_at=None,
        decided_by=None,
        comment=None,
        version=0,
        created_at=None,
        updated_at=None,
    )


async def submit_new(
    session: AsyncSession, principal: Principal, settings: Settings, body: ReportCreate
) -> DailyReportRead:
    require_user(principal, "reporting a day")
    if body.report_date > _today(settings):
        raise ValidationFailed.field("report_date", "is a day to come: report it when it is done")
    rep = await acting_rep(session, principal, None)
    existing = await repository.get_for_day(session, rep.id, body.report_date)
    if existing is not None:
        raise ReportExists(existing.id)
    now = utcnow()
    numbers = await figures(session, settings, rep.id, body.report_date)
    values: dict[str, Any] = {
        **body.model_dump(include=set(TYPED)),
        "id": new_id(),
        "rep_id": rep.id,
        "team_id": rep.team_id,
        "report_date": body.report_date,
        "status": "submitted",
        "figures": numbers.model_dump(mode="json"),
        "submitted_at": now,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    try:
        await repository.insert(session, values)
    except IntegrityError:
        raise ReportExists(None) from None
    report = await read(session, settings, await repository.get(session, values["id"]))
    await record_event(
        session, events.REPORT_SUBMITTED, report.id, events.submitted(report, rep.name, False)
    )
    return report


def _own_returned(principal: Principal, row: Any, what: str) -> None:
    require_user(principal, what)
    if row.rep_id != principal.user_id:
        raise Forbidden("only the rep changes and submits their daily report")
    if row.status != "returned":
        raise WrongReportState(f"a {row.status} report is not the rep's to change")


async def update(
    session: AsyncSession, principal: Principal, settings: Settings, row: Any, body: ReportUpdate
) -> DailyReportRead:
    _own_returned(principal, row, "changing a daily report")
    values = {k: getattr(body, k) for k in body.model_fields_set}
    if values.get("attendance", "") is None:
        raise ValidationFailed.field("attendance", "cannot be removed")
    values["updated_at"] = utcnow()
    await repository.update(session, row.id, values)
    return await read(session, settings, await repository.get(session, row.id))


async def resubmit(
    session: AsyncSession, principal: Principal, settings: Settings, row: Any
) -> DailyReportRead:
    _own_returned(principal, row, "submitting a daily report")
    numbers = await figures(session, settings, row.rep_id, row.report_date)
    now = utcnow()
    await repository.update(
        session,
        row.id,
        {
            "status": "submitted",
            "figures": numbers.model_dump(mode="json"),
            "submitted_at": now,
            "updated_at": now,
            "decided_at": None,
            "decided_by": None,
            "comment": None,
        },
    )
    report = await read(session, settings, await repository.get(session, row.id))
    await record_event(
        session,
        events.REPORT_SUBMITTED,
        report.id,
        events.submitted(report, principal.name, True),
    )
    return report


async def decide(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    row: Any,
    *,
    sign_off: bool,
    comment: str | None,
) -> DailyReportRead:
    values = await decision(
        session,
        principal,
        row,
        what="daily report",
        status="signed_off" if sign_off else "returned",
        comment=comment,
        wrong_state=WrongReportState,
    )
    await repository.update(session, row.id, values)
    report = await read(session, settings, await repository.get(session, row.id))
    await record_event(
        session,
        events.REPORT_SIGNED_OFF if sign_off else events.REPORT_RETURNED,
        report.id,
        events.decided(report, await rep_name(session, principal, row.rep_id)),
    )
    return report


async def list_reports(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    query: ReportListQuery,
    page: PageParams,
) -> tuple[list[DailyReportRead], str | None]:
    require_read(principal)
    R = DAILY_REPORTS.c
    where: list[sa.ColumnElement[bool]] = [rep_clause(principal, R.rep_id)]
    if query.rep_id is not None:
        where.append(R.rep_id == query.rep_id)
    if query.from_ is not None:
        where.append(R.report_date >= query.from_)
    if query.to is not None:
        where.append(R.report_date <= query.to)
    if query.status is not None:
        where.append(R.status == query.status)
    rows = await repository.list_page(session, where, page)
    items, cursor = make_page(rows, page, lambda r: [r.report_date, r.id])
    return [await read(session, settings, r) for r in items], cursor


async def missing(
    session: AsyncSession, principal: Principal, settings: Settings, query: MissingQuery
) -> MissingPage:
    """The reps (of the caller's teams) with no submitted report for the day, once its
    deadline has passed; empty before it, and on a day off."""
    require_read(principal)
    if not (sees_everything(principal) or principal.is_manager):
        raise Forbidden("the missing reports are listed for managers")
    day = query.date or _today(settings)
    due = calendar.deadline(day, settings.daily_report_deadline_hour, settings.zone)
    working = day.isoweekday() in settings.working_days
    passed = utcnow() >= due
    page = PageParams(query.limit, query.cursor)
    items: list[MissingReport] = []
    cursor = None
    if working and passed:
        teams = None if sees_everything(principal) else principal.team_uuids()
        rows = await repository.missing_page(session, teams, day, page)
        kept, cursor = make_page(rows, page, lambda r: [r.id])
        items = [
            MissingReport(
                rep_id=r.id,
                rep_name=r.name,
                team_id=r.team_id,
                status="returned" if r.report_status == "returned" else "missing",
            )
            for r in kept
        ]
    return MissingPage(
        items=items,
        next_cursor=cursor,
        date=day,
        working_day=working,
        deadline=due,
        deadline_passed=passed,
    )
