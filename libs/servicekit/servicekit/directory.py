"""The organisation directory: identity's users and teams as a read model in an app's own schema.

Services need more of the organisation than a request's principal carries: a rep's manager
(handovers, approvals), the reps under a team tree (assignment, target decomposition), the
teams a manager sees. The gateway publishes every change of users and teams on its identity
feed (`/api/v1/events/identity`); an app that names a `Directory` in its `AppSpec` follows that
feed with the kit's `EventConsumer` into two tables of its own schema, `directory_users` and
`directory_teams`, and asks this module's queries. No app reads the gateway's schema.

Wiring (explicit, in the app's code):

- `models.py`: `DIRECTORY = Directory(metadata)` adds the tables to the app's metadata;
- the app's migration creates them: `create_directory_tables(op, "<schema>")`;
- `main.py`: `AppSpec(..., directory=DIRECTORY, identity_reactions=[...])`. Reactions are the
  app's own consequences of a change (customers hands a deactivated rep's customers over);
  they run in the consumer's transaction, after the read model has applied the event.

Scope rules are identity's (gateway `authn.visible_teams`): a manager sees the teams they lead
and every team below them (their own team when they lead none); a rep sees their own team;
an admin sees every team.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from alembic.operations import Operations
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import RoleChecks
from servicekit.consumer import EventConsumer, following
from servicekit.db import make_metadata, utcnow
from servicekit.outbox import Event, parse_feed_cursor, payload_uuid
from servicekit.tables import kit_tables

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("servicekit.directory")

IDENTITY_SOURCE = "identity"
USERS_TABLE = "directory_users"
TEAMS_TABLE = "directory_teams"
# Identity's event types (gateway/identity/events.py); payloads carry the full facts.
USER_CREATED = "user.created"
USER_UPDATED = "user.updated"
USER_TEAM_CHANGED = "user.team_changed"
USER_DEACTIVATED = "user.deactivated"
USER_REACTIVATED = "user.reactivated"
TEAM_CHANGED = "team.changed"
_USER_EVENTS = frozenset(
    {USER_CREATED, USER_UPDATED, USER_TEAM_CHANGED, USER_DEACTIVATED, USER_REACTIVATED}
)
# A tree deeper than this is a cycle (identity refuses one; the read model never loops on it).
_MAX_DEPTH = 1000


@dataclass(frozen=True, slots=True)
class DirectoryUser(RoleChecks):
    id: uuid.UUID
    team_id: uuid.UUID | None
    role: str | None
    active: bool
    name: str | None


@dataclass(frozen=True, slots=True)
class DirectoryTeam:
    id: uuid.UUID
    name: str | None
    parent_id: uuid.UUID | None
    manager_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """What one identity event changed, as the app's reactions see it (after it was applied)."""

    event: Event
    user: DirectoryUser | None = None  # user.* events: the user as they are now
    previous: DirectoryUser | None = None  # ... and as they were before (None: new to us)
    team: DirectoryTeam | None = None  # team.changed: the team now (None once deleted)

    @property
    def type(self) -> str:
        return self.event.type


Reaction = Callable[[AsyncSession, DirectoryChange], Awaitable[None]]


