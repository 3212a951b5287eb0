"""The stage pipeline: opportunities move through the stages of the settings, every move
recorded (from, to, when, by whom, days in the stage left); won needs an amount, lost a
reason; a manager reopens a closed one.

Stalled: an open opportunity is stalled once it has been in its stage longer than the
stage's usual time for its team, or is older than the team's usual signing cycle. Usual
times are learned (`recompute_norms`: the 80th percentile of the team's past times in the
stage, and of creation -> won) once 20 samples exist, the stage's expected days (their sum
for the cycle) before. Each open opportunity carries the moments it turns stalled
(`stage_due_at`, `cycle_due_at`, set when it is created or moves, and again when the norms are
recomputed), so the stalled list is one index range, however many opportunities there are.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities import customers_api
from opportunities.config import Settings
from opportunities.models import directory
from opportunities.pipeline import events, repository
from opportunities.pipeline.access import (
    can_see,
    require_change,
    require_manager,
    require_read,
    require_write,
)
from opportunities.pipeline.exceptions import OpportunityNotFound, WrongStage
from opportunities.pipeline.schemas import (
    BoardQuery,
    OpportunityCreate,
    OpportunityListQuery,
    OpportunityUpdate,
    Reopen,
    StageMove,
    StalledQuery,
)
from servicekit.auth import Principal
from servicekit.calls import CallerCalls
from servicekit.db import utcnow
from servicekit.errors import NotFound, ValidationFailed
from servicekit.ids import new_id
from servicekit.outbox import record_events
from servicekit.pagination import PageParams

_DAY = 86400.0
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def days_between(start: datetime, end: datetime) -> float:
    return round(max(0.0, (end - start).total_seconds()) / _DAY, 2)


def probability(settings: Settings, opportunity: Any) -> int:
    """The probability set by hand, else the stage's default."""
    if isinstance(opportunity, dict):
        given, stage_name = opportunity["probability"], opportunity["stage"]
    else:
        given, stage_name = opportunity.probability, opportunity.stage
    if given is not None:
        return int(given)
    stage = settings.stage(stage_name)
    return stage.probability if stage is not None else 0


def read(settings: Settings, opportunity: Any, now: datetime) -> dict[str, Any]:
    data = dict(opportunity) if isinstance(opportunity, dict) else dict(opportunity._mapping)
    data["probability_set"] = data["probability"] is not None
    data["probability"] = probability(settings, data)
    end = data["closed_at"] or now
    data["days_in_stage"] = days_between(data["stage_entered_at"], end)
    return data


def _emit(
    out: list[tuple[str, uuid.UUID, dict[str, Any]]],
    settings: Settings,
    type_: str,
    opportunity: dict[str, Any],
    **extra: Any,
) -> None:
    out.append(
        (
            type_,
            opportunity["id"],
            {**events.facts(opportunity, probability(settings, opportunity)), **extra},
        )
    )


async def due_times(
    session: AsyncSession,
    settings: Settings,
    team_id: uuid.UUID | None,
    stage: str,
    stage_entered_at: datetime,
    created_at: datetime,
) -> tuple[datetime, datetime]:
    """When an opportunity in `stage` turns stalled: the team's learned usual times, else the
    expected days."""
    stage_days, cycle_days = await repository.norm_days(session, team_id, stage)
    setting = settings.stage(stage)
    expected = (setting.expected_days if setting else None) or 0
    cycle_expected = sum(s.expected_days or 0 for s in settings.open_stages)
    return (
        stage_entered_at + timedelta(days=stage_days if stage_days is not None else expected),
        created_at + timedelta(days=cycle_days if cycle_days is not None else cycle_expected),
    )


def when(settings: Settings, given: datetime | None, earliest: datetime, field: str) -> datetime:
    """When a step happened: now, or the earlier moment given (not before `earliest`, not in
    the future, at most `max_backdate_days` back)."""
    now = utcnow()
    if given is None:
        return max(now, earliest)
    if given > now:
        raise ValidationFailed.field(field, "lies in the future")
    if given < now - timedelta(days=settings.max_backdate_days):
        raise ValidationFailed.field(
            field, f"lies more than {settings.max_backdate_days} days back"
        )
    if given < earliest:
        raise ValidationFailed.field(field, "lies before the step it follows")
    return given


