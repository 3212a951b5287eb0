"""Who may see and change which opportunity: an admin every one; a manager those of their
visible teams; a rep their own; a key every one with `opportunities:read` (changes with
`opportunities:write`). A manager reopens closed ones. An opportunity the caller may not see
is a 404; one they see but may not change a 403. The same rule as a list's WHERE clause is
`repository.visibility_filter`."""

from __future__ import annotations

from typing import Any

from opportunities.leads.access import owner_and_team
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
