"""Who may see and change which lead. Every lead endpoint goes through these rules:

- admin: every lead.
- manager: the leads of their visible teams (their subtree), and the leads in no team (the
  shared queue: unassigned, nurtured). A lead a rule sent to a team without reps waits in
  that team's queue, seen by its managers.
- rep: their own leads.
- integration key: pushes leads with `leads:write`, reads every lead with `leads:read`.

A lead the caller may not see is a 404, exactly like one that does not exist; one they see
but may not change is a 403. The same rule as a list's WHERE clause is
`repository.visibility_filter`.
"""

from __future__ import annotations

import uuid
from typing import Any

from servicekit.auth import Principal
from servicekit.errors import Forbidden

READ_SCOPE = "leads:read"
WRITE_SCOPE = "leads:write"


def require_read(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(READ_SCOPE)


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)


def owner_and_team(record: Any) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(owner_id, team_id) of a row or of a dict of its columns."""
    if isinstance(record, dict):
        return record["owner_id"], record["team_id"]
    return record.owner_id, record.team_id


def can_see(principal: Principal, lead: Any) -> bool:
    if principal.kind == "key":
        return principal.has_scope(READ_SCOPE) or principal.has_scope(WRITE_SCOPE)
    if principal.is_admin:
        return True
    owner_id, team_id = owner_and_team(lead)
    if owner_id is not None and owner_id == principal.user_id:
        return True
    if principal.is_manager:
        return team_id is None or principal.sees_team(team_id)
    return False


def can_change(principal: Principal, lead: Any) -> bool:
    if principal.kind == "key":
        return principal.has_scope(WRITE_SCOPE)
    return can_see(principal, lead)


def require_change(principal: Principal, lead: Any) -> None:
    if not can_change(principal, lead):
        raise Forbidden("you may read this lead but not change it")


def manages(principal: Principal) -> bool:
    """Managers and admins (and write keys) route leads: assign, requalify nurtured ones."""
    if principal.kind == "key":
        return principal.has_scope(WRITE_SCOPE)
    return principal.is_admin or principal.is_manager
