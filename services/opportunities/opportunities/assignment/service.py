"""Assignment: which rep a qualified lead goes to, by the rules kept as data.

Rules are tried by position; the first whose region and industry match (null: any) names the
team. Within that team and its sub-teams the active reps take leads by round robin (in id
order, after the rule's last rep) or by least open load (leads in hand plus open
opportunities; ties by id). A rule whose team has no active rep leaves the lead in that team's
queue; a lead no rule matches waits in the unassigned queue that managers see.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.assignment import repository
from opportunities.assignment.exceptions import RuleNotFound
from opportunities.assignment.schemas import AssignmentRuleCreate, AssignmentRuleUpdate
from opportunities.models import directory
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.directory import DirectoryUser
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.ids import new_id
from servicekit.normalize import normalize_region

WRITE_SCOPE = "leads:write"


@dataclass(frozen=True, slots=True)
class Placement:
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    rule_id: uuid.UUID | None


UNASSIGNED = Placement(None, None, None)


def industry_key(industry: str | None) -> str | None:
    return industry.strip().casefold() or None if industry else None


def _matches(rule: Any, region: str | None, industry: str | None) -> bool:
    return (rule.region is None or rule.region == region) and (
        rule.industry is None or rule.industry == industry
    )


class _Team:
    """One rule's reps during a batch: round robin's place, or everyone's load."""

    def __init__(self, rule: Any, reps: list[DirectoryUser], load: dict[uuid.UUID, int]):
        self.rule = rule
        self.reps = reps
        self.ids = [r.id for r in reps]
        self.load = load
        self.last = rule.last_owner_id

    def next(self) -> DirectoryUser | None:
        if not self.reps:
            return None
        if self.rule.strategy == "least_load":
            rep = min(self.reps, key=lambda r: (self.load.get(r.id, 0), r.id))
            self.load[rep.id] = self.load.get(rep.id, 0) + 1
            return rep
        at = 0 if self.last is None else bisect.bisect_right(self.ids, self.last)
        rep = self.reps[at % len(self.reps)]
        self.last = rep.id
        return rep


class Placer:
    """Where a batch's leads go: the rules (locked until commit), their teams' active reps and
    those reps' open load read once (`load`), then the leads placed in order (`place`, which
    may be called part by part: round robin and least load go on from the last part), and
    round robin's place kept for the next batch (`save`)."""

    def __init__(self, rules: list[Any], teams: dict[uuid.UUID, _Team]) -> None:
        self.rules = rules
        self.teams = teams
        # Whether the rules were read (`load` with no leads reads nothing).
        self.loaded = False
        # A batch holds few distinct (region, industry) pairs: each is matched once.
        self.rule_of: dict[tuple[str | None, str | None], Any | None] = {}

    @classmethod
    async def load(
        cls, session: AsyncSession, leads: Sequence[tuple[str | None, str | None]]
    ) -> Placer:
        """Read what placing `leads` ((region, industry), region normalised) needs: one pass
        over the rules, one directory read of their teams' reps, one load count."""
        placer = cls([], {})
        if not leads:
            return placer
        placer.rules = await repository.rules(session, active_only=True, lock=True)
        placer.loaded = True
        used = {r.id: r for r in map(placer.rule, dict.fromkeys(leads)) if r is not None}
        reps_of = await directory.reps_of_teams(session, {r.team_id for r in used.values()})
        reps_by_rule: dict[uuid.UUID, list[DirectoryUser]] = {
            rule.id: reps_of[rule.team_id] for rule in used.values()
        }
        needs_load = {
            rep.id
            for rule in used.values()
            if rule.strategy == "least_load"
            for rep in reps_by_rule[rule.id]
        }
        load = await repository.open_load(session, needs_load)
        placer.teams = {rule.id: _Team(rule, reps_by_rule[rule.id], load) for rule in used.values()}
        return placer

    def covers(self, leads: Sequence[tuple[str | None, str | None]]) -> bool:
        """Whether `load` read what placing `leads` needs (the reps of each rule they match):
        a placer may be loaded ahead, for the pairs a batch may place."""
        if not leads:
            return True
        return self.loaded and all(
            (rule := self.rule(pair)) is None or rule.id in self.teams
            for pair in dict.fromkeys(leads)
        )

    def rule(self, pair: tuple[str | None, str | None]) -> Any | None:
        if pair not in self.rule_of:
            region, key = pair[0], industry_key(pair[1])
            self.rule_of[pair] = next((r for r in self.rules if _matches(r, region, key)), None)
        return self.rule_of[pair]

    def place(self, leads: Sequence[tuple[str | None, str | None]]) -> list[Placement]:
        """Where each of `leads` goes, in order (each one of those `load` was given)."""
        out: list[Placement] = []
        for pair in leads:
            rule = self.rule(pair)
            if rule is None:
                out.append(UNASSIGNED)
                continue
            rep = self.teams[rule.id].next()
            if rep is None:
                out.append(Placement(None, rule.team_id, rule.id))
            else:
                out.append(Placement(rep.id, rep.team_id, rule.id))
        return out

    async def save(self, session: AsyncSession) -> None:
        """Keep each round robin's place: the rule's next batch goes on after its last rep."""
        await repository.move_pointers(
            session,
            {
                rule_id: team.last
                for rule_id, team in self.teams.items()
                if team.rule.strategy == "round_robin" and team.last != team.rule.last_owner_id
            },
        )


