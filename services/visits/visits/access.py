"""Who may see and act on whose plans, visits, reports and cases. One rule for every feature:

- rep: their own records only;
- manager: their own, and those of the reps whose team (now, as the directory has it) is one
  of the manager's visible teams (the team tree they lead); they decide on those reps' plans
  and daily reports;
- admin: every record; decides on anyone's;
- integration key: every record with `visits:read` (reads) or `visits:write` (reads and the
  writes a key may make); a key decides nothing;
- anything else: the record does not exist (404).

Written once in Python for one record (`sees_rep`, `decides_for`) and as SQL for lists
(`rep_clause`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import DomainError, Forbidden, ValidationFailed
from visits.models import directory

READ_SCOPE = "visits:read"
WRITE_SCOPE = "visits:write"
_READ_SCOPES = frozenset({READ_SCOPE, WRITE_SCOPE})


def require_read(principal: Principal) -> None:
    """403 for a key without a visits scope (users are governed by the record rules)."""
    if principal.kind == "key" and not principal.scopes & _READ_SCOPES:
        raise Forbidden(f"this action needs the '{READ_SCOPE}' scope")


def require_write(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope(WRITE_SCOPE)


def require_user(principal: Principal, what: str) -> None:
    """Some writes are people's own (a plan, a daily report, a decision): never a key's."""
    require_read(principal)
    if principal.kind != "user":
        raise Forbidden(f"{what} is done by a signed-in user, not an API key")


def sees_everything(principal: Principal) -> bool:
    return principal.kind == "key" or principal.is_admin


async def sees_rep(session: AsyncSession, principal: Principal, rep_id: uuid.UUID) -> bool:
    """May the principal see the records of `rep_id`?"""
    if sees_everything(principal) or rep_id == principal.user_id:
        return True
    if not principal.is_manager:
        return False
    rep = await directory.get_user(session, rep_id)
    return rep is not None and principal.sees_team(rep.team_id)


async def visible(
    session: AsyncSession,
    principal: Principal,
    row: Any,
    not_found: Callable[[], DomainError],
) -> Any:
    """`row` (a record with a `rep_id`) if the principal may see it; else `not_found()`, the
    same answer as for a record that does not exist."""
    if row is None or not await sees_rep(session, principal, row.rep_id):
        raise not_found()
    return row


async def decision(
    session: AsyncSession,
    principal: Principal,
    row: Any,
    *,
    what: str,
    status: str,
    comment: str | None,
    wrong_state: Callable[[str], DomainError],
) -> dict[str, Any]:
    """The columns of a manager's decision on a submitted record (a plan, a daily report):
    only by a manager over the rep's team or an admin (403 for others who see it), only while
    it is submitted (`wrong_state` otherwise)."""
    require_user(principal, f"deciding on a {what}")
    if not await decides_for(session, principal, row.rep_id):
        raise Forbidden(f"only a manager over the rep's team (or an admin) decides on a {what}")
    if row.status != "submitted":
        raise wrong_state(f"only a submitted {what} is decided on; this one is {row.status}")
    now = utcnow()
    return {
        "status": status,
        "comment": comment,
        "decided_at": now,
        "decided_by": principal.sub,
        "updated_at": now,
    }


async def decides_for(session: AsyncSession, principal: Principal, rep_id: uuid.UUID) -> bool:
    """May the principal approve / return / sign off the rep's plans and reports? An admin, or
    a manager over the rep's team; nobody decides on their own."""
    if principal.kind != "user" or rep_id == principal.user_id:
        return False
    if principal.is_admin:
        return True
    return principal.is_manager and await sees_rep(session, principal, rep_id)


def rep_clause(principal: Principal, column: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[bool]:
    """`sees_rep` as the WHERE clause of a list over `column` (a rep id)."""
    if sees_everything(principal):
        return sa.true()
    me = principal.user_id
    own = column == me if me is not None else sa.false()
    teams = principal.team_uuids()
    if not principal.is_manager or not teams:
        return own
    users = directory.users.c
    team_reps = sa.select(users.id).where(users.team_id.in_(teams))
    return sa.or_(own, column.in_(team_reps))


@dataclass(frozen=True, slots=True)
class Rep:
    """The person a record is for, with the team it counts for."""

    id: uuid.UUID
    team_id: uuid.UUID | None
    name: str | None


async def acting_rep(session: AsyncSession, principal: Principal, rep_id: uuid.UUID | None) -> Rep:
    """Whose record a write makes: the caller's own by default; another rep's only when an
    admin or a key names them (`rep_id`: managers read their reps' records, they do not write
    them), else 422 naming the field."""
    me = principal.user_id
    if rep_id is None or rep_id == me:
        if me is None:
            raise ValidationFailed.field("rep_id", "an API key must name the rep (rep_id)")
        # The token carries the caller's team as identity has it now (the directory may lag).
        if principal.team_id is not None or principal.name is not None:
            return Rep(me, _uuid(principal.team_id), principal.name)
        user = await directory.get_user(session, me)
        return Rep(me, user.team_id if user else None, user.name if user else None)
    user = await directory.get_user(session, rep_id)
    if user is None or not user.active or not sees_everything(principal):
        raise ValidationFailed.field("rep_id", f"no rep {rep_id} that you may act for")
    return Rep(user.id, user.team_id, user.name)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return None if value is None else uuid.UUID(value)
    except ValueError:
        return None


async def rep_name(session: AsyncSession, principal: Principal, rep_id: uuid.UUID) -> str | None:
    """The rep's name for an event: the caller's own from the token, else the directory's."""
    if rep_id == principal.user_id and principal.name:
        return principal.name
    user = await directory.get_user(session, rep_id)
    return user.name if user else None


def may_write_for(principal: Principal, rep_id: uuid.UUID) -> bool:
    """May the principal change a record of `rep_id` (a visit, a case) it can see? The rep, an
    admin, a key with the write scope."""
    if principal.kind == "key":
        return principal.has_scope(WRITE_SCOPE)
    return principal.is_admin or rep_id == principal.user_id
