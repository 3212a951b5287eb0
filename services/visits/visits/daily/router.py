"""HTTP of the daily sales reports (`/api/v1/daily-reports`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from starlette.responses import Response

from servicekit.app import CurrentPrincipal, json_response
from servicekit.etag import IfMatch, OptionalIfMatch
from servicekit.pagination import Page, PageParams
from servicekit.routing import SessionDep, kit_router
from visits.daily import service
from visits.daily.dependencies import LockedReport, VisibleReport
from visits.daily.schemas import (
    DailyReportRead,
    DayQuery,
    MissingPage,
    MissingQuery,
    ReportCreate,
    ReportListQuery,
    ReportUpdate,
    ReturnBody,
    SignOffBody,
)
from visits.dependencies import SettingsDep
from visits.responses import answers, listing, record
from visits.schemas import Day

router = kit_router(prefix="/api/v1/daily-reports", tags=["daily reports"])
BY_ID = "/{report_id:uuid}"
MISSING = "No such report, or one the caller may not see (another rep's is answered the same)"
DECIDED = "Only a submitted report is signed off or returned"


@router.post(
    "",
    status_code=201,
    response_model=DailyReportRead,
    responses=answers(
        created=True,
        conflict="The rep already reported that day (`existing_id` names the report)",
        invalid="A field is wrong (`errors` names it), e.g. a day that has not come yet",
    ),
    summary="Submit the day's report (its figures are frozen now)",
)
async def submit_report(
    body: ReportCreate, session: SessionDep, principal: CurrentPrincipal, settings: SettingsDep
) -> Response:
    report = await service.submit_new(session, principal, settings, body)
    return record(report, report.version, status=201, location=f"{router.prefix}/{report.id}")


@router.get("", response_model=Page[DailyReportRead], summary="Reports by rep, days and state")
async def list_reports(
    query: Annotated[ReportListQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    items, cursor = await service.list_reports(
        session, principal, settings, query, PageParams(query.limit, query.cursor)
    )
    return listing(items, cursor)


@router.get(
    "/missing",
    response_model=MissingPage,
    summary="Reps without a submitted report, after the day's deadline (managers)",
)
async def missing_reports(
    query: Annotated[MissingQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    result = await service.missing(session, principal, settings, query)
    return json_response(result.model_dump(mode="json"))


@router.get(
    "/days/{report_date}",
    response_model=DailyReportRead,
    responses=answers(missing="A rep the caller may not see (answered as no report)"),
    summary="A rep's report of a day, with its figures (live until submitted)",
)
async def day_report(
    report_date: Day,
    query: Annotated[DayQuery, Query()],
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    report = await service.day_report(session, principal, settings, report_date, query.rep_id)
    return record(report, report.version)


@router.get(
    BY_ID,
    response_model=DailyReportRead,
    responses=answers(missing=MISSING),
    summary="A daily report",
)
async def get_report(report: VisibleReport, session: SessionDep, settings: SettingsDep) -> Response:
    result = await service.read(session, settings, report)
    return record(result, result.version)


@router.patch(
    BY_ID,
    response_model=DailyReportRead,
    responses=answers(missing=MISSING, conflict="Only a returned report is changed", post=False),
    summary="Change a returned report (If-Match)",
)
async def patch_report(
    if_match: IfMatch,
    body: ReportUpdate,
    report: LockedReport,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    if_match.check(report.version)
    result = await service.update(session, principal, settings, report, body)
    return record(result, result.version)


@router.post(
    BY_ID + "/submit",
    response_model=DailyReportRead,
    responses=answers(missing=MISSING, conflict="Only a returned report is submitted again"),
    summary="Submit a returned report",
)
async def resubmit_report(
    if_match: OptionalIfMatch,
    report: LockedReport,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    if_match.check(report.version)
    result = await service.resubmit(session, principal, settings, report)
    return record(result, result.version)


@router.post(
    BY_ID + "/sign-off",
    response_model=DailyReportRead,
    responses=answers(missing=MISSING, conflict=DECIDED),
    summary="Sign off (manager)",
)
async def sign_off_report(
    if_match: OptionalIfMatch,
    report: LockedReport,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
    body: SignOffBody | None = None,
) -> Response:
    if_match.check(report.version)
    result = await service.decide(
        session, principal, settings, report, sign_off=True, comment=body.comment if body else None
    )
    return record(result, result.version)


@router.post(
    BY_ID + "/return",
    response_model=DailyReportRead,
    responses=answers(missing=MISSING, conflict=DECIDED),
    summary="Return with a comment",
)
async def return_report(
    if_match: OptionalIfMatch,
    body: ReturnBody,
    report: LockedReport,
    session: SessionDep,
    principal: CurrentPrincipal,
    settings: SettingsDep,
) -> Response:
    if_match.check(report.version)
    result = await service.decide(
        session, principal, settings, report, sign_off=False, comment=body.comment
    )
    return record(result, result.version)
