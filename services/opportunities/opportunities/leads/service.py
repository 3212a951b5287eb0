"""The lead's life: scored on arrival and whenever its inputs change, then assigned (qualified)
or nurtured (under the threshold), contacted by its rep, converted or invalidated.

    new -> qualified | nurturing -> assigned -> contacted -> converted;  any -> invalid

`new` lasts only within the receiving request: a lead is scored as it arrives. A qualified
lead no rule places waits in the unassigned queue (or its rule's team's queue) with status
`qualified`. Every step is timestamped the first time the lead reaches it (the funnel's
steps); every assignment is logged; every change is an event in the same transaction.

Changes to a lead are made on a dict of its columns and written at the end of the request
(`Work.flush`), so that one lead and ten thousand go through the same rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.assignment import service as assignment
from opportunities.config import Settings
from opportunities.leads import events, repository
from opportunities.leads.access import (
    can_see,
    manages,
    require_change,
    require_read,
    require_write,
)
from opportunities.leads.exceptions import LeadNotFound, WrongState
from opportunities.leads.models import HELD_STATUSES
from opportunities.leads.schemas import (
    AssignBody,
    ContactedBody,
    InvalidateBody,
    LeadListQuery,
    LeadUpdate,
    RequalifyBody,
)
from opportunities.models import directory
from opportunities.scoring import repository as scoring_repository
from opportunities.scoring import service as scoring
from opportunities.scoring.rules import Scorer, input_errors
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.ids import ordered_uuids
from servicekit.normalize import normalize_region
from servicekit.outbox import Event

# The new leads of a large batch are placed and written this many at a time (`place_and_flush`).
PART = 2_000
# States in which a lead is not with a rep yet: scoring decides where it goes.
UNROUTED = frozenset({"new", "qualified", "nurturing"})
WITH_REP = frozenset(HELD_STATUSES)
CLOSED = frozenset({"converted", "invalid"})
CONTACT = frozenset({"company", "phone", "email", "region"})
# Who and why, in the assignment log and the events, when a deactivated rep's leads move.
SYSTEM = "system"
OWNER_DEACTIVATED = "owner_deactivated"


@dataclass
class Work:
    """One request's changes to leads: the leads themselves, and the events and assignment
    log rows they bring, written together by `flush`.

    A lead received by this request (`arrive`) is announced once, by `lead.received` with its
    facts as intake left them (`events.received`): its steps on arrival (scored, nurtured,
    assigned by a rule) are told by that event instead of an event each. Three events per
    lead were most of a 10,000-lead call's work (bench/README.md)."""

    now: datetime
    actor: str | None
    settings: Settings
    scorers: scoring.Scorers | None = None
    # The kind of principal acting (`lead.received`'s `by_kind`).
    actor_kind: str | None = None
    created: list[dict[str, Any]] = field(default_factory=list)
    changed: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[str, uuid.UUID, dict[str, Any]]] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    to_place: list[dict[str, Any]] = field(default_factory=list)
    scored: bool = False
    # Leads received by this request, by the identity of their dict (which the request holds
    # in `created`: a UUID's hash is a Python call, and each lead is looked up a few times).
    arriving: set[int] = field(default_factory=set)
    # The points of each distinct evaluation scored by this request, by the active model and
    # the challenger: a batch's inputs are a few options of a few criteria, repeated.
    points: dict[tuple[tuple[str, Any], ...], tuple[int, int | None]] = field(default_factory=dict)

    @cached_property
    def nurture_until(self) -> date:
        """A lead nurtured by this request is touched again on this day."""
        return (self.now + timedelta(days=self.settings.nurture_days)).date()

    def arrive(self, lead: dict[str, Any]) -> None:
        """A lead this request creates (one of `created`), scored by `scorers`: announced by
        one `lead.received` at `flush`."""
        self.arriving.add(id(lead))

    def announces(self, lead: dict[str, Any]) -> bool:
        """Whether `lead`'s steps get an event each: not a lead arriving with this request,
        whose `lead.received` tells them (a step's event is not even made for those)."""
        return id(lead) not in self.arriving

    def emit(self, type_: str, lead: dict[str, Any], *, amount: Any = None, **extra: Any) -> None:
        if id(lead) in self.arriving:
            return  # a step on arrival: the lead's `lead.received` tells it
        self.events.append((type_, lead["id"], {**events.facts(lead, amount), **extra}))

    def touch(self, lead: dict[str, Any]) -> None:
        """Mark an existing lead changed (written, its version bumped once, at flush)."""
        if lead["id"] not in self.changed:
            self.changed[lead["id"]] = lead
            lead["version"] += 1
            lead["updated_at"] = self.now

    @staticmethod
    def identify(leads: list[dict[str, Any]]) -> None:
        """Give new leads their ids (time-ordered, in the order given) as they are written,
        not as they are made: a large batch's ids are then made while PostgreSQL stores its
        first leads, instead of before any of them is sent."""
        for lead, lead_id in zip(leads, ordered_uuids(len(leads)), strict=True):
            lead["id"] = lead_id

    def release(self) -> None:
        """Let go of the request's leads, events and log rows, once they are written."""
        self.created.clear()
        self.changed.clear()
        self.events.clear()
        self.assignments.clear()
        self.arriving.clear()

    def all_events(self) -> list[tuple[str, uuid.UUID, dict[str, Any]]]:
        """The request's events: each received lead's `lead.received` first."""
        if self.arriving:
            arriving, self.arriving = self.arriving, set()
            assert self.scorers is not None and self.actor_kind is not None
            challenger = self.scorers.challenger
            by_kind, version = self.actor_kind, self.scorers.active.version
            beside = None if challenger is None else challenger.version
            # Called directly: through a `functools.partial` with keywords, each call would
            # merge them into a new dict (two thirds more time for 10,000 leads).
            self.events[:0] = [
                (
                    events.LEAD_RECEIVED,
                    lead["id"],
                    events.received(
                        lead, by_kind=by_kind, model_version=version, challenger_version=beside
                    ),
                )
                for lead in self.created
                if id(lead) in arriving
            ]
        return self.events

    async def flush(
        self,
        session: AsyncSession,
        parts: Iterable[list[dict[str, Any]]] | None = None,
        *,
        meanwhile: Callable[[], None] | None = None,
    ) -> None:
        """Write it all; `parts`: the new leads in parts, each made ready as it is asked for
        (`place_and_flush`), else all of them at once; `meanwhile`: the caller's own work,
        done while PostgreSQL stores the events (`repository.write`)."""
        if parts is None:
            self.identify(self.created)
        await repository.write(
            session,
            [self.created] if parts is None else parts,
            list(self.changed.values()),
            self.assignments,
            self.all_events,
            meanwhile=meanwhile,
        )
        if self.scored and self.scorers is not None:
            await scoring.used(session, self.scorers)


