"""Lead intake: one lead, or up to 10,000 a call (JSON `{"rows": [...]}` or CSV), one outcome
per row (`created`, `updated`, `unchanged`, `error` with the reason); a bad row never blocks
the good ones.

`source` + `external_id` name a lead: pushed again (in a later call, in the same call, or by
a concurrent call) it is the same lead, updated with the fields given when they differ.
Concurrent calls for one source take turns (`repository.lock_sources`), so the leads a call
finds missing are still missing when it inserts them.

The work is set-based whatever the row count: one statement finds the known leads, one
matches customers (`matching`), the models score in memory, one pass of the assignment rules
places the qualified leads, and the leads, the assignment log and the events go in by COPY.

CSV: a header row; the lead's fields by name, the evaluation inputs as `evaluation.<criterion>`
and free attributes as `attributes.<name>` (text); an empty cell sets nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from opportunities.assignment import service as assignment
from opportunities.config import Settings
from opportunities.leads import events, repository
from opportunities.leads.access import require_write
from opportunities.leads.exceptions import WrongState
from opportunities.leads.schemas import (
    ATTRIBUTES_MAX_BYTES,
    ATTRIBUTES_MAX_DEPTH,
    CleanLeadIn,
    LeadIn,
)
from opportunities.leads.service import (
    CLOSED,
    CONTACT,
    Work,
    as_dict,
    check_inputs,
    check_source,
    content_changes,
    normal_region,
    place_and_flush,
    route,
    score,
)
from opportunities.matching.service import match_customers
from opportunities.scoring import service as scoring
from opportunities.scoring.rules import InputCheck
from servicekit import bulk
from servicekit.auth import Principal
from servicekit.csvfiles import CSV_MEDIA_TYPES, JSON_MEDIA_TYPES, media_type, read_rows
from servicekit.db import utcnow
from servicekit.errors import ValidationFailed, validation_text
from servicekit.fields import json_fits
from servicekit.inputs import may_hold_refusals, row_refusal
from servicekit.normalize import MatchKeys

T = TypeVar("T")
MAX_ROWS = 10_000
_validate: Callable[[Any], LeadIn] = LeadIn.__pydantic_validator__.validate_python
_validate_clean: Callable[[Any], LeadIn] = CleanLeadIn.__pydantic_validator__.validate_python
_EVALUATION = "evaluation."
NEEDS_A_NAME = "a new lead needs its company or its contact_name"
_ATTRIBUTES = "attributes."
# Scoring yields to the event loop after this many leads, for the statements sent beside it;
# a call of fewer good rows reads what placing needs after scoring, only if it places a lead.
_TURN = 500


class _CleanBody(BaseModel):
    """A JSON bulk body whose rows all pass `CleanLeadIn` (`validated_body`); other top-level
    keys are ignored, as `read_rows` does."""

    rows: Annotated[list[CleanLeadIn], Field(max_length=MAX_ROWS)]


_validate_body: Callable[[bytes], _CleanBody] = _CleanBody.__pydantic_validator__.validate_json


@dataclass(slots=True)
class _Row:
    index: int
    data: LeadIn | None
    lead: dict[str, Any] | None = None
    outcome: str | None = None
    error: str | None = None

    def fail(self, message: str) -> None:
        self.outcome, self.error = "error", message

    def result(self) -> dict[str, Any]:
        lead = self.lead
        return {
            "row": self.index,
            "outcome": self.outcome,
            "id": None if lead is None or self.outcome == "error" else lead["id"],
            "status": None if lead is None or self.outcome == "error" else lead["status"],
            "error": self.error,
        }


def parse_rows(body: bytes, content_type: str | None) -> list[Any]:
    """The rows of a bulk body (JSON or CSV); a CSV row's `evaluation.<criterion>` and
    `attributes.<name>` cells gathered into their objects."""
    rows = read_rows(body, content_type, max_rows=MAX_ROWS)
    if media_type(content_type) not in CSV_MEDIA_TYPES:
        return rows
    return [_csv_row(row) for row in rows]


def _csv_row(record: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key.startswith(_EVALUATION):
            row.setdefault("evaluation", {})[key[len(_EVALUATION) :]] = value.strip()
        elif key.startswith(_ATTRIBUTES):
            row.setdefault("attributes", {})[key[len(_ATTRIBUTES) :]] = value
        else:
            row[key] = value
    return row


def _rows(
    raw: Sequence[Any], settings: Settings, scorers: scoring.Scorers, *, suspect: bool
) -> list[_Row]:
    """`suspect`: the body may hold a value no field can store (each row is looked through
    and validated as `LeadIn`; otherwise none is, and the rows are validated as
    `CleanLeadIn`: walking 10,000 rows, or checking each of their strings, cost more than
    validating them)."""
    out = []
    checked = _Checks(settings, scorers)
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            row = _Row(i, None)
            row.fail("row: must be an object")
            out.append(row)
            continue
        if suspect and (refusal := row_refusal(item)):
            row = _Row(i, None)
            row.fail(refusal)
            out.append(row)
            continue
        try:
            data = _validate(item) if suspect else _validated_clean(item)
        except ValidationError as exc:
            row = _Row(i, None)
            row.fail(validation_text(exc))
            out.append(row)
            continue
        out.append(checked(i, data))
    return out


class _Checks:
    """What a validated row must pass beyond its type: a known source, known inputs."""

    def __init__(self, settings: Settings, scorers: scoring.Scorers) -> None:
        self.settings = settings
        self.sources = frozenset(settings.lead_sources)
        self.check = InputCheck(scorers.all)

    def __call__(self, index: int, data: LeadIn) -> _Row:
        row = _Row(index, data)
        if data.source not in self.sources:
            row.fail(f"source: not one of {', '.join(self.settings.lead_sources)}")
        elif data.evaluation and (errors := self.check.errors(data.evaluation)):
            row.fail("; ".join(f"evaluation.{e}" for e in errors))
        return row


def validated_body(body: bytes, content_type: str | None) -> Sequence[LeadIn] | None:
    """The rows of a JSON body that `may_hold_refusals` cleared, validated straight from its
    bytes in one pass (no parsed document, no call per row), when every row passes
    `CleanLeadIn` and its attributes `json_fits`: then each is what `_validated_clean` gives.
    None otherwise (a bad row, too many rows, not JSON, not `{"rows": [...]}`): the body
    takes the row-by-row path, which names each row's error as always."""
    if media_type(content_type) not in JSON_MEDIA_TYPES:
        return None
    try:
        rows: Sequence[LeadIn] = _validate_body(body).rows
    except ValidationError:
        return None
    return rows if attributes_fit([d.attributes for d in rows if d.attributes]) else None


