"""Scopes (rep, team, region, company) and who may ask for which.

- A rep sees their own figures; a manager those of the teams they see (identity's rule: the
  teams they lead and everything below) and of the reps in them; an admin everything; an
  API key everything, with the `kpis:read` scope. Anything else is 404, exactly like a scope
  that does not exist.
- Targets are set by admins, and by managers for the teams they see and those teams' reps.

A team's scope is that team and every team below it, as the tree stands when asked.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from analytics.facts import repository as facts
from servicekit.auth import Principal
from servicekit.directory import Directory
from servicekit.errors import Forbidden, NotFound, ValidationFailed


class ScopeKind(StrEnum):
    """Whose figures: a rep's, a team's, a region's or the company's."""

    rep = "rep"
    team = "team"
    region = "region"
    company = "company"


KPIS_READ = "kpis:read"


@dataclass(frozen=True, slots=True)
class Scope:
    kind: ScopeKind
    id: uuid.UUID | None = None
    region: str | None = None
    # A team's tree, resolved when asked.
    teams: tuple[uuid.UUID, ...] = ()

    @property
    def key(self) -> str | None:
        """The scope's id as the API writes it (a region's name)."""
        if self.kind == "region":
            return self.region
        return None if self.id is None else str(self.id)

    def as_json(self) -> dict[str, str | None]:
        return {"scope": self.kind, "scope_id": self.key}


COMPANY = Scope(ScopeKind.company)


def _uuid(value: str | None, field: str) -> uuid.UUID:
    if not value:
        raise ValidationFailed.field(field, "is required for this scope")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed.field(field, "is not a UUID") from None


async def team_scope(session: AsyncSession, directory: Directory, team_id: uuid.UUID) -> Scope:
    return Scope(ScopeKind.team, team_id, teams=tuple(await directory.team_tree(session, team_id)))


async def parse(
    session: AsyncSession,
    directory: Directory,
    kind: ScopeKind,
    scope_id: str | None,
    field: str = "scope_id",
) -> Scope:
    """The scope named by the request (404 when its rep or team is unknown)."""
    if kind == "company":
        return COMPANY
    if kind == "region":
        if not scope_id or not scope_id.strip():
            raise ValidationFailed.field(field, "names the region for a region scope")
        return Scope(ScopeKind.region, region=scope_id.strip())
    target = _uuid(scope_id, field)
    if kind == "rep":
        if await directory.get_user(session, target) is None:
            raise NotFound(f"no rep {target}")
        return Scope(ScopeKind.rep, target)
    tree = await directory.known_team_tree(session, target)
    if tree is None:
        raise NotFound(f"no team {target}")
    return Scope(ScopeKind.team, target, teams=tuple(tree))


async def may_read(
    session: AsyncSession, directory: Directory, principal: Principal, scope: Scope
) -> bool:
    if principal.kind == "key":
        principal.require_scope(KPIS_READ)
        return True
    if principal.is_admin:
        return True
    if scope.kind == "rep" and principal.user_id == scope.id:
        return True
    if not principal.is_manager:
        return False
    if scope.kind == "team":
        return principal.sees_team(scope.id)
    if scope.kind == "rep" and scope.id is not None:
        user = await directory.get_user(session, scope.id)
        return user is not None and principal.sees_team(user.team_id)
    return False


async def readable(
    session: AsyncSession,
    directory: Directory,
    principal: Principal,
    kind: ScopeKind,
    scope_id: str | None,
) -> Scope:
    """The scope, if the caller may see its figures; 404 otherwise (also when unknown)."""
    if principal.kind == "key":
        principal.require_scope(KPIS_READ)
    scope = await parse(session, directory, kind, scope_id)
    if not await may_read(session, directory, principal, scope):
        raise NotFound(f"no {kind} {scope.key}" if scope.key else f"no {kind} scope")
    return scope


async def may_set_targets(
    session: AsyncSession, directory: Directory, principal: Principal, scope: Scope
) -> None:
    """403 unless the caller sets targets for this scope (see the module)."""
    if principal.kind == "key":
        raise Forbidden("targets are set by managers and admins, not by API keys")
    if principal.is_admin:
        return
    if principal.is_manager and scope.kind in ("team", "rep"):
        if scope.kind == "team" and principal.sees_team(scope.id):
            return
        if scope.kind == "rep" and scope.id is not None and scope.id != principal.user_id:
            user = await directory.get_user(session, scope.id)
            if user is not None and principal.sees_team(user.team_id):
                return
    raise Forbidden(
        "targets are set by admins, and by managers for their teams and their teams' reps"
    )


async def parent(session: AsyncSession, directory: Directory, scope: Scope, at: datetime) -> Scope:
    """The scope above, for customer_share: a rep's team (the one they were in at `at`), a
    team's parent team, the company above a top team or a region."""
    if scope.kind == "rep" and scope.id is not None:
        team_id = await facts.team_at(session, scope.id, at)
        if team_id is None:
            user = await directory.get_user(session, scope.id)
            team_id = None if user is None else user.team_id
        return COMPANY if team_id is None else await team_scope(session, directory, team_id)
    if scope.kind == "team" and scope.id is not None:
        team = await directory.get_team(session, scope.id)
        if team is not None and team.parent_id is not None:
            return await team_scope(session, directory, team.parent_id)
    return COMPANY