def as_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def normal_region(region: str | None) -> str | None:
    return normalize_region(region) if region else None


def check_inputs(scorers: scoring.Scorers, evaluation: dict[str, Any], path: str) -> None:
    """422 naming each input no scoring model knows."""
    errors = input_errors(scorers.all, evaluation)
    if errors:
        raise ValidationFailed(
            "; ".join(f"{path}.{e}" for e in errors),
            errors=[
                {"loc": [*path.split("."), e.split(":", 1)[0]], "msg": e.split(": ", 1)[1]}
                for e in errors
            ],
        )


def check_source(settings: Settings, source: str, path: str = "source") -> None:
    if source not in settings.lead_sources:
        raise ValidationFailed.field(path, f"not one of {', '.join(settings.lead_sources)}")


def score(work: Work, lead: dict[str, Any]) -> None:
    """Score by the active model (which decides) and the challenger (recorded beside it)."""
    assert work.scorers is not None
    active, challenger = work.scorers.active, work.scorers.challenger
    points, c_points = _points(work, lead["evaluation"])
    lead["score"] = points
    lead["qualified"] = active.qualifies(points)
    lead["model_id"] = active.id
    if challenger is None:
        lead["challenger_model_id"] = lead["challenger_score"] = None
        lead["challenger_qualified"] = None
    else:
        assert c_points is not None
        lead["challenger_model_id"] = challenger.id
        lead["challenger_score"] = c_points
        lead["challenger_qualified"] = challenger.qualifies(c_points)
    work.scored = True
    if not work.announces(lead):
        return
    beside = None
    if challenger is not None:
        beside = {
            "model_id": challenger.id,
            "version": challenger.version,
            "score": lead["challenger_score"],
            "qualified": lead["challenger_qualified"],
        }
    work.emit(
        events.LEAD_SCORED,
        lead,
        at=work.now,
        model_id=active.id,
        model_version=active.version,
        challenger=beside,
    )