def attributes_fit(given: list[dict[str, Any]]) -> bool:
    """Whether each of `given` passes `json_fits` (as `_validated_clean` checks a row's). First
    all of them at once, as one JSON array: no digit run or exponent in it is none in any
    (objects never share a number), and as many brackets as objects plus the array's is each
    object flat; then each one's size (in C, no Python call per object). Else one by one."""
    if not given:
        return True
    together = orjson.dumps(given)
    if (
        json_fits(together, max_bytes=len(together), max_depth=len(given) + 1)
        and max(map(len, map(orjson.dumps, given))) <= ATTRIBUTES_MAX_BYTES
    ):
        return True
    return all(
        json_fits(
            orjson.dumps(attributes),
            max_bytes=ATTRIBUTES_MAX_BYTES,
            max_depth=ATTRIBUTES_MAX_DEPTH,
        )
        for attributes in given
    )


def _validated_clean(item: dict[str, Any]) -> LeadIn:
    """A row of a body that holds no refused value, as `LeadIn` would validate it: as
    `CleanLeadIn` when its attributes certainly pass `LeadIn`'s check, else (and for a row
    in error, so that its error names everything `LeadIn` finds) as `LeadIn`."""
    try:
        data = _validate_clean(item)
    except ValidationError:
        return _validate(item)
    attributes = data.attributes
    if attributes and not json_fits(
        orjson.dumps(attributes), max_bytes=ATTRIBUTES_MAX_BYTES, max_depth=ATTRIBUTES_MAX_DEPTH
    ):
        return _validate(item)
    return data


