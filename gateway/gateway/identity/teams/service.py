"""Teams' rules: who sees which team, what a team may become, and the events that tell
consumers about the tree (flush, never commit)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.audit import service as audit
from gateway.identity.authn import Authenticator, announce
from gateway.identity.models import Team
from gateway.identity.teams import events, repository
from gateway.identity.teams.exceptions import TeamNotEmpty, TeamNotFound
from gateway.identity.teams.schemas import TeamCreate, TeamUpdate
from gateway.identity.users import repository as users
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import ValidationFailed
from servicekit.outbox import record_event
from servicekit.pagination import PageParams


def can_see_team(principal: Principal, team_id: uuid.UUID) -> bool:
    return principal.kind == "user" and principal.sees_team(team_id)


async def visible_team(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, *, lock: bool
) -> Team:
    """The team (locked when it is about to change); 404 when the caller may not see it."""
    team = await repository.get_team(session, team_id, lock=lock)
    if team is None or not can_see_team(principal, team.id):
        raise TeamNotFound(team_id)
    return team


async def list_teams(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    parent_id: uuid.UUID | None,
) -> Sequence[Team]:
    """All for admins, the subtree for managers, their own for reps."""
    visible = None if principal.is_admin else principal.visible_team_ids
    return await repository.list_teams(session, page, visible_team_ids=visible, parent_id=parent_id)


async def check_team(session: AsyncSession, team_id: uuid.UUID | None, field: str) -> None:
    """A team a user or team is about to point at exists (422 naming `field` if not)."""
    if team_id is not None and not await repository.team_exists(session, team_id):
        raise ValidationFailed.field(field, f"no team {team_id}")


async def _check_manager(session: AsyncSession, manager_id: uuid.UUID | None) -> None:
    if manager_id is None:
        return
    found = await users.role_and_active(session, manager_id)
    if found is None:
        raise ValidationFailed.field("manager_id", f"no user {manager_id}")
    role, active = found
    if role not in ("manager", "admin") or not active:
        raise ValidationFailed.field("manager_id", "must be an active manager (or admin)")


async def _team_events(session: AsyncSession, team_ids: Sequence[uuid.UUID], change: str) -> None:
    for team_id in team_ids:
        team = await repository.get_team(session, team_id, lock=False)
        if team is None:
            continue
        ancestors, managers = await repository.team_chain(session, team_id)
        await record_event(
            session,
            events.TEAM_CHANGED,
            team.id,
            events.team_data(team, ancestors, managers, change),
        )


async def create_team(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    body: TeamCreate,
    address: str | None,
) -> Team:
    await check_team(session, body.parent_id, "parent_id")
    await _check_manager(session, body.manager_id)
    team = Team(name=body.name, parent_id=body.parent_id, manager_id=body.manager_id)
    await repository.add(session, team)
    await _team_events(session, [team.id], "created")
    audit.record(
        session,
        "team.created",
        actor,
        subject_type="team",
        subject_id=team.id,
        client_address=address,
        detail={"name": team.name},
    )
    # A new team below a manager's team widens what that manager sees.
    await announce(session, authn, "teams")
    return team


async def update_team(
    session: AsyncSession,
    authn: Authenticator,
    actor: Principal,
    team: Team,
    body: TeamUpdate,
    address: str | None,
) -> Team:
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise ValidationFailed.field("name", "may not be null")
    if not changes:
        return team
    if changes.get("parent_id") is not None:
        parent_id = changes["parent_id"]
        await check_team(session, parent_id, "parent_id")
        if parent_id in await repository.subtree(session, team.id):
            raise ValidationFailed.field("parent_id", "a team cannot move below itself")
    if "manager_id" in changes:
        await _check_manager(session, changes["manager_id"])
    tree_changed = any(
        k in changes and changes[k] != getattr(team, k) for k in ("parent_id", "manager_id")
    )
    for field, value in changes.items():
        setattr(team, field, value)
    team.version += 1
    team.updated_at = utcnow()
    await session.flush()
    # Teams below see a new chain of managers when the tree above them changes.
    affected = await repository.subtree(session, team.id) if tree_changed else [team.id]
    await _team_events(session, affected, "updated")
    audit.record(
        session,
        "team.updated",
        actor,
        subject_type="team",
        subject_id=team.id,
        client_address=address,
        detail={k: str(v) if isinstance(v, uuid.UUID) else v for k, v in changes.items()},
    )
    await announce(session, authn, "teams")
    return team


async def delete_team(
    session: AsyncSession, authn: Authenticator, actor: Principal, team: Team, address: str | None
) -> None:
    reason = await repository.team_has_dependants(session, team.id)
    if reason is not None:
        raise TeamNotEmpty(reason)
    ancestors, managers = await repository.team_chain(session, team.id)
    await record_event(
        session,
        events.TEAM_CHANGED,
        team.id,
        events.team_data(team, ancestors, managers, "deleted"),
    )
    await repository.delete(session, team)
    audit.record(
        session,
        "team.deleted",
        actor,
        subject_type="team",
        subject_id=team.id,
        client_address=address,
        detail={"name": team.name},
    )
    await announce(session, authn, "teams")