def _points(work: Work, evaluation: dict[str, Any]) -> tuple[int, int | None]:
    """The points of `evaluation` by the active model and the challenger (None without one),
    each distinct evaluation reckoned once a request."""
    assert work.scorers is not None
    active, challenger = work.scorers.active, work.scorers.challenger
    key = tuple(evaluation.items())
    try:
        scored = work.points.get(key)
        keep = True
    except TypeError:  # a value that is not text (inputs are validated as text): not kept
        scored, keep = None, False
    if scored is None:
        scored = (
            active.points(evaluation),
            None if challenger is None else challenger.points(evaluation),
        )
        if keep:
            work.points[key] = scored
    return scored


def route(work: Work, lead: dict[str, Any]) -> None:
    """A scored lead not yet with a rep: qualified ones go to assignment, others to nurture."""
    if lead["status"] not in UNROUTED:
        return
    if lead["qualified"]:
        if lead["qualified_at"] is None:
            lead["qualified_at"] = work.now
        lead["status"] = "qualified"
        lead["next_touch_on"] = None
        work.to_place.append(lead)
        return
    lead["status"] = "nurturing"
    lead["nurtured_at"] = work.now
    lead["next_touch_on"] = work.nurture_until
    lead["owner_id"] = lead["team_id"] = lead["rule_id"] = None
    if work.announces(lead):
        work.emit(events.LEAD_NURTURED, lead, at=work.now, next_touch_on=lead["next_touch_on"])


def assign(
    work: Work,
    lead: dict[str, Any],
    owner_id: uuid.UUID,
    team_id: uuid.UUID | None,
    *,
    rule_id: uuid.UUID | None,
    by: str | None,
    reason: str,
) -> None:
    previous = lead["owner_id"]
    lead["owner_id"], lead["team_id"], lead["rule_id"] = owner_id, team_id, rule_id
    if lead["status"] in UNROUTED:
        lead["status"] = "assigned"
        lead["next_touch_on"] = None
    if lead["assigned_at"] is None:
        lead["assigned_at"] = work.now
    _logged(work, lead, events.LEAD_ASSIGNED, previous, by=by, reason=reason)


def _logged(
    work: Work,
    lead: dict[str, Any],
    type_: str,
    previous: uuid.UUID | None,
    *,
    by: str | None,
    reason: str,
) -> None:
    """The lead's move from `previous` to its owner now: logged and announced."""
    work.assignments.append(
        {
            "lead_id": lead["id"],
            "from_owner_id": previous,
            "to_owner_id": lead["owner_id"],
            "team_id": lead["team_id"],
            "rule_id": lead["rule_id"],
            "by": by,
            "reason": reason,
            "at": work.now,
        }
    )
    if work.announces(lead):
        work.emit(
            type_,
            lead,
            at=work.now,
            from_owner_id=previous,
            rule_id=lead["rule_id"],
            by=by,
            reason=reason,
        )


