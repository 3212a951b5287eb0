"""Teams' queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.identity.models import TEAMS, USERS, Team
from gateway.models import SCHEMA
from servicekit.pagination import PageParams, keyset


async def team_exists(session: AsyncSession, team_id: uuid.UUID) -> bool:
    stmt = sa.select(TEAMS.c.id).where(TEAMS.c.id == team_id)
    return (await session.execute(stmt)).first() is not None


async def get_team(session: AsyncSession, team_id: uuid.UUID, *, lock: bool) -> Team | None:
    return await session.get(Team, team_id, with_for_update=lock)


_CHAIN = sa.text(
    f"""
    WITH RECURSIVE up(id, parent_id, manager_id, depth) AS (
        SELECT id, parent_id, manager_id, 0 FROM "{SCHEMA}".teams WHERE id = :team_id
        UNION ALL
        SELECT t.id, t.parent_id, t.manager_id, up.depth + 1
        FROM "{SCHEMA}".teams t JOIN up ON t.id = up.parent_id
        WHERE up.depth < 1000
    )
    SELECT id, manager_id FROM up ORDER BY depth
    """  # noqa: S608 - the schema is our own identifier; values are bound parameters
)

_SUBTREE = sa.text(
    f"""
    WITH RECURSIVE sub(id) AS (
        SELECT id FROM "{SCHEMA}".teams WHERE id = :team_id
        UNION
        SELECT c.id FROM "{SCHEMA}".teams c JOIN sub ON c.parent_id = sub.id
    )
    SELECT id FROM sub
    """  # noqa: S608 - the schema is our own identifier; values are bound parameters
)


async def team_chain(
    session: AsyncSession, team_id: uuid.UUID | None
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(ancestor team ids nearest first, managers who see the team nearest first)."""
    if team_id is None:
        return [], []
    rows = (await session.execute(_CHAIN, {"team_id": team_id})).all()
    ancestors = [r.id for r in rows[1:]]
    managers: list[uuid.UUID] = []
    for r in rows:
        if r.manager_id is not None and r.manager_id not in managers:
            managers.append(r.manager_id)
    return ancestors, managers


async def subtree(session: AsyncSession, team_id: uuid.UUID) -> list[uuid.UUID]:
    """The team and every team below it."""
    return [r.id for r in (await session.execute(_SUBTREE, {"team_id": team_id})).all()]


async def team_has_dependants(session: AsyncSession, team_id: uuid.UUID) -> str | None:
    if (
        await session.execute(sa.select(TEAMS.c.id).where(TEAMS.c.parent_id == team_id).limit(1))
    ).first():
        return "it still has sub-teams"
    if (
        await session.execute(sa.select(USERS.c.id).where(USERS.c.team_id == team_id).limit(1))
    ).first():
        return "it still has members"
    return None


async def add(session: AsyncSession, team: Team) -> None:
    session.add(team)
    await session.flush()


async def delete(session: AsyncSession, team: Team) -> None:
    await session.delete(team)
    await session.flush()


async def list_teams(
    session: AsyncSession,
    page: PageParams,
    *,
    visible_team_ids: Iterable[str] | None,
    parent_id: uuid.UUID | None,
) -> Sequence[Team]:
    t = TEAMS
    stmt = sa.select(Team)
    if visible_team_ids is not None:
        allowed = [uuid.UUID(v) for v in visible_team_ids]
        stmt = stmt.where(t.c.id.in_(allowed) if allowed else sa.false())
    if parent_id is not None:
        stmt = stmt.where(t.c.parent_id == parent_id)
    stmt = keyset(stmt, [t.c.created_at, t.c.id], page)
    return (await session.execute(stmt)).scalars().all()