# The columns of a new lead that intake leaves empty (scoring, routing and placement fill
# some of them afterwards), in the table's order.
_UNSET = dict.fromkeys(repository.STEPS)


def _lead_template(work: Work) -> dict[str, Any]:
    """A new lead of this request, but for what its row gives (`_new_lead`) and its id (given
    as it is written: `Work.identify`): every key in the table's order, as COPY takes the
    first row's keys for its columns."""
    return {
        **dict.fromkeys(("id", "source", "external_id", *repository.CONTENT, "received_at")),
        "status": "new",
        **_UNSET,
        "version": 1,
        "created_at": work.now,
        "updated_at": work.now,
        "created_by": work.actor,
    }


def _new_lead(template: dict[str, Any], data: LeadIn, now: Any) -> dict[str, Any]:
    # A copy of the request's template, its row's fields set: half the time of a literal of
    # the lead's 36 keys.
    lead = template.copy()
    lead["source"] = data.source
    lead["external_id"] = data.external_id
    lead["company"] = data.company
    lead["contact_name"] = data.contact_name
    lead["phone"] = data.phone
    lead["email"] = data.email
    lead["region"] = normal_region(data.region)
    lead["industry"] = data.industry
    lead["need"] = data.need
    lead["evaluation"] = data.evaluation
    lead["attributes"] = data.attributes
    lead["received_at"] = data.received_at or now
    return lead


async def receive_bulk(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    body: bytes,
    content_type: str | None,
    render: Callable[[dict[str, Any]], T],
) -> T:
    """`receive` for a bulk body; who may push is decided before the body is read. `render`
    makes the response of the answer (`IntakeResult`'s fields); it runs while PostgreSQL
    stores the call's events."""
    require_write(principal)
    suspect = may_hold_refusals(body)
    validated = None if suspect else validated_body(body, content_type)
    raw = parse_rows(body, content_type) if validated is None else ()
    rendered: list[T] = []
    receiving = receive(
        session,
        principal,
        settings,
        raw,
        validated=validated,
        suspect=suspect,
        meanwhile=lambda counts, done: rendered.append(render(answer(counts, done))),
    )
    del raw, validated  # `receive` holds them, and lets go of them once it has answered
    await receiving
    return rendered[0]