def _open_stage(settings: Settings, name: str | None, field: str) -> str:
    if name is None:
        return settings.open_stages[0].name
    if name not in {s.name for s in settings.open_stages}:
        raise ValidationFailed.field(
            field, f"not an open stage ({', '.join(s.name for s in settings.open_stages)})"
        )
    return name


def stages(settings: Settings, principal: Principal) -> list[dict[str, Any]]:
    """The pipeline's stages in order (a key: with `opportunities:read`)."""
    require_read(principal)
    return [
        {
            "name": s.name,
            "order": i,
            "probability": s.probability,
            "expected_days": s.expected_days,
            "closed": s.name in ("won", "lost"),
        }
        for i, s in enumerate(settings.stages)
    ]


async def open_opportunity(
    session: AsyncSession,
    settings: Settings,
    actor: str | None,
    *,
    customer_id: uuid.UUID,
    name: str,
    owner_id: uuid.UUID,
    team_id: uuid.UUID | None,
    lead_id: uuid.UUID | None = None,
    source: str | None = None,
    region: str | None = None,
    stage: str | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Insert a new opportunity in its first (or given open) stage, with its first history
    row and its `opportunity.created` event; `at`: when it was opened (default now)."""
    recorded = utcnow()
    now = at or recorded
    stage = _open_stage(settings, stage, "stage")
    stage_due, cycle_due = await due_times(session, settings, team_id, stage, now, now)
    opportunity: dict[str, Any] = {
        "id": new_id(),
        "customer_id": customer_id,
        "lead_id": lead_id,
        "name": name,
        "owner_id": owner_id,
        "team_id": team_id,
        "source": source,
        "region": region,
        "amount": fields.get("amount"),
        "expected_close_on": fields.get("expected_close_on"),
        "stage": stage,
        "probability": fields.get("probability"),
        "next_action": fields.get("next_action"),
        "next_action_on": fields.get("next_action_on"),
        "risks": list(fields.get("risks") or []),
        "competitors": list(fields.get("competitors") or []),
        "lost_reason": None,
        "lost_to": None,
        "stage_entered_at": now,
        "closed_at": None,
        "won_at": None,
        "stage_due_at": stage_due,
        "cycle_due_at": cycle_due,
        "version": 1,
        "created_at": now,
        "updated_at": recorded,
        "created_by": actor,
    }
    await repository.insert(session, opportunity)
    await repository.record_change(
        session,
        {
            "opportunity_id": opportunity["id"],
            "from_stage": None,
            "to_stage": stage,
            "at": now,
            "recorded_at": recorded,
            "by": actor,
            "team_id": team_id,
            "days_in_previous": None,
            "note": "created",
        },
    )
    out: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    _emit(out, settings, events.OPPORTUNITY_CREATED, opportunity, created_by=actor)
    await record_events(session, out)
    return opportunity


async def _owner(
    session: AsyncSession, principal: Principal, owner_id: uuid.UUID | None
) -> tuple[uuid.UUID, uuid.UUID | None]:
    """(owner, their team): a rep owns what they open; a manager names a rep of their teams
    (or themself), an admin anyone active, a key must name one."""
    me = principal.user_id
    if owner_id is None or owner_id == me:
        if me is None:
            raise ValidationFailed.field("owner_id", "an integration names the owner")
        return me, uuid.UUID(principal.team_id) if principal.team_id else None
    if principal.kind == "user" and principal.is_rep:
        raise ValidationFailed.field("owner_id", "a rep opens opportunities for themselves")
    user = await directory.get_user(session, owner_id)
    if user is None or not user.active:
        raise ValidationFailed.field("owner_id", "no active user")
    if principal.is_manager and not principal.sees_team(user.team_id):
        raise ValidationFailed.field("owner_id", "the user is not in one of your teams")
    return user.id, user.team_id


async def create(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    calls: CallerCalls,
    body: OpportunityCreate,
) -> dict[str, Any]:
    """An opportunity for an existing customer the caller may see (asked of the customers
    service under the caller's authority)."""
    require_write(principal)
    owner_id, team_id = await _owner(session, principal, body.owner_id)
    stage = _open_stage(settings, body.stage, "stage")
    await customers_api.require_visible(calls, body.customer_id, "customer_id")
    return await open_opportunity(
        session,
        settings,
        principal.sub,
        customer_id=body.customer_id,
        name=body.name,
        owner_id=owner_id,
        team_id=team_id,
        stage=stage,
        **body.model_dump(
            include={
                "amount",
                "expected_close_on",
                "probability",
                "next_action",
                "next_action_on",
                "risks",
                "competitors",
            }
        ),
    )


async def get_visible(
    session: AsyncSession,
    principal: Principal,
    opportunity_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> dict[str, Any]:
    require_read(principal)
    row = await repository.get(session, opportunity_id, for_update=for_update)
    if row is None or not can_see(principal, row):
        raise OpportunityNotFound(opportunity_id)
    return dict(row._mapping)


async def changeable(
    session: AsyncSession, principal: Principal, opportunity_id: uuid.UUID
) -> dict[str, Any]:
    opportunity = await get_visible(session, principal, opportunity_id, for_update=True)
    require_change(principal, opportunity)
    return opportunity


async def update(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    opportunity: dict[str, Any],
    body: OpportunityUpdate,
) -> dict[str, Any]:
    """`opportunity`: locked, changeable, its ETag checked."""
    given = body.model_dump(exclude_unset=True)
    if opportunity["closed_at"] is not None and set(given) - {"next_action", "next_action_on"}:
        raise WrongStage("a closed opportunity changes only after a manager reopens it")
    changed = sorted(k for k, v in given.items() if opportunity[k] != v)
    if not changed:
        return opportunity
    for name in changed:
        opportunity[name] = given[name]
    opportunity["version"] += 1
    opportunity["updated_at"] = utcnow()
    await repository.update(session, opportunity)
    out: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    _emit(
        out,
        settings,
        events.OPPORTUNITY_UPDATED,
        opportunity,
        changed_fields=changed,
        by=principal.sub,
    )
    await record_events(session, out)
    return opportunity


async def _move(
    session: AsyncSession,
    settings: Settings,
    opportunity: dict[str, Any],
    to: str,
    by: str,
    note: str | None,
    out: list[tuple[str, uuid.UUID, dict[str, Any]]],
    at: datetime | None = None,
) -> float:
    recorded = utcnow()
    now = at or recorded
    previous = opportunity["stage"]
    days = days_between(opportunity["stage_entered_at"], now)
    await repository.record_change(
        session,
        {
            "opportunity_id": opportunity["id"],
            "from_stage": previous,
            "to_stage": to,
            "at": now,
            "recorded_at": recorded,
            "by": by,
            "team_id": opportunity["team_id"],
            "days_in_previous": Decimal(str(days)),
            "note": note,
        },
    )
    opportunity["stage"] = to
    opportunity["stage_entered_at"] = now
    # A probability set by hand belonged to the stage left.
    opportunity["probability"] = None
    opportunity["version"] += 1
    opportunity["updated_at"] = recorded
    if to in ("won", "lost"):
        opportunity["closed_at"] = now
        opportunity["won_at"] = now if to == "won" else None
        opportunity["stage_due_at"] = opportunity["cycle_due_at"] = None
    else:
        opportunity["closed_at"] = opportunity["won_at"] = None
        opportunity["stage_due_at"], opportunity["cycle_due_at"] = await due_times(
            session,
            settings,
            opportunity["team_id"],
            to,
            now,
            opportunity["created_at"],
        )
    await repository.update(session, opportunity)
    _emit(
        out,
        settings,
        events.OPPORTUNITY_STAGE_CHANGED,
        opportunity,
        from_stage=previous,
        to_stage=to,
        days_in_previous=days,
        by=by,
        backward=to not in ("won", "lost")
        and previous not in ("won", "lost")
        and settings.stage_order(to) < settings.stage_order(previous),
    )
    return days


async def move(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    opportunity: dict[str, Any],
    body: StageMove,
) -> dict[str, Any]:
    """To any stage, backward included (recorded as any move); won needs an amount (the
    one given, else the one set), lost a reason."""
    if settings.stage(body.stage) is None:
        raise ValidationFailed.field(
            "stage", f"not one of {', '.join(s.name for s in settings.stages)}"
        )
    if opportunity["closed_at"] is not None:
        raise WrongStage(f"the opportunity is {opportunity['stage']}; a manager reopens it first")
    if body.stage == opportunity["stage"]:
        raise WrongStage(f"the opportunity is in {body.stage} already")
    if body.stage == "won":
        amount = body.amount if body.amount is not None else opportunity["amount"]
        if amount is None:
            raise ValidationFailed.field("amount", "a won opportunity needs an amount")
        opportunity["amount"] = amount
    elif body.amount is not None:
        raise ValidationFailed.field("amount", "is given when the opportunity is won")
    if body.stage == "lost":
        if body.lost_reason is None:
            raise ValidationFailed.field("lost_reason", "a lost opportunity needs a reason")
        opportunity["lost_reason"], opportunity["lost_to"] = body.lost_reason, body.lost_to
    elif body.lost_reason is not None or body.lost_to is not None:
        raise ValidationFailed.field("lost_reason", "is given when the opportunity is lost")
    at = when(settings, body.at, opportunity["stage_entered_at"], "at")
    out: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    days = await _move(
        session, settings, opportunity, body.stage, principal.sub, body.note, out, at
    )
    if body.stage == "won":
        _emit(
            out,
            settings,
            events.OPPORTUNITY_WON,
            opportunity,
            cycle_days=days_between(opportunity["created_at"], opportunity["won_at"]),
            days_in_previous=days,
        )
    elif body.stage == "lost":
        _emit(
            out,
            settings,
            events.OPPORTUNITY_LOST,
            opportunity,
            lost_reason=body.lost_reason,
            lost_to=body.lost_to,
            days_in_previous=days,
        )
    await record_events(session, out)
    return opportunity


async def reopen(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    opportunity: dict[str, Any],
    body: Reopen,
) -> dict[str, Any]:
    require_manager(principal)
    if opportunity["closed_at"] is None:
        raise WrongStage("the opportunity is open")
    previous = opportunity["stage"]
    to = body.stage or await repository.stage_closed_from(session, opportunity["id"])
    to = _open_stage(settings, to, "stage")
    opportunity["lost_reason"] = opportunity["lost_to"] = None
    out: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    await _move(session, settings, opportunity, to, principal.sub, body.reason, out)
    _emit(
        out,
        settings,
        events.OPPORTUNITY_REOPENED,
        opportunity,
        from_stage=previous,
        reason=body.reason,
        by=principal.sub,
    )
    await record_events(session, out)
    return opportunity


async def hand_to_manager(
    session: AsyncSession, settings: Settings, rep_id: uuid.UUID, *, by: str, reason: str
) -> int:
    """A deactivated rep's open opportunities go to their nearest active manager (the one who
    sees the rep's team), staying in their team's pipeline, board and stalled list: a sales
    manager expects the deals on their own desk to hand on, not in an anonymous queue. Each
    move is logged and announced. With no active manager above the rep they stay where they
    are, on the team's board that its managers and admins see, and in the list of orphaned
    opportunities (`GET /api/v1/opportunities?orphaned=true`). Run again, the rep holds
    nothing open: the same deactivation changes nothing twice."""
    boss = await directory.manager_of(session, rep_id)
    if boss is None:
        return 0
    now = utcnow()
    rows = await repository.hand_over(session, rep_id, boss.id, now)
    out: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    log = []
    for row in rows:
        opportunity = dict(row._mapping)
        log.append(
            {
                "opportunity_id": row.id,
                "from_owner_id": rep_id,
                "to_owner_id": boss.id,
                "team_id": row.team_id,
                "by": by,
                "reason": reason,
                "at": now,
            }
        )
        _emit(
            out,
            settings,
            events.OPPORTUNITY_OWNER_CHANGED,
            opportunity,
            from_owner_id=rep_id,
            by=by,
            reason=reason,
        )
    await repository.log_owners(session, log)
    await record_events(session, out)
    return len(rows)


async def list_opportunities(
    session: AsyncSession, principal: Principal, settings: Settings, query: OpportunityListQuery
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the opportunities the caller may see, each as `OpportunityRead` sees it."""
    require_read(principal)
    rows, cursor = await repository.page(session, principal, query, directory)
    now = utcnow()
    return [read(settings, r, now) for r in rows], cursor


async def _teams(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID | None
) -> list[uuid.UUID] | None:
    """The team and its sub-teams, when the caller sees the team (404 otherwise)."""
    if team_id is None:
        return None
    visible = principal.kind == "key" or principal.is_admin or principal.sees_team(team_id)
    teams = await repository.known_tree(session, directory, team_id) if visible else []
    if not teams:
        raise NotFound(f"no team {team_id}")
    return teams


async def board(
    session: AsyncSession, principal: Principal, settings: Settings, query: BoardQuery
) -> dict[str, Any]:
    require_read(principal)
    teams = await _teams(session, principal, query.team_id)
    rows = await repository.board(session, principal, teams, query.limit)
    now = utcnow()
    totals: dict[str, tuple[int, Decimal]] = {}
    items: dict[str, list[dict[str, Any]]] = {}
    limit = query.limit
    # Per item only lookups and arithmetic: the stage defaults read once, the row unpacked
    # once (250 items; `probability` and `days_between` per item cost more than the query).
    defaults = {stage.name: stage.probability for stage in settings.stages}
    for (
        id_,
        name,
        customer_id,
        owner_id,
        amount,
        stage_name,
        set_probability,
        entered,
        close_on,
        action_on,
        stalled_at,
        rank,
        stage_count,
        stage_amount,
    ) in rows:
        if rank == 1:
            totals[stage_name] = (stage_count, Decimal(stage_amount).quantize(CENT))
        if rank > limit:
            continue
        items.setdefault(stage_name, []).append(
            {
                "id": id_,
                "name": name,
                "customer_id": customer_id,
                "owner_id": owner_id,
                "amount": amount,
                "probability": (
                    set_probability if set_probability is not None else defaults.get(stage_name, 0)
                ),
                "days_in_stage": round(max(0.0, (now - entered).total_seconds()) / _DAY, 2),
                "expected_close_on": close_on,
                "next_action_on": action_on,
                "stalled": stalled_at is not None and stalled_at <= now,
            }
        )
    columns = []
    all_count, all_amount, all_weighted = 0, ZERO, ZERO
    for stage in settings.open_stages:
        count, amount = totals.get(stage.name, (0, ZERO))
        weighted = (amount * stage.probability / 100).quantize(CENT)
        columns.append(
            {
                "stage": stage.name,
                "probability": stage.probability,
                "count": count,
                "amount": amount,
                "weighted_amount": weighted,
                "items": items.get(stage.name, []),
            }
        )
        all_count += count
        all_amount += amount
        all_weighted += weighted
    return {
        "team_id": query.team_id,
        "count": all_count,
        "amount": all_amount,
        "weighted_amount": all_weighted,
        "stages": columns,
    }


async def stalled(
    session: AsyncSession, principal: Principal, settings: Settings, query: StalledQuery
) -> tuple[list[dict[str, Any]], str | None]:
    require_read(principal)
    teams = await _teams(session, principal, query.team_id)
    now = utcnow()
    rows, cursor = await repository.stalled(
        session,
        principal,
        now,
        PageParams(query.limit, query.cursor),
        team_ids=teams,
        owner_id=query.owner_id,
    )
    items = []
    for r in rows:
        reasons = []
        for rule, since, due, learned in (
            ("time_in_stage", r.stage_entered_at, r.stage_due_at, r.stage_learned),
            ("cycle", r.created_at, r.cycle_due_at, r.cycle_learned),
        ):
            if due is None or due > now:
                continue
            reasons.append(
                {
                    "rule": rule,
                    "days": days_between(since, now),
                    "usual_days": days_between(since, due),
                    "over_by_days": days_between(due, now),
                    "basis": "learned" if learned else "expected",
                }
            )
        items.append(
            {
                "id": r.id,
                "name": r.name,
                "customer_id": r.customer_id,
                "owner_id": r.owner_id,
                "team_id": r.team_id,
                "stage": r.stage,
                "amount": r.amount,
                "stage_entered_at": r.stage_entered_at,
                "created_at": r.created_at,
                "stalled_since": r.stalled_at,
                "reasons": reasons,
            }
        )
    return items, cursor


async def refresh_norms(session: AsyncSession, settings: Settings) -> tuple[int, int]:
    """Learn the usual times again and move the open opportunities' due times to them:
    (norms learned, opportunities rescheduled)."""
    learned = await repository.recompute_norms(session, settings, utcnow())
    moved = await repository.reschedule(session, settings)
    return learned, moved
