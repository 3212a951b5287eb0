"""Who may see and change which opportunity: an admin every one; a manager those of their
visible teams; a rep their own; a key every one with `opportunities:read` (changes with
`opportunities:write`). A manager reopens closed ones. An opportunity the caller may not see
is a 404; one they see but may not change a 403."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from opportunities.leads.access import owner_and_team
from opportunities.pipeline.models import OPPORTUNITIES
from servicekit.auth import Principal
from servicekit.errors import Forbidden

READ_SCOPE = "opportunities:read"
WRITE_SCOPE = "opportunities:write"


def require_read(principal: Principal) -> None:
    if principal.kind == "key" and not (
        principal.has_scope(READ_SCOPE) or principal.has_scope(WRITE_SCOPE)
    ):
        raise Forbidden(f"this action needs the '{READ_SCOPE}' scope")


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)


def can_see(principal: Principal, opportunity: Any) -> bool:
    if principal.kind == "key":
        return principal.has_scope(READ_SCOPE) or principal.has_scope(WRITE_SCOPE)
    if principal.is_admin:
        return True
    owner_id, team_id = owner_and_team(opportunity)
    if owner_id == principal.user_id:
        return True
    return principal.is_manager and principal.sees_team(team_id)


def require_change(principal: Principal, opportunity: Any) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)


def require_manager(principal: Principal) -> None:
    if principal.kind != "user" or not (principal.is_manager or principal.is_admin):
        raise Forbidden("a closed opportunity is reopened by a manager")


def visibility_filter(principal: Principal) -> sa.ColumnElement[bool]:
    c = OPPORTUNITIES.c
    if principal.kind == "key":
        return sa.true() if can_see(principal, None) else sa.false()
    if principal.is_admin:
        return sa.true()
    own = c.owner_id == principal.user_id if principal.user_id else sa.false()
    if principal.is_manager:
        teams = principal.team_uuids()
        return sa.or_(own, c.team_id.in_(teams)) if teams else own
    return own