async def receive(
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    raw: Sequence[Any] | None = None,
    *,
    one: LeadIn | None = None,
    validated: Sequence[LeadIn] | None = None,
    suspect: bool = True,
    meanwhile: Callable[[dict[str, int], list[_Row]], None] | None = None,
) -> tuple[dict[str, int], list[_Row]]:
    """Take in `raw` rows (bulk), `validated` ones (`validated_body`) or `one` validated
    lead. Returns the answer's counts and the rows, each with its outcome and its lead;
    `meanwhile` gets them while PostgreSQL stores the events (`Work.flush`), and then the
    rows, the leads and their events are let go (the rows returned are then none): for
    10,000 rows that is about a million objects, freed beside PostgreSQL's work instead of
    after it."""
    require_write(principal)
    scorers = await scoring.scorers(session)
    # The leads the rows name; a validated body's rows are checked (`_Checks`) while
    # PostgreSQL finds them, so a row that fails its checks may name one it never touches.
    rows: list[_Row] | None = None
    named: Sequence[LeadIn]
    if one is not None:
        check_source(settings, one.source)
        check_inputs(scorers, one.evaluation, "evaluation")
        rows, named = [_Row(0, one)], [one]
    elif validated is None:
        rows = _rows(raw or (), settings, scorers, suspect=suspect)
        named = [r.data for r in rows if r.outcome is None and r.data is not None]
    else:
        named = validated
    work = Work(utcnow(), principal.sub, settings, scorers, actor_kind=principal.kind)
    # Distinct, in no particular order: the statement locks what it finds in id order.
    keys = list({(d.source, d.external_id) for d in named if d.external_id})
    await repository.lock_sources(session, set(map(itemgetter(0), keys)))
    async with bulk.beside(repository.by_keys(session, keys)) as found:
        if rows is None:
            checked = _Checks(settings, scorers)
            rows = [checked(i, data) for i, data in enumerate(named)]
        good = [r for r in rows if r.outcome is None]
        # Each row's match keys as a new lead of its content holds them (most rows are new
        # leads): made while PostgreSQL finds the known ones, not after.
        row_keys = [_match_keys(r.data) for r in good]
    known: dict[tuple[str, str], dict[str, Any]] = {
        (row.source, row.external_id): as_dict(row) for row in found.result()
    }
    # PostgreSQL matches every row's keys with the customers (most rows are new leads; the
    # keys of a known lead's row go unused), then reads what placing them needs, while the
    # rows are read and the new leads scored and routed, which read nothing of their
    # customer (their events take it at flush) or their rep.
    ahead = _placeable(row_keys, good, known) if len(good) > _TURN else []
    async with bulk.beside(_match_and_load(session, row_keys, ahead)) as matching:
        read = _read_rows(work, good, known, one)
        for at, lead in enumerate(work.created):
            if not at % _TURN:
                await asyncio.sleep(0)  # the statements beside go on (`_match_and_load`)
            work.arrive(lead)
            score(work, lead)
            route(work, lead)
    customers, placer = matching.result()
    for lead, at in zip(work.created, read.created_rows, strict=True):
        lead["customer_id"] = customers[at]
    # What a row of the batch matched on is not what these hold: matched again, together.
    restated = read.restated
    late = [lead for lead in work.created if id(lead) in restated] if restated else []
    late += {id(lead): lead for lead in read.rematch if lead["customer_id"] is None}.values()
    if late:
        found_late = await match_customers(session, [_lead_keys(lead) for lead in late])
        for lead, customer_id in zip(late, found_late, strict=True):
            lead["customer_id"] = customer_id
    for lead_id, fields in read.changed_fields.items():
        lead = work.changed[lead_id]
        work.emit(events.LEAD_UPDATED, lead, changed_fields=fields)
        if lead_id in read.rescore:
            score(work, lead)
            route(work, lead)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
    for r in rows:
        counts[r.outcome or "error"] += 1
    answered = None if meanwhile is None else partial(_answered, meanwhile, counts, rows, work)
    # What refers to the rows' leads and inputs beside `rows` and `work`, dropped now so that
    # `answered` frees them.
    del raw, validated, named, known, good, read, row_keys, customers, late
    await place_and_flush(session, work, meanwhile=answered, placer=placer)
    return counts, rows


async def _match_and_load(
    session: AsyncSession,
    row_keys: Sequence[MatchKeys],
    pairs: Sequence[tuple[str | None, str | None]],
) -> tuple[list[uuid.UUID | None], assignment.Placer]:
    """The customers of `row_keys` (`match_customers`), then a placer loaded for `pairs`:
    statements one after the other, each sent when its caller's Python work next yields."""
    customers = await match_customers(session, row_keys)
    return customers, await assignment.Placer.load(session, pairs)


def _placeable(
    row_keys: Sequence[MatchKeys],
    good: Sequence[_Row],
    known: dict[tuple[str, str], dict[str, Any]],
) -> list[tuple[str | None, str | None]]:
    """The (region, industry) pairs the call's leads may be placed by: each good row's (a
    new lead's) and each known lead's. A lead whose final pair is neither (a later row
    changed one of the two) is placed by a placer loaded then (`place_and_flush`)."""
    pairs = {
        (k.region, r.data.industry if r.data else None) for k, r in zip(row_keys, good, strict=True)
    }
    pairs.update((lead["region"], lead["industry"]) for lead in known.values())
    return list(pairs)


