"""An organisation for tests: a team tree, its managers and reps, as the gateway would vouch
for them (`Principal`s with identity's visible teams) and as its identity feed announces them.

`standard_org()` is the one most tests need:

    north (led by manager_north)      south (led by manager_south)
    ├── rep_a, rep_b, admin           └── rep_south
    └── north_sub: rep_sub

`org.manager_north` is a `Principal`; `org.team_north` the team's id (a string, as in tokens);
`org.user_id("rep_a")` the UUID. `build_org()` builds any other tree.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from servicekit.auth import Principal
from servicekit.directory import TEAM_CHANGED, USER_CREATED


@dataclass(frozen=True)
class OrgTeam:
    id: str
    name: str
    parent: str | None  # the parent team's name
    manager: str | None  # the leading manager's name


@dataclass(frozen=True)
class Org:
    teams: dict[str, OrgTeam]  # by name, parents before children
    people: dict[str, Principal]  # by name
    scopes: dict[str, frozenset[str]] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        # org.rep_a -> the Principal; org.team_north -> the team's id.
        people = self.__dict__.get("people", {})
        if name in people:
            return people[name]
        teams = self.__dict__.get("teams", {})
        if name.startswith("team_") and name[5:] in teams:
            return teams[name[5:]].id
        raise AttributeError(name)

    def user_id(self, name: str) -> uuid.UUID:
        return uuid.UUID(self.people[name].sub)

    def team_id(self, name: str) -> uuid.UUID:
        return uuid.UUID(self.teams[name].id)

    def _ancestors(self, team: str) -> list[OrgTeam]:
        chain, at = [], self.teams.get(team)
        while at is not None:
            chain.append(at)
            at = self.teams.get(at.parent) if at.parent else None
        return chain

    def manager_ids(self, team_id: str | None) -> list[str]:
        """Identity's `manager_ids` of a team: its manager, then those above, nearest first."""
        by_id = {t.id: name for name, t in self.teams.items()}
        if team_id not in by_id:
            return []
        out: list[str] = []
        for team in self._ancestors(by_id[team_id]):
            if team.manager is not None and self.people[team.manager].sub not in out:
                out.append(self.people[team.manager].sub)
        return out

    def identity_events(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(type, subject, data) as the gateway's identity feed announces this organisation:
        every team, then every user (payloads as `gateway/identity/events.py` builds them)."""
        events: list[tuple[str, str, dict[str, Any]]] = []
        for team in self.teams.values():
            ancestors = self._ancestors(team.name)
            events.append(
                (
                    TEAM_CHANGED,
                    team.id,
                    {
                        "id": team.id,
                        "name": team.name,
                        "parent_id": None if team.parent is None else self.teams[team.parent].id,
                        "manager_id": None
                        if team.manager is None
                        else self.people[team.manager].sub,
                        "ancestor_ids": [t.id for t in ancestors[1:]],
                        "manager_ids": self.manager_ids(team.id),
                        "change": "created",
                    },
                )
            )
        for name, person in self.people.items():
            if person.kind != "user":
                continue
            events.append(
                (
                    USER_CREATED,
                    person.sub,
                    {
                        "id": person.sub,
                        "email": f"{name}@example.com",
                        "name": person.name,
                        "role": person.role,
                        "team_id": person.team_id,
                        "active": True,
                        "manager_ids": [
                            m for m in self.manager_ids(person.team_id) if m != person.sub
                        ],
                    },
                )
            )
        return events


def build_org(
    teams: Sequence[tuple[str, str | None, str | None]],
    people: Sequence[tuple[str, str, str | None]],
    *,
    scopes: dict[str, Iterable[str]] | None = None,
) -> Org:
    """`teams`: (name, parent name, leading manager's name), parents first; `people`: (name,
    role, team name). Principals get identity's visible teams: a manager the teams they lead
    and all below (their own team when they lead none), a rep their own team, an admin none
    listed (an admin sees every team anyway); `scopes` per role (none by default)."""
    role_scopes = {role: frozenset(s) for role, s in (scopes or {}).items()}
    team_ids = {name: str(uuid.uuid4()) for name, _, _ in teams}
    org_teams: dict[str, OrgTeam] = {}
    for name, parent, manager in teams:
        if parent is not None and parent not in org_teams:
            raise ValueError(f"team {name}: its parent {parent} must come first")
        org_teams[name] = OrgTeam(team_ids[name], name, parent, manager)
    known = {name for name, _, _ in people}
    for team in org_teams.values():
        if team.manager is not None and team.manager not in known:
            raise ValueError(f"team {team.name}: no person named {team.manager}")

    def below(roots: list[str]) -> frozenset[str]:
        out = set(roots)
        grew = True
        while grew:
            more = {t.name for t in org_teams.values() if t.parent in out} - out
            out |= more
            grew = bool(more)
        return frozenset(team_ids[n] for n in out)

    principals: dict[str, Principal] = {}
    for name, role, team_name in people:
        team_id = None if team_name is None else team_ids[team_name]
        own = frozenset() if team_id is None else frozenset({team_id})
        if role == "manager":
            led = [t.name for t in org_teams.values() if t.manager == name]
            visible = below(led) if led else own
        elif role == "rep":
            visible = own
        else:
            visible = frozenset()
        principals[name] = Principal(
            sub=str(uuid.uuid4()),
            kind="user",
            role=role,
            team_id=team_id,
            visible_team_ids=visible,
            scopes=role_scopes.get(role, frozenset()),
            name=name.replace("_", " ").title(),
        )
    return Org(org_teams, principals, role_scopes)


def standard_org(*, scopes: dict[str, Iterable[str]] | None = None) -> Org:
    """Two teams (north with a sub-team, south), a manager each, four reps and an admin."""
    return build_org(
        teams=[
            ("north", None, "manager_north"),
            ("north_sub", "north", None),
            ("south", None, "manager_south"),
        ],
        people=[
            ("admin", "admin", "north"),
            ("manager_north", "manager", "north"),
            ("manager_south", "manager", "south"),
            ("rep_a", "rep", "north"),
            ("rep_b", "rep", "north"),
            ("rep_sub", "rep", "north_sub"),
            ("rep_south", "rep", "south"),
        ],
        scopes=scopes,
    )
