"""HTTP of the assignment rules, at `/api/v1/leads/assignment-rules`."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from opportunities.assignment import service
from opportunities.assignment.dependencies import ChangeableRule, VisibleRule
from opportunities.assignment.schemas import (
    AssignmentRuleCreate,
    AssignmentRuleRead,
    AssignmentRules,
    AssignmentRuleUpdate,
)
from servicekit.app import CurrentPrincipal, json_response
from servicekit.etag import IfMatch, etag_for
from servicekit.openapi import with_headers
from servicekit.routing import SessionDep, kit_router

router = kit_router(prefix="/api/v1/leads/assignment-rules", tags=["assignment rules"])
BY_ID = "/{rule_id:uuid}"


def _answer(rule: Any, status: int = 200, **headers: str) -> Response:
    body = AssignmentRuleRead.model_validate(rule, from_attributes=True).model_dump(mode="json")
    return json_response(body, status, {"ETag": etag_for(rule.version), **headers})


@router.get(
    "",
    response_model=AssignmentRules,
    summary="The rules, in the order they are tried",
    operation_id="assignment_rules_list",
)
async def list_rules(session: SessionDep, principal: CurrentPrincipal) -> AssignmentRules:
    rules = await service.list_rules(session, principal)
    return AssignmentRules(
        items=[AssignmentRuleRead.model_validate(r, from_attributes=True) for r in rules]
    )


@router.post(
    "",
    status_code=201,
    response_model=AssignmentRuleRead,
    summary="Add a rule (admin)",
    operation_id="assignment_rules_create",
    responses={201: with_headers("ETag", "Location")},
)
async def create_rule(
    body: AssignmentRuleCreate, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    rule = await service.create_rule(session, principal, body)
    return _answer(rule, 201, Location=f"{router.prefix}/{rule.id}")


@router.get(
    BY_ID,
    response_model=AssignmentRuleRead,
    summary="One rule",
    operation_id="assignment_rules_get",
    responses={200: with_headers("ETag")},
)
async def get_rule(rule: VisibleRule) -> Response:
    return _answer(rule)


@router.patch(
    BY_ID,
    response_model=AssignmentRuleRead,
    summary="Change a rule (If-Match; admin)",
    operation_id="assignment_rules_update",
)
async def patch_rule(
    rule: ChangeableRule,
    body: AssignmentRuleUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatch,
) -> Response:
    if_match.check(rule.version)
    return _answer(await service.update_rule(session, principal, rule, body))


@router.delete(
    BY_ID,
    status_code=204,
    summary="Remove a rule (If-Match; admin)",
    operation_id="assignment_rules_delete",
)
async def delete_rule(
    rule: ChangeableRule, session: SessionDep, principal: CurrentPrincipal, if_match: IfMatch
) -> Response:
    if_match.check(rule.version)
    await service.delete_rule(session, principal, rule)
    return Response(status_code=204)