def add_directory_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """`directory_users` and `directory_teams` in `metadata`'s schema (users, teams)."""
    users = sa.Table(
        USERS_TABLE,
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("team_id", sa.Uuid, nullable=True),
        sa.Column("role", sa.Text, nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Index("ix_directory_users_team_role", "team_id", "role"),
    )
    teams = sa.Table(
        TEAMS_TABLE,
        metadata,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("parent_id", sa.Uuid, nullable=True, index=True),
        sa.Column("manager_id", sa.Uuid, nullable=True, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    return users, teams


def create_directory_tables(
    op: Operations, schema: str, *, only: Iterable[str] | None = None
) -> None:
    """Called by an app's migration: the directory's tables (all, or those named in `only`)."""
    wanted = None if only is None else set(only)
    for table in add_directory_tables(make_metadata(schema)):
        if wanted is None or table.name in wanted:
            table.create(op.get_bind())


def drop_directory_tables(op: Operations, schema: str) -> None:
    for name in (TEAMS_TABLE, USERS_TABLE):
        op.drop_table(name, schema=schema)


def quiet_marker(consumer: str) -> str:
    return f"{consumer}~quiet-until"


def replay_directory_quietly(op: Operations, schema: str, consumer: str) -> None:
    """For a migration that adds to the read model of a directory already in use: the feed is
    replayed from zero to fill what is new, and the app's reactions stay quiet for the events
    they already reacted to (up to the cursor the consumer had reached)."""
    tables = kit_tables(schema)
    cursors, processed = tables.consumer_cursors, tables.consumer_processed
    mark = pg_insert(cursors).from_select(
        ["consumer", "cursor"],
        sa.select(sa.literal(quiet_marker(consumer)), cursors.c.cursor).where(
            cursors.c.consumer == consumer, cursors.c.cursor.is_not(None)
        ),
    )
    op.execute(
        mark.on_conflict_do_update(
            index_elements=[cursors.c.consumer], set_={"cursor": mark.excluded.cursor}
        )
    )
    op.execute(sa.delete(cursors).where(cursors.c.consumer == consumer))
    op.execute(sa.delete(processed).where(processed.c.consumer == consumer))


def _user(row: Any) -> DirectoryUser:
    return DirectoryUser(row.id, row.team_id, row.role, row.active, row.name)


def _team(row: Any) -> DirectoryTeam:
    return DirectoryTeam(row.id, row.name, row.parent_id, row.manager_id)


class Directory:
    """The read model's tables in one app's schema, and the queries services ask of it.

    Every query takes the caller's session: the request's (answers in its transaction) or the
    consumer's (a reaction sees the change it reacts to).
    """

    def __init__(self, metadata: sa.MetaData) -> None:
        self.users, self.teams = add_directory_tables(metadata)

    # -- users ------------------------------------------------------------------------------
    async def get_user(self, session: AsyncSession, user_id: uuid.UUID) -> DirectoryUser | None:
        row = (
            await session.execute(sa.select(self.users).where(self.users.c.id == user_id))
        ).first()
        return None if row is None else _user(row)

    async def get_users(
        self, session: AsyncSession, user_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, DirectoryUser]:
        ids = list(set(user_ids))
        if not ids:
            return {}
        rows = await session.execute(sa.select(self.users).where(self.users.c.id.in_(ids)))
        return {r.id: _user(r) for r in rows}

    async def managers_of(self, session: AsyncSession, user_id: uuid.UUID) -> list[DirectoryUser]:
        """The active managers who see the user's team, nearest first: its manager, then the
        managers of the teams above it. The user is never their own manager."""
        user = await self.get_user(session, user_id)
        if user is None or user.team_id is None:
            return []
        chain = await self._chain(session, user.team_id)
        ordered: list[uuid.UUID] = []
        for _, manager_id in chain:
            if manager_id is not None and manager_id != user_id and manager_id not in ordered:
                ordered.append(manager_id)
        found = await self.get_users(session, ordered)
        return [found[m] for m in ordered if m in found and found[m].active]

    async def manager_of(self, session: AsyncSession, user_id: uuid.UUID) -> DirectoryUser | None:
        """The user's nearest active manager (`managers_of`), else an active manager who is a
        member of the user's team."""
        managers = await self.managers_of(session, user_id)
        if managers:
            return managers[0]
        user = await self.get_user(session, user_id)
        if user is None or user.team_id is None:
            return None
        u = self.users.c
        row = (
            await session.execute(
                sa.select(self.users)
                .where(
                    u.team_id == user.team_id,
                    u.role == "manager",
                    u.active.is_(True),
                    u.id != user_id,
                )
                .order_by(u.id)
                .limit(1)
            )
        ).first()
        return None if row is None else _user(row)

    async def users_in(
        self,
        session: AsyncSession,
        team_ids: Iterable[uuid.UUID],
        *,
        roles: Sequence[str] | None = None,
        include_inactive: bool = False,
    ) -> list[DirectoryUser]:
        """Members of the given teams (of the given roles), ordered by id."""
        teams = list(set(team_ids))
        if not teams:
            return []
        u = self.users.c
        stmt = sa.select(self.users).where(u.team_id.in_(teams)).order_by(u.id)
        if roles is not None:
            stmt = stmt.where(u.role.in_(list(roles)))
        if not include_inactive:
            stmt = stmt.where(u.active.is_(True))
        return [_user(r) for r in await session.execute(stmt)]

    async def reps_of(
        self,
        session: AsyncSession,
        team_id: uuid.UUID,
        *,
        include_subteams: bool = True,
        include_inactive: bool = False,
    ) -> list[DirectoryUser]:
        """The reps of a team, and of every team below it unless `include_subteams` is off."""
        teams = await self.team_tree(session, team_id) if include_subteams else [team_id]
        return await self.users_in(session, teams, roles=["rep"], include_inactive=include_inactive)

    async def reps_of_teams(
        self,
        session: AsyncSession,
        team_ids: Iterable[uuid.UUID],
        *,
        include_inactive: bool = False,
    ) -> dict[uuid.UUID, list[DirectoryUser]]:
        """`reps_of` each of the teams (with every team below it), in two statements however
        many teams are asked for: one walk down from all of them, one read of their reps."""
        roots = list(dict.fromkeys(team_ids))
        if not roots:
            return {}
        t = self.teams.c
        # (root, team) pairs: each root and what lies below it, a root the directory does not
        # know included (its known children name it as their parent), as `team_tree` has it.
        asked = (
            sa.func.unnest(sa.cast(roots, ARRAY(sa.Uuid)))
            .table_valued("root")
            .render_derived(name="asked")
        )
        start = (
            sa.select(asked.c.root, t.id)
            .select_from(asked)
            .join(self.teams, sa.or_(t.id == asked.c.root, t.parent_id == asked.c.root))
            .cte("reps_down", recursive=True)
        )
        down = start.union(sa.select(start.c.root, t.id).where(t.parent_id == start.c.id))
        trees: dict[uuid.UUID, set[uuid.UUID]] = {root: {root} for root in roots}
        for root, team_id in await session.execute(sa.select(down.c.root, down.c.id)):
            trees[root].add(team_id)
        members: dict[uuid.UUID | None, list[DirectoryUser]] = {}
        teams = set().union(*trees.values())
        for member in await self.users_in(
            session, teams, roles=["rep"], include_inactive=include_inactive
        ):
            members.setdefault(member.team_id, []).append(member)
        return {
            root: sorted((m for team in tree for m in members.get(team, ())), key=attrgetter("id"))
            for root, tree in trees.items()
        }

    # -- teams ------------------------------------------------------------------------------
    async def get_team(self, session: AsyncSession, team_id: uuid.UUID) -> DirectoryTeam | None:
        row = (
            await session.execute(sa.select(self.teams).where(self.teams.c.id == team_id))
        ).first()
        return None if row is None else _team(row)

    async def subteams(self, session: AsyncSession, team_id: uuid.UUID) -> list[DirectoryTeam]:
        """The teams directly below a team, ordered by name then id."""
        t = self.teams.c
        rows = await session.execute(
            sa.select(self.teams).where(t.parent_id == team_id).order_by(t.name, t.id)
        )
        return [_team(r) for r in rows]

    async def team_tree(self, session: AsyncSession, *roots: uuid.UUID) -> list[uuid.UUID]:
        """The given teams, then every team below them (a root the directory does not know is
        still its own tree: its members may arrive before the team's event)."""
        if not roots:
            return []
        t = self.teams.c
        down = (
            sa.select(t.id)
            .where(sa.or_(t.id.in_(roots), t.parent_id.in_(roots)))
            .cte("down", recursive=True)
        )
        down = down.union(sa.select(t.id).where(t.parent_id == down.c.id))
        below = {r[0] for r in await session.execute(sa.select(down.c.id))} - set(roots)
        return [*dict.fromkeys(roots), *sorted(below, key=str)]

    async def known_team_tree(
        self, session: AsyncSession, team_id: uuid.UUID
    ) -> list[uuid.UUID] | None:
        """`team_tree` of a team the directory knows, in one statement; None when it does not
        know the team."""
        t = self.teams.c
        down = sa.select(t.id).where(t.id == team_id).cte("known_down", recursive=True)
        down = down.union(sa.select(t.id).where(t.parent_id == down.c.id))
        found = {r[0] for r in await session.execute(sa.select(down.c.id))}
        if team_id not in found:
            return None
        return [team_id, *sorted(found - {team_id}, key=str)]

    async def teams_led_by(self, session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
        t = self.teams.c
        rows = await session.execute(sa.select(t.id).where(t.manager_id == user_id).order_by(t.id))
        return [r[0] for r in rows]

    async def teams_visible_to(
        self, session: AsyncSession, user_id: uuid.UUID
    ) -> frozenset[uuid.UUID]:
        """Identity's rule: a manager sees the teams they lead and everything below them (their
        own team when they lead none), a rep their own team, an admin every team; an unknown
        or deactivated user sees nothing."""
        user = await self.get_user(session, user_id)
        if user is None or not user.active:
            return frozenset()
        if user.is_admin:
            return frozenset(r[0] for r in await session.execute(sa.select(self.teams.c.id)))
        own = frozenset({user.team_id}) if user.team_id is not None else frozenset()
        if user.is_manager:
            led = await self.teams_led_by(session, user_id)
            return frozenset(await self.team_tree(session, *led)) if led else own
        return own if user.is_rep else frozenset()

    async def in_scope(
        self, session: AsyncSession, viewer_id: uuid.UUID, user_id: uuid.UUID
    ) -> bool:
        """Whether `user_id` is within `viewer_id`'s scope: themself, or (for an admin) anyone,
        or (for a manager) a member of a team they see. Reps see only themselves."""
        viewer = await self.get_user(session, viewer_id)
        if viewer is None or not viewer.active:
            return False
        if viewer_id == user_id:
            return True
        if not (viewer.is_admin or viewer.is_manager):
            return False
        user = await self.get_user(session, user_id)
        if user is None:
            return False
        if viewer.is_admin:
            return True
        return user.team_id is not None and user.team_id in await self.teams_visible_to(
            session, viewer_id
        )

    async def _chain(
        self, session: AsyncSession, team_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, uuid.UUID | None]]:
        """(team, its manager) from `team_id` up to the root, nearest first."""
        t = self.teams
        up = (
            sa.select(t.c.id, t.c.parent_id, t.c.manager_id, sa.literal(0).label("depth"))
            .where(t.c.id == team_id)
            .cte("up", recursive=True)
        )
        up = up.union_all(
            sa.select(t.c.id, t.c.parent_id, t.c.manager_id, up.c.depth + 1).where(
                t.c.id == up.c.parent_id, up.c.depth < _MAX_DEPTH
            )
        )
        rows = await session.execute(sa.select(up.c.id, up.c.manager_id).order_by(up.c.depth))
        return [(r.id, r.manager_id) for r in rows]

    # -- applying identity's events -----------------------------------------------------------
    async def apply(self, session: AsyncSession, event: Event) -> DirectoryChange | None:
        """Apply one identity event to the read model; the change, or None when the event is
        not one the directory keeps. Replays are harmless: each event carries full facts."""
        data = event.data or {}
        if event.type == TEAM_CHANGED:
            return await self._apply_team(session, event, data)
        if event.type not in _USER_EVENTS:
            return None
        user_id = payload_uuid(data.get("id") or data.get("user_id") or event.subject)
        if user_id is None:
            return None
        fields: dict[str, Any] = {}
        if "team_id" in data:
            fields["team_id"] = payload_uuid(data["team_id"])
        for key in ("role", "name"):
            if key in data:
                fields[key] = data[key]
        if "active" in data:
            fields["active"] = bool(data["active"])
        if event.type == USER_DEACTIVATED:
            fields["active"] = False
        elif event.type == USER_REACTIVATED:
            fields["active"] = True
        previous = await self.get_user(session, user_id)
        await self._upsert(session, self.users, user_id, {"active": True, **fields})
        now = await self.get_user(session, user_id)
        return DirectoryChange(event, user=now, previous=previous)

    async def _apply_team(
        self, session: AsyncSession, event: Event, data: dict[str, Any]
    ) -> DirectoryChange | None:
        team_id = payload_uuid(data.get("id") or event.subject)
        if team_id is None:
            return None
        if data.get("change") == "deleted":
            await session.execute(sa.delete(self.teams).where(self.teams.c.id == team_id))
            return DirectoryChange(event)
        fields: dict[str, Any] = {
            key: payload_uuid(data[key]) for key in ("parent_id", "manager_id") if key in data
        }
        if "name" in data:
            fields["name"] = data["name"]
        await self._upsert(session, self.teams, team_id, fields)
        return DirectoryChange(event, team=await self.get_team(session, team_id))

    async def _upsert(
        self, session: AsyncSession, table: sa.Table, row_id: uuid.UUID, fields: dict[str, Any]
    ) -> None:
        values = {**fields, "id": row_id, "updated_at": utcnow()}
        stmt = pg_insert(table).values(values)
        # On conflict only what the event says changes; `active` defaults to true for a user
        # first seen, and must not reset a known user's flag on an event without it.
        keep = {k for k in values if k != "id"} - ({"active"} - fields.keys())
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c.id], set_={k: stmt.excluded[k] for k in keep}
            )
        )


