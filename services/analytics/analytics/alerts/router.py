"""HTTP for the insight alerts (`/api/v1/alerts`): the list, one alert, a manager's
acknowledgement or dismissal, the rules as data, and the evaluation on demand."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from analytics.alerts import service
from analytics.alerts.dependencies import AlertEvaluator, LockedAlert, VisibleAlert
from analytics.alerts.rules import Rule
from analytics.alerts.schemas import (
    AlertListQuery,
    AlertRead,
    Decision,
    Evaluation,
    RulePut,
    RuleRead,
    RuleTeamQuery,
)
from analytics.dependencies import KpiContext
from servicekit.app import CurrentPrincipal, json_response
from servicekit.auth import Principal
from servicekit.errors import Forbidden
from servicekit.etag import IfMatch, Precondition, etag_for
from servicekit.openapi import with_headers
from servicekit.pagination import Page, PageParams
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/alerts", tags=["alerts"])
BY_ID = "/{alert_id:uuid}"
NOT_VISIBLE: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such alert the caller may see"}
}


@router.get(
    "",
    response_model=Page[AlertRead],
    operation_id="alerts_list",
    summary="The alerts the caller may see, newest first",
    responses={404: {"description": "No such team (`team_id`) the caller sees"}},
)
async def list_alerts(
    query: Annotated[AlertListQuery, Query()], session: SessionDep, principal: CurrentPrincipal
) -> Response:
    items, cursor = await service.list_alerts(
        session, principal, query, PageParams(query.limit, query.cursor)
    )
    return json_response({"items": items, "next_cursor": cursor})


@router.get(
    "/rules",
    response_model=list[RuleRead],
    operation_id="alerts_rules",
    summary="The rules with their thresholds: the company's, and the overrides of teams",
)
async def list_rules(session: SessionDep, principal: CurrentPrincipal) -> Response:
    return json_response(await service.list_rules(session, principal))


@router.put(
    "/rules/{rule}",
    response_model=RuleRead,
    operation_id="alerts_rule_put",
    responses={200: with_headers("ETag"), 404: {"description": "No such team the caller sees"}},
    summary="Set a rule's thresholds for the company (admins) or a team (its managers)",
)
async def put_rule(
    rule: Rule,
    query: Annotated[RuleTeamQuery, Query()],
    body: RulePut,
    if_match: IfMatch,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    changed = await service.put_rule(session, principal, rule, query.team_id, body, if_match)
    return json_response(changed, headers={"ETag": etag_for(changed["version"])})


@router.post(
    "/evaluate",
    response_model=Evaluation,
    operation_id="alerts_evaluate",
    summary="Run the daily pass now: every rule over every subject (admins)",
)
async def evaluate(
    session: SessionDep, principal: CurrentPrincipal, ctx: KpiContext, evaluator: AlertEvaluator
) -> Response:
    if principal.kind == "key" or not principal.is_admin:
        raise Forbidden("the evaluation is run on demand by admins")
    return json_response({"rules": await evaluator.evaluate(session, ctx)})


@router.get(
    BY_ID,
    response_model=AlertRead,
    operation_id="alerts_get",
    responses={200: with_headers("ETag"), **NOT_VISIBLE},
)
async def get_alert(alert: VisibleAlert) -> Response:
    return json_response(service.read(alert), headers={"ETag": etag_for(alert.version)})


async def _decide(
    decision: str,
    body: Decision,
    if_match: Precondition,
    alert: Any,
    session: AsyncSession,
    principal: Principal,
) -> Response:
    if_match.check(alert.version)
    changed = await service.decide(session, principal, alert, decision, body)
    return json_response(changed, headers={"ETag": etag_for(changed["version"])})


DECIDED: dict[int | str, dict[str, Any]] = {
    200: with_headers("ETag"),
    **NOT_VISIBLE,
    409: {"description": "Resolved"},
}


@router.post(
    BY_ID + "/acknowledge",
    response_model=AlertRead,
    operation_id="alerts_acknowledge",
    responses=DECIDED,
    summary="A manager takes note of the alert (it stays until its condition ends)",
)
async def acknowledge(
    body: Decision,
    if_match: IfMatch,
    alert: LockedAlert,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    return await _decide("acknowledged", body, if_match, alert, session, principal)


@router.post(
    BY_ID + "/dismiss",
    response_model=AlertRead,
    operation_id="alerts_dismiss",
    responses=DECIDED,
    summary="A manager dismisses the alert (no new one while its condition holds)",
)
async def dismiss(
    body: Decision,
    if_match: IfMatch,
    alert: LockedAlert,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> Response:
    return await _decide("dismissed", body, if_match, alert, session, principal)