async def place(
    session: AsyncSession, leads: Sequence[tuple[str | None, str | None]]
) -> list[Placement]:
    """Where each of `leads` ((region, industry), region normalised) goes (`Placer`)."""
    if not leads:
        return []
    placer = await Placer.load(session, leads)
    out = placer.place(leads)
    await placer.save(session)
    return out


# --- the rules as data -----------------------------------------------------------------------


def require_read(principal: Principal) -> None:
    if principal.kind == "key":
        principal.require_scope("leads:read")
    elif principal.is_rep:
        raise Forbidden("assignment rules are for managers and admins")


def require_write(principal: Principal) -> None:
    if principal.kind == "key" or not principal.is_admin:
        raise Forbidden("only admins change assignment rules")


async def _known_team(session: AsyncSession, team_id: uuid.UUID) -> None:
    if await directory.get_team(session, team_id) is None:
        raise ValidationFailed.field("team_id", "unknown team")


def _normal(values: dict[str, Any]) -> dict[str, Any]:
    if values.get("region") is not None:
        values["region"] = normalize_region(values["region"])
    if "industry" in values:
        values["industry"] = industry_key(values["industry"])
    return values


async def list_rules(session: AsyncSession, principal: Principal) -> list[Any]:
    require_read(principal)
    return await repository.rules(session, active_only=False)


async def get_rule(session: AsyncSession, principal: Principal, rule_id: uuid.UUID) -> Any:
    require_read(principal)
    rule = await repository.get(session, rule_id)
    if rule is None:
        raise RuleNotFound(rule_id)
    return rule


async def create_rule(
    session: AsyncSession, principal: Principal, body: AssignmentRuleCreate
) -> Any:
    require_write(principal)
    await _known_team(session, body.team_id)
    now = utcnow()
    values = _normal(body.model_dump())
    if values["position"] is None:
        values["position"] = await repository.last_position(session) + 10
    values.update(id=new_id(), created_at=now, updated_at=now, created_by=principal.sub)
    return await repository.insert(session, values)


async def update_rule(
    session: AsyncSession, principal: Principal, rule: Any, body: AssignmentRuleUpdate
) -> Any:
    """`rule` is the locked row (its ETag already checked)."""
    require_write(principal)
    values = body.model_dump(exclude_unset=True)
    if "team_id" in values:
        await _known_team(session, values["team_id"])
    values = _normal(values)
    if values.get("team_id", rule.team_id) != rule.team_id:
        values["last_owner_id"] = None  # round robin starts over in the new team
    values["updated_at"] = utcnow()
    return await repository.update(session, rule.id, values)


async def changeable_rule(session: AsyncSession, principal: Principal, rule_id: uuid.UUID) -> Any:
    """The rule, locked for a change: 404 when there is none, 403 unless an admin asks."""
    require_read(principal)
    rule = await repository.get(session, rule_id, for_update=True)
    if rule is None:
        raise RuleNotFound(rule_id)
    require_write(principal)
    return rule


async def delete_rule(session: AsyncSession, principal: Principal, rule: Any) -> None:
    require_write(principal)
    await repository.delete(session, rule.id)