async def place_and_flush(
    session: AsyncSession,
    work: Work,
    *,
    meanwhile: Callable[[], None] | None = None,
    placer: assignment.Placer | None = None,
) -> None:
    """Assign the request's qualified leads by the rules (`assignment.Placer`: one pass for
    all of them; `placer`: one loaded ahead, used when it covers them), then write it all
    (`Work.flush`). The new leads are placed and written a part at a time: PostgreSQL stores
    each part while the next is placed, so that a large batch's writes start once its first
    part has its reps, not its last. They are placed in the order received, then the
    request's changed leads, so round robin and least load give each lead the rep one pass
    in that order would."""
    leads, work.to_place = work.to_place, []
    pairs = _pairs(leads)
    if placer is None or not placer.covers(pairs):
        placer = await assignment.Placer.load(session, pairs)
    waiting = {id(lead) for lead in leads}

    def parts() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(work.created), PART):
            part = work.created[start : start + PART]
            work.identify(part)
            _placed(work, placer, [lead for lead in part if id(lead) in waiting])
            yield part
        new = {id(lead) for lead in work.created}
        _placed(work, placer, [lead for lead in leads if id(lead) not in new])
        leads.clear()  # placed: `work` holds them until they are written

    await work.flush(session, parts(), meanwhile=meanwhile)
    await placer.save(session)


def _pairs(leads: Iterable[dict[str, Any]]) -> list[tuple[str | None, str | None]]:
    return [(lead["region"], lead["industry"]) for lead in leads]


def _placed(work: Work, placer: assignment.Placer, leads: list[dict[str, Any]]) -> None:
    for lead, placed in zip(leads, placer.place(_pairs(leads)), strict=True):
        if placed.owner_id is None:
            # No rule, or a rule whose team has no active rep: that queue.
            lead["owner_id"], lead["team_id"], lead["rule_id"] = (
                None,
                placed.team_id,
                placed.rule_id,
            )
            continue
        assign(
            work,
            lead,
            placed.owner_id,
            placed.team_id,
            rule_id=placed.rule_id,
            by=None,
            reason="rule",
        )


async def hand_back(session: AsyncSession, settings: Settings, rep_id: uuid.UUID) -> int:
    """A deactivated rep's open leads (assigned, contacted) go back through assignment: the
    rules and their team's active reps place them again; one no rule places (or whose team
    has no active rep left) waits in that queue as `qualified`, its funnel times kept. Each
    move is logged and announced (`by` system, reason `owner_deactivated`). Run again, it
    finds nothing left with the rep: the same deactivation changes nothing twice."""
    leads = [as_dict(row) for row in await repository.held_by(session, rep_id)]
    if not leads:
        return 0
    work = Work(utcnow(), SYSTEM, settings)
    placements = await assignment.place(session, _pairs(leads))
    for lead, placed in zip(leads, placements, strict=True):
        work.touch(lead)
        if placed.owner_id is not None:
            assign(
                work,
                lead,
                placed.owner_id,
                placed.team_id,
                rule_id=placed.rule_id,
                by=SYSTEM,
                reason=OWNER_DEACTIVATED,
            )
            continue
        lead.update(
            owner_id=None, team_id=placed.team_id, rule_id=placed.rule_id, status="qualified"
        )
        _logged(work, lead, events.LEAD_UNASSIGNED, rep_id, by=SYSTEM, reason=OWNER_DEACTIVATED)
    await work.flush(session)
    return len(leads)