def _after(cursor: str, marker: str) -> bool:
    try:
        return parse_feed_cursor(cursor) > parse_feed_cursor(marker)
    except Exception:
        return True


class IdentityFollower:
    """The consumer's handler: the read model first, then the app's reactions, in the
    consumer's transaction. After a `replay_directory_quietly` migration the reactions stay
    quiet up to the cursor where the app had already reacted."""

    def __init__(self, directory: Directory, reactions: Sequence[Reaction], consumer: str):
        self.directory = directory
        self.reactions = tuple(reactions)
        self.consumer = consumer
        self._quiet_until: str | None = None
        self._cursors: sa.Table | None = None  # the app's consumer_cursors, once loaded

    async def load(self, session: AsyncSession, schema: str) -> None:
        self._cursors = cursors = kit_tables(schema).consumer_cursors
        row = (
            await session.execute(
                sa.select(cursors.c.cursor).where(cursors.c.consumer == quiet_marker(self.consumer))
            )
        ).first()
        self._quiet_until = None if row is None else row[0]

    async def __call__(self, session: AsyncSession, event: Event) -> None:
        change = await self.directory.apply(session, event)
        if change is None:
            return
        if self._quiet_until is not None:
            if not _after(event.cursor, self._quiet_until):
                return
            # Past the mark: it goes with this page's commit. The mark stays in memory, so a
            # page that is rolled back and retried stays quiet where it must.
            cursors = self._cursors
            assert cursors is not None  # a mark is only ever read by `load`
            await session.execute(
                sa.delete(cursors).where(cursors.c.consumer == quiet_marker(self.consumer))
            )
        for react in self.reactions:
            await react(session, change)


@contextlib.asynccontextmanager
async def follow_identity(
    app: FastAPI, directory: Directory, reactions: Sequence[Reaction] = ()
) -> AsyncIterator[EventConsumer | None]:
    """Follow the gateway's identity feed into `directory` for the app's lifetime (the app
    factory enters this for an `AppSpec` with a `directory`)."""
    consumer_name = f"{app.state.spec.name}.identity"
    handler = IdentityFollower(directory, reactions, consumer_name)
    async with app.state.db.session() as session:
        await handler.load(session, app.state.db.schema)
    app.state.directory = directory
    async with following(app, IDENTITY_SOURCE, consumer_name, handler) as consumer:
        app.state.identity_consumer = consumer
        yield consumer
