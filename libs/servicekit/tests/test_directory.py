"""The organisation directory: identity's events applied to the read model, and its queries."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from servicekit.db import Database, utcnow
from servicekit.directory import (
    DirectoryChange,
    IdentityFollower,
    quiet_marker,
    replay_directory_quietly,
)
from servicekit.outbox import Event, feed_cursor
from servicekit.tables import kit_tables
from servicekit.testing.sample.app import SCHEMA, directory

_position = iter(range(1, 1_000_000))


def identity(type_: str, **data: Any) -> Event:
    position = next(_position)
    return Event(
        id=uuid.uuid4(),
        type=type_,
        source="identity",
        subject=str(data.get("id")),
        time=utcnow(),
        data=data,
        dataversion="1",
        cursor=feed_cursor(1, position),
    )


def team(id_: uuid.UUID, name: str, parent: uuid.UUID | None, manager: uuid.UUID | None) -> Event:
    return identity(
        "team.changed",
        id=str(id_),
        name=name,
        parent_id=None if parent is None else str(parent),
        manager_id=None if manager is None else str(manager),
        change="created",
    )


def user(id_: uuid.UUID, role: str, team_id: uuid.UUID | None, **extra: Any) -> Event:
    data = {"id": str(id_), "role": role, "team_id": team_id and str(team_id), "active": True}
    return identity("user.created", **{**data, "name": f"{role} {id_.hex[:4]}", **extra})


async def apply(db: Database, *events: Event) -> list[DirectoryChange | None]:
    async with db.session() as s:
        return [await directory.apply(s, e) for e in events]


def ids(users: list[Any]) -> list[uuid.UUID]:
    return [u.id for u in users]


async def test_the_team_tree_managers_scope_and_reps(db: Database) -> None:
    company, north, north_sub, south = (uuid.uuid4() for _ in range(4))
    admin, boss, m_north, m_south = (uuid.uuid4() for _ in range(4))
    r_north, r_sub, r_south, r_gone = sorted(uuid.uuid4() for _ in range(4))
    orphan, pending, r_orphan = (uuid.uuid4() for _ in range(3))
    await apply(
        db,
        # Members may be known before their team (events of other transactions come first).
        user(r_sub, "rep", north_sub),
        team(company, "Company", None, boss),
        team(north, "North", company, m_north),
        team(north_sub, "North sub", north, None),
        team(south, "South", company, m_south),
        user(admin, "admin", None),
        user(boss, "manager", company),
        user(m_north, "manager", north),
        user(m_south, "manager", south),
        user(r_north, "rep", north),
        user(r_south, "rep", south),
        user(r_gone, "rep", north_sub, active=False),
    )
    async with db.session() as s:
        rep = await directory.get_user(s, r_sub)
        assert rep is not None and rep.team_id == north_sub and rep.is_rep and rep.active
        assert (await directory.get_team(s, north_sub)).parent_id == north  # type: ignore[union-attr]
        assert ids(await directory.managers_of(s, r_sub)) == [m_north, boss]
        assert ids(await directory.managers_of(s, m_north)) == [boss]  # never their own
        assert await directory.managers_of(s, boss) == []
        assert (await directory.manager_of(s, r_south)).id == m_south  # type: ignore[union-attr]

        assert await directory.team_tree(s, north) == [north, *sorted([north_sub], key=str)]
        assert set(await directory.team_tree(s, company)) == {company, north, north_sub, south}
        for root in (north, company, north_sub):
            assert await directory.known_team_tree(s, root) == await directory.team_tree(s, root)
        assert await directory.known_team_tree(s, uuid.uuid4()) is None
        assert ids(await directory.subteams(s, company)) == [north, south]

        assert await directory.teams_visible_to(s, m_north) == {north, north_sub}
        assert await directory.teams_visible_to(s, boss) == {company, north, north_sub, south}
        assert await directory.teams_visible_to(s, admin) == {company, north, north_sub, south}
        assert await directory.teams_visible_to(s, r_north) == {north}
        assert await directory.teams_visible_to(s, r_gone) == frozenset()
        assert await directory.teams_visible_to(s, uuid.uuid4()) == frozenset()

        assert ids(await directory.reps_of(s, north)) == [r_north, r_sub]
        assert ids(await directory.reps_of(s, north, include_inactive=True)) == [
            r_north,
            r_sub,
            r_gone,
        ]
        assert ids(await directory.reps_of(s, north, include_subteams=False)) == [r_north]
        assert ids(await directory.reps_of(s, company)) == [r_north, r_sub, r_south]
        # Several teams at once, each as `reps_of` has it: nested ones, a team with no rep, a
        # team the directory does not know (nobody), and the members of one known only by its
        # parent's id (a root whose own event has not come yet).
        unknown = uuid.uuid4()
        await apply(db, team(orphan, "Orphan", pending, None), user(r_orphan, "rep", orphan))
        asked = [north, company, north_sub, south, unknown, pending]
        for inactive in (False, True):
            together = await directory.reps_of_teams(s, asked, include_inactive=inactive)
            assert list(together) == asked
            for team_id in asked:
                alone = await directory.reps_of(s, team_id, include_inactive=inactive)
                assert ids(together[team_id]) == ids(alone), (team_id, inactive)
        assert ids((await directory.reps_of_teams(s, [north]))[north]) == [r_north, r_sub]
        assert ids((await directory.reps_of_teams(s, [pending]))[pending]) == [r_orphan]
        assert (await directory.reps_of_teams(s, [unknown]))[unknown] == []
        assert await directory.reps_of_teams(s, []) == {}

        assert await directory.in_scope(s, m_north, r_sub)
        assert await directory.in_scope(s, m_north, m_north)
        assert not await directory.in_scope(s, m_north, r_south)
        assert not await directory.in_scope(s, m_north, boss)  # above them, not below
        assert await directory.in_scope(s, boss, r_south)
        assert await directory.in_scope(s, admin, r_south)
        assert not await directory.in_scope(s, r_north, r_sub)
        assert await directory.in_scope(s, r_north, r_north)
        assert not await directory.in_scope(s, r_gone, r_gone)  # deactivated: no scope
        assert not await directory.in_scope(s, admin, uuid.uuid4())

    # The sub-team moves under south: its reps' managers and the scopes follow.
    await apply(db, identity("team.changed", id=str(north_sub), parent_id=str(south)))
    async with db.session() as s:
        assert ids(await directory.managers_of(s, r_sub)) == [m_south, boss]
        assert await directory.teams_visible_to(s, m_south) == {south, north_sub}
        assert await directory.teams_visible_to(s, m_north) == {north}
        assert (await directory.get_team(s, north_sub)).name == "North sub"  # type: ignore[union-attr]

    # A deactivated manager is skipped; a manager leading no team sees their own team.
    changes = await apply(
        db,
        identity("user.deactivated", id=str(m_south), role="manager", team_id=str(south)),
        identity("team.changed", id=str(south), manager_id=None),
        identity("team.changed", id=str(north_sub), change="deleted"),
    )
    deactivated = changes[0]
    assert deactivated is not None and deactivated.previous is not None
    assert deactivated.previous.active and not deactivated.user.active  # type: ignore[union-attr]
    async with db.session() as s:
        assert ids(await directory.managers_of(s, r_south)) == [boss]
        assert await directory.get_team(s, north_sub) is None
        assert await directory.teams_visible_to(s, m_north) == {north}
    await apply(db, identity("team.changed", id=str(north), manager_id=None))
    async with db.session() as s:
        assert await directory.teams_visible_to(s, m_north) == {north}
        # No manager up the tree but one in the team itself: the fallback of `manager_of`.
        assert ids(await directory.managers_of(s, r_north)) == [boss]
        await s.execute(
            sa.update(directory.teams)
            .where(directory.teams.c.id == company)
            .values(manager_id=None)
        )
        assert await directory.managers_of(s, r_north) == []
        assert (await directory.manager_of(s, r_north)).id == m_north  # type: ignore[union-attr]


async def test_user_events_keep_what_they_do_not_mention(db: Database) -> None:
    me, north, south = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await apply(db, user(me, "rep", north, name="Ann"))
    await apply(db, identity("user.deactivated", id=str(me)))
    async with db.session() as s:
        got = await directory.get_user(s, me)
        assert got is not None and not got.active and got.name == "Ann" and got.team_id == north
    await apply(
        db, identity("user.team_changed", id=str(me), team_id=str(south), previous_team_id="x")
    )
    await apply(db, identity("user.reactivated", id=str(me)))
    async with db.session() as s:
        got = await directory.get_user(s, me)
        assert got is not None and got.active and got.team_id == south and got.role == "rep"
    assert await apply(db, identity("user.logged_in", id=str(me))) == [None]
    assert await apply(db, identity("user.created", id="not-a-uuid")) == [None]


async def test_a_quiet_replay_fills_the_read_model_without_reacting_twice(
    db: Database,
) -> None:
    """What `replay_directory_quietly` (a migration) arranges: the consumer starts over from
    zero; reactions stay quiet up to the cursor it had reached, then react again."""
    consumer = "kitsample.identity"
    seen: list[str] = []

    async def react(session: Any, change: DirectoryChange) -> None:
        seen.append(change.type)

    a, b = uuid.uuid4(), uuid.uuid4()
    old = [user(a, "rep", None), identity("user.deactivated", id=str(a))]
    new = [user(b, "rep", None), identity("user.deactivated", id=str(b))]
    cursors, processed = kit_tables(SCHEMA).consumer_cursors, kit_tables(SCHEMA).consumer_processed
    async with db.session() as s:
        await s.execute(sa.insert(cursors).values(consumer=consumer, cursor=old[-1].cursor))
        await s.execute(sa.insert(processed).values(consumer=consumer, event_id=old[0].id))

    def migrate(connection: sa.Connection) -> None:
        replay_directory_quietly(
            Operations(MigrationContext.configure(connection)), SCHEMA, consumer
        )

    engine = db.engine
    assert engine is not None
    async with engine.begin() as connection:
        await connection.run_sync(migrate)
    async with db.session() as s:
        result = await s.execute(sa.select(cursors.c.consumer, cursors.c.cursor))
        rows = {r.consumer: r.cursor for r in result}
        assert rows == {quiet_marker(consumer): old[-1].cursor}
        applied = await s.execute(sa.select(sa.func.count()).select_from(processed))
        assert applied.scalar() == 0

    follower = IdentityFollower(directory, [react], consumer)
    async with db.session() as s:
        await follower.load(s, SCHEMA)
    for event in [*old, *new]:
        async with db.session() as s:
            await follower(s, event)
    assert seen == ["user.created", "user.deactivated"]  # b's only
    async with db.session() as s:
        assert (await directory.get_user(s, a)).active is False  # type: ignore[union-attr]
        left = await s.execute(sa.select(sa.func.count()).select_from(cursors))
        assert left.scalar() == 0  # the marker is gone once passed