def content_changes(lead: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """The content fields whose given value differs from the lead's (the lead is changed)."""
    changed = []
    for name, value in given.items():
        if name not in repository.CONTENT:
            continue
        if name == "region":
            value = normal_region(value)
        if lead[name] != value:
            lead[name] = value
            changed.append(name)
    return changed


# --- reading ---------------------------------------------------------------------------------


async def explainers(session: AsyncSession, leads: Iterable[Any]) -> dict[uuid.UUID, Scorer]:
    """The models that scored these leads (rows or dicts; a handful per page), as scorers."""
    ids: set[uuid.UUID] = set()
    for lead in leads:
        data = lead if isinstance(lead, dict) else lead._mapping
        ids.update(i for i in (data["model_id"], data["challenger_model_id"]) if i is not None)
    models = await scoring_repository.by_ids(session, ids)
    return {model_id: Scorer.of(row) for model_id, row in models.items()}


def read(lead: Any, scorers: dict[uuid.UUID, Scorer]) -> dict[str, Any]:
    """The lead as `LeadRead` sees it, its scores explained (models never change once used,
    so the explanation is the one given when it was scored)."""
    data = dict(lead) if isinstance(lead, dict) else as_dict(lead)
    for column, out in (("model_id", "score"), ("challenger_model_id", "challenger_score")):
        scorer = scorers.get(data[column]) if data[column] is not None else None
        data[out] = None if scorer is None else scorer.explain(data["evaluation"])
    for internal in ("model_id", "qualified", "challenger_model_id", "challenger_qualified"):
        data.pop(internal, None)
    data.pop("created_by", None)
    return data


async def get_visible(
    session: AsyncSession, principal: Principal, lead_id: uuid.UUID, *, for_update: bool = False
) -> dict[str, Any]:
    row = await repository.get(session, lead_id, for_update=for_update)
    if row is None or not can_see(principal, row):
        raise LeadNotFound(lead_id)
    return as_dict(row)


async def get_lead(
    session: AsyncSession, principal: Principal, lead_id: uuid.UUID
) -> dict[str, Any]:
    require_read(principal)
    return await get_visible(session, principal, lead_id)


async def list_leads(
    session: AsyncSession, principal: Principal, query: LeadListQuery
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the leads the caller may see, each as `LeadRead` sees it."""
    require_read(principal)
    rows, cursor = await repository.page(session, principal, query)
    scorers = await explainers(session, rows)
    return [read(r, scorers) for r in rows], cursor


async def changeable(
    session: AsyncSession, principal: Principal, lead_id: uuid.UUID
) -> dict[str, Any]:
    """The lead, locked for a change: 404 when invisible, 403 when not the caller's to change
    (a key without `leads:write`: 403 before any lead is looked up)."""
    require_write(principal)
    lead = await get_visible(session, principal, lead_id, for_update=True)
    require_change(principal, lead)
    return lead


def _open(lead: dict[str, Any], action: str) -> None:
    if lead["status"] in CLOSED:
        raise WrongState(f"the lead is {lead['status']}; it cannot be {action}")


# --- one lead's changes ------------------------------------------------------------------------


async def update_lead(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    lead: dict[str, Any],
    body: LeadUpdate,
) -> dict[str, Any]:
    """`lead`: locked and changeable, its ETag checked. New inputs rescore it."""
    _open(lead, "changed")
    given = body.model_dump(exclude_unset=True)
    work = Work(utcnow(), principal.sub, settings)
    if "evaluation" in given:
        work.scorers = await scoring.scorers(session)
        check_inputs(work.scorers, given["evaluation"], "evaluation")
    changed = content_changes(lead, given)
    if "next_touch_on" in given and given["next_touch_on"] != lead["next_touch_on"]:
        if lead["status"] != "nurturing":
            raise ValidationFailed.field("next_touch_on", "only a nurtured lead has one")
        lead["next_touch_on"] = given["next_touch_on"]
        changed.append("next_touch_on")
    if not changed:
        return lead
    work.touch(lead)
    work.emit(events.LEAD_UPDATED, lead, changed_fields=changed)
    if "evaluation" in changed:
        score(work, lead)
        route(work, lead)
    await place_and_flush(session, work)
    return lead


async def mark_contacted(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    lead: dict[str, Any],
    body: ContactedBody,
) -> dict[str, Any]:
    """The assigned rep's first contact. Recorded once: again, it changes nothing."""
    if principal.kind != "user" or lead["owner_id"] != principal.user_id:
        raise Forbidden("the first contact is recorded by the lead's rep")
    if lead["status"] == "contacted":
        return lead
    if lead["status"] != "assigned":
        raise WrongState(f"the lead is {lead['status']}; only an assigned lead is contacted")
    work = Work(utcnow(), principal.sub, settings)
    at = body.at or work.now
    if at > work.now:
        raise ValidationFailed.field("at", "lies in the future")
    if at < lead["received_at"]:
        raise ValidationFailed.field("at", "lies before the lead was received")
    record_contact(work, lead, at, by=principal.sub, note=body.note)
    await work.flush(session)
    return lead


def record_contact(
    work: Work,
    lead: dict[str, Any],
    at: datetime,
    *,
    by: str | None,
    note: str | None = None,
    visit_id: str | None = None,
) -> None:
    work.touch(lead)
    lead["status"] = "contacted"
    lead["contacted_at"] = at
    work.emit(events.LEAD_CONTACTED, lead, at=at, by=by, note=note, visit_id=visit_id)


async def invalidate(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    lead: dict[str, Any],
    body: InvalidateBody,
) -> dict[str, Any]:
    """Spam, a duplicate, unreachable, no need: the lead leaves every queue for good."""
    _open(lead, "invalidated")
    work = Work(utcnow(), principal.sub, settings)
    previous = lead["status"]
    work.touch(lead)
    lead.update(
        status="invalid",
        invalid_reason=body.reason,
        invalid_note=body.note,
        invalidated_at=work.now,
        next_touch_on=None,
    )
    work.emit(
        events.LEAD_INVALIDATED,
        lead,
        at=work.now,
        reason=body.reason,
        note=body.note,
        previous_status=previous,
        by=principal.sub,
    )
    await work.flush(session)
    return lead


async def requalify(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    lead: dict[str, Any],
    body: RequalifyBody,
) -> dict[str, Any]:
    """Score a nurtured lead again (with new inputs, when given): qualified, it is assigned;
    still under the threshold, it stays in nurture with a new next touch."""
    if not manages(principal):
        raise Forbidden("nurtured leads are requalified by managers and admins")
    if lead["status"] != "nurturing":
        raise WrongState(f"the lead is {lead['status']}; only a nurtured lead is requalified")
    work = Work(utcnow(), principal.sub, settings, await scoring.scorers(session))
    work.touch(lead)
    if body.evaluation is not None:
        check_inputs(work.scorers, body.evaluation, "evaluation")  # type: ignore[arg-type]
        if content_changes(lead, {"evaluation": body.evaluation}):
            work.emit(events.LEAD_UPDATED, lead, changed_fields=["evaluation"])
    score(work, lead)
    route(work, lead)
    await place_and_flush(session, work)
    return lead


async def assign_to(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    lead: dict[str, Any],
    body: AssignBody,
) -> dict[str, Any]:
    """A manager's (or admin's) assignment or reassignment to an active rep of their teams."""
    if principal.kind != "user" or not (principal.is_manager or principal.is_admin):
        raise Forbidden("leads are assigned by managers and admins")
    _open(lead, "assigned")
    rep = await directory.get_user(session, body.owner_id)
    if rep is None or not rep.is_rep:
        raise ValidationFailed.field("owner_id", "not a rep")
    if not rep.active:
        raise ValidationFailed.field("owner_id", "the rep is deactivated")
    if principal.is_manager and not principal.sees_team(rep.team_id):
        raise ValidationFailed.field("owner_id", "the rep is not in one of your teams")
    if lead["owner_id"] == rep.id:
        return lead
    work = Work(utcnow(), principal.sub, settings)
    work.touch(lead)
    reason = body.reason or ("reassigned" if lead["owner_id"] else "assigned by a manager")
    assign(work, lead, rep.id, rep.team_id, rule_id=None, by=principal.sub, reason=reason)
    await work.flush(session)
    return lead


async def contacted_by_visit(session: AsyncSession, event: Event, settings: Settings) -> None:
    """A completed visit to a lead's customer by its rep is the lead's first contact."""
    data = event.data
    try:
        customer_id = uuid.UUID(str(data["customer_id"]))
        rep = data.get("rep_id") or data.get("owner_id") or data.get("user_id")
        rep_id = None if rep is None else uuid.UUID(str(rep))
    except (KeyError, ValueError):
        return
    leads = await repository.assigned_to_customer(session, customer_id, rep_id)
    if not leads:
        return
    at = _when(data.get("completed_at") or data.get("checked_out_at"), event.time)
    work = Work(utcnow(), None if rep_id is None else str(rep_id), settings)
    for row in leads:
        lead = as_dict(row)
        record_contact(
            work, lead, max(at, lead["assigned_at"] or at), by=work.actor, visit_id=event.subject
        )
    await work.flush(session)


def _when(value: Any, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return default
        return parsed if parsed.tzinfo is not None else default
    return default