@dataclass(slots=True)
class _Read:
    """What reading a request's rows left to do besides its new leads (`Work.created`)."""

    # Of each new lead, the row it came from (its match keys' place in the rows' keys).
    created_rows: list[int] = field(default_factory=list)
    # New leads that a later row of the call changed: matched on what they hold now.
    restated: set[int] = field(default_factory=set)
    # Known leads whose contact details changed and that have no customer yet.
    rematch: list[dict[str, Any]] = field(default_factory=list)
    # Known leads whose inputs changed, by id; and each changed known lead's changed fields.
    rescore: dict[Any, dict[str, Any]] = field(default_factory=dict)
    changed_fields: dict[Any, list[str]] = field(default_factory=dict)


def _read_rows(
    work: Work,
    good: Sequence[_Row],
    known: dict[tuple[str, str], dict[str, Any]],
    one: LeadIn | None,
) -> _Read:
    """Each good row's outcome: a new lead (into `work.created`, and `known` under its key, so
    that a later row of the call names it), a known lead updated or unchanged, or an error.
    A single lead's (`one`) error is raised instead."""
    template = _lead_template(work)
    read = _Read()
    for at, r in enumerate(good):
        data = r.data
        assert data is not None
        key = (data.source, data.external_id) if data.external_id else None
        lead = known.get(key) if key is not None else None
        if lead is None:
            if data.company is None and data.contact_name is None:
                if one is not None:
                    raise ValidationFailed.field("company", NEEDS_A_NAME)
                r.fail(f"company: {NEEDS_A_NAME}")
                continue
            lead = _new_lead(template, data, work.now)
            work.created.append(lead)
            read.created_rows.append(at)
            if key is not None:
                known[key] = lead
            r.lead, r.outcome = lead, "created"
            continue
        r.lead = lead
        given = data.model_dump(include=data.model_fields_set - {"source", "external_id"})
        if lead["status"] in CLOSED:
            probe = dict(lead)
            if content_changes(probe, given):
                r.fail(f"the lead is {lead['status']}; it no longer changes")
                if one is not None:
                    raise WrongState(r.error)
            else:
                r.outcome = "unchanged"
            continue
        changed = content_changes(lead, given)
        if not changed:
            r.outcome = "unchanged"
            continue
        r.outcome = "updated"
        if lead["status"] == "new":
            # Created by this call: scored and matched below with its final content.
            read.restated.add(id(lead))
            continue
        work.touch(lead)
        fields = read.changed_fields.setdefault(lead["id"], [])
        fields += [f for f in changed if f not in fields]
        if "evaluation" in changed:
            read.rescore[lead["id"]] = lead
        if lead["customer_id"] is None and CONTACT.intersection(changed):
            read.rematch.append(lead)
    return read


def _match_keys(data: LeadIn | None) -> MatchKeys:
    """The match keys of a new lead made of `data` (`_new_lead`)."""
    assert data is not None
    return MatchKeys.of(data.company, data.phone, data.email, normal_region(data.region))


def _lead_keys(lead: dict[str, Any]) -> MatchKeys:
    return MatchKeys.of(lead["company"], lead["phone"], lead["email"], lead["region"])


def _answered(
    meanwhile: Callable[[dict[str, int], list[_Row]], None],
    counts: dict[str, int],
    rows: list[_Row],
    work: Work,
) -> None:
    meanwhile(counts, rows)
    rows.clear()
    work.release()


def answer(counts: dict[str, int], rows: Sequence[_Row]) -> dict[str, Any]:
    """The fields of `IntakeResult`."""
    return {
        "results": [r.result() for r in rows],
        "created": counts["created"],
        "updated": counts["updated"],
        "unchanged": counts["unchanged"],
        "errors": counts["error"],
    }
