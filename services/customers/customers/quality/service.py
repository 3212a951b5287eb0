"""Data quality's rules: the incomplete-records list, likely duplicates (one record on create,
a whole batch on import), merging a duplicate into its survivor, the bulk import and the
export. Services flush, never commit; every statement is in `repository.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import events as archive_events
from customers.archive import lifecycle
from customers.archive import repository as archive_repository
from customers.archive import settings as archive_settings
from customers.archive.access import can_change, can_see, require_read
from customers.archive.extensions import ArchiveExtensions
from customers.archive.history import Actor, history_row, record_change, write_history
from customers.archive.models import Customer
from customers.archive.schemas import (
    HISTORICAL_FIELDS,
    PUBLIC_FIELDS,
    UPDATABLE_FIELDS,
    CustomerCreate,
)
from customers.archive.service import (
    NewCustomer,
    check_history,
    create_customers_bulk,
    get_visible_customer,
    may_write_history,
    plan_owners,
    require_history_writer,
)
from customers.commerce.service import contact_state
from customers.quality import events, formats, repository
from customers.quality.schemas import DataQualityItem, DataQualityPage, MergeResult
from servicekit.auth import Principal
from servicekit.db import Database, utcnow
from servicekit.errors import Conflict, DomainError, Forbidden, ValidationFailed, validation_text
from servicekit.ids import ordered_uuids
from servicekit.imports import import_report
from servicekit.inputs import row_refusal
from servicekit.normalize import (
    MatchKeys,
    lookups,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_region,
)
from servicekit.pagination import PageParams

# --- the score, kept on the record ---------------------------------------------------------


async def refresh_quality(session: AsyncSession, ids: Sequence[uuid.UUID] | None) -> None:
    """Compute and keep the score of these customers (all of them when None): the archive's
    `after_change` hook, run in the changing transaction."""
    doc, _ = await archive_settings.load(session)
    rows = await repository.refresh_scores(session, doc.data_quality, now=utcnow(), ids=ids)
    await _announce(session, rows, doc.data_quality.threshold)
    archive_repository.refresh_loaded(
        session, rows, ("quality_score", "incomplete", "quality_alert", "quality_due_at", "quality")
    )


# How many scores one statement of the pass computes.
PASS_BATCH = 5000


async def refresh_due(session: AsyncSession) -> int:
    """The periodic pass: the scores whose freshness points ran out (and rows written outside
    the service, due at once), computed again; returns how many."""
    doc, _ = await archive_settings.load(session)
    total = 0
    while True:
        rows = await repository.refresh_scores(
            session, doc.data_quality, now=utcnow(), due=True, limit=PASS_BATCH
        )
        await _announce(session, rows, doc.data_quality.threshold)
        total += len(rows)
        if len(rows) < PASS_BATCH:
            return total


async def _announce(session: AsyncSession, rows: Sequence[Any], threshold: int) -> None:
    """`customer.data_incomplete` for each A-level customer that just became incomplete (its
    content, its level or the settings changed, or its data grew old), and
    `customer.data_completed` for each customer whose record just stopped counting as
    incomplete (its content or the settings changed)."""
    found = []
    for r in rows:
        if r.quality_alert and not r.was_alert:
            kind = events.CUSTOMER_DATA_INCOMPLETE
        elif r.was_incomplete and not r.incomplete:
            kind = events.CUSTOMER_DATA_COMPLETED
        else:
            continue
        found.append((kind, r.id, events.data_quality(r, threshold)))
    await archive_events.emit_many(session, found)


# --- the incomplete-records list -------------------------------------------------------------


async def incomplete_customers(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    level: str | None,
    below: int,
    region: str | None = None,
    owner_id: uuid.UUID | None = None,
) -> DataQualityPage:
    """Live customers the caller may see whose score is under `below`, worst first."""
    require_read(principal)
    rows, cursor = await repository.incomplete_page(
        session,
        principal,
        page,
        below=below,
        level=level,
        region=region.strip().upper() if region else None,
        owner_id=owner_id,
    )
    return DataQualityPage(
        items=[
            DataQualityItem(
                id=r.id,
                code=r.code,
                name=r.name,
                region=r.region,
                level=r.level,
                owner_id=r.owner_id,
                team_id=r.team_id,
                updated_at=r.updated_at,
                data_quality=r.quality,
            )
            for r in rows
        ],
        next_cursor=cursor,
    )


# --- likely duplicates: same normalised phone or email, or same normalised name in a region --


def keys_of(data: Any) -> MatchKeys:
    """The keys of a customer's raw values (a dict, or a model with the fields)."""
    if isinstance(data, dict):
        return MatchKeys.of(
            data.get("name"), data.get("phone"), data.get("email"), data.get("region")
        )
    # One attribute read per field: an import computes this for 10,000 rows.
    return MatchKeys.of(
        getattr(data, "name", None),
        getattr(data, "phone", None),
        getattr(data, "email", None),
        getattr(data, "region", None),
    )


def matched_on(keys: MatchKeys, row: Any) -> list[str]:
    """What a stored customer (its normal-form columns) shares with `keys`."""
    return keys.matched_on(
        row.normalized_phone, row.normalized_email, row.normalized_name, row.region
    )


def candidate(row: Any, matched_on: list[str]) -> dict[str, Any]:
    return {
        "visible": True,
        "id": str(row.id),
        "code": row.code,
        "name": row.name,
        "region": row.region,
        "owner_id": str(row.owner_id) if row.owner_id else None,
        "status": row.status,
        "matched_on": matched_on,
    }


async def _matching_rows(
    session: AsyncSession, keys: Sequence[MatchKeys], **options: Any
) -> list[Any]:
    phones, emails, pairs = lookups(keys)
    return await repository.matching_customers(
        session, phones=phones, emails=emails, pairs=pairs, **options
    )


# What a caller is told of likely duplicates they may not see: that there are some, and on
# what they matched (what the caller typed), never which records they are.
HIDDEN_CANDIDATE = "a likely duplicate exists that you cannot see"


def candidates_for(
    principal: Principal, found: Sequence[tuple[Any, list[str]]]
) -> list[dict[str, Any]]:
    """The candidates as `principal` may be told of them: those they may see in full, all the
    others as one entry without any identifying field."""
    shown: list[dict[str, Any]] = []
    hidden: set[str] = set()
    for row, matched_on in found:
        if can_see(principal, row.owner_id, row.team_id):
            shown.append(candidate(row, matched_on))
        else:
            hidden.update(matched_on)
    if hidden:
        shown.append({"visible": False, "note": HIDDEN_CANDIDATE, "matched_on": sorted(hidden)})
    return shown


async def find_duplicates(
    session: AsyncSession, principal: Principal, data: Any, exclude_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Active customers that look like `data` (a CustomerCreate or a dict), as the caller may
    be told of them: the archive's duplicate check on create
    (`ArchiveExtensions.duplicate_finder`)."""
    keys = keys_of(data)
    rows = await _matching_rows(
        session, [keys], exclude_id=exclude_id, limit=repository.MAX_CANDIDATES
    )
    return candidates_for(principal, [(r, on) for r in rows if (on := matched_on(keys, r))])


async def duplicate_pairs(
    session: AsyncSession, principal: Principal, page: PageParams
) -> dict[str, Any]:
    """Likely duplicate pairs among the customers the caller may see, for cleaning up (merge
    one into the other: `POST /{id}/merge`)."""
    require_read(principal)
    rows, cursor = await repository.duplicate_pairs(session, principal, page)
    return {
        "items": [
            {"customers": [candidate(a, on), candidate(b, on)], "matched_on": on}
            for a, b, on in rows
        ],
        "next_cursor": cursor,
    }


async def find_duplicates_bulk(
    session: AsyncSession, keys: Sequence[MatchKeys]
) -> list[list[tuple[Any, list[str]]]]:
    """For each of `keys`, the existing rows it matches and on what: a single query."""
    out: list[list[tuple[Any, list[str]]]] = [[] for _ in keys]
    rows = await _matching_rows(session, keys)
    if not rows:
        return out
    by_phone: dict[str, list[Any]] = {}
    by_email: dict[str, list[Any]] = {}
    by_name: dict[tuple[str, str], list[Any]] = {}
    for r in rows:
        if r.normalized_phone:
            by_phone.setdefault(r.normalized_phone, []).append(r)
        if r.normalized_email:
            by_email.setdefault(r.normalized_email, []).append(r)
        if r.normalized_name:
            by_name.setdefault((r.region, r.normalized_name), []).append(r)
    for i, k in enumerate(keys):
        seen: dict[uuid.UUID, Any] = {}
        for r in (
            (by_phone.get(k.phone, []) if k.phone else [])
            + (by_email.get(k.email, []) if k.email else [])
            + (by_name.get((k.region, k.name), []) if k.name and k.region else [])
        ):
            seen.setdefault(r.id, r)
        out[i] = [(r, matched_on(k, r)) for r in seen.values()]
    return out


# --- merge: fold a duplicate into the customer that survives ----------------------------------
#
# Contacts, orders and payments move to the survivor; the survivor takes the fields it lacks
# from the duplicate; the duplicate keeps its own history, becomes `merged` and points at the
# survivor. Both rows are locked in id order, the same order every merge uses, so two merges of
# the same pair cannot deadlock, and payments lock the customer before the order, so a payment
# and a merge cannot either.

# Fields a survivor without a value takes from the duplicate.
FILLABLE = ("industry", "address", "phone", "email", "source", "estimated_potential")
_NORMALIZED = {
    "phone": ("normalized_phone", normalize_phone),
    "email": ("normalized_email", normalize_email),
}


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


async def merge_customers(
    session: AsyncSession, principal: Principal, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> MergeResult:
    if survivor_id == duplicate_id:
        raise ValidationFailed.field("duplicate_id", "is the customer itself")
    if principal.kind == "key":
        raise Forbidden("merging customers is a decision for a person, not an integration")
    locked: dict[uuid.UUID, Customer] = {}
    for cid in sorted((survivor_id, duplicate_id)):
        locked[cid] = await get_visible_customer(session, principal, cid, for_update=True)
    survivor, duplicate = locked[survivor_id], locked[duplicate_id]
    # Merging touches two records: the caller must be able to change both (a rep their own).
    if not principal.is_admin:
        for c in (survivor, duplicate):
            if not can_change(principal, c):
                raise Forbidden(f"you may read customer {c.code} but not change it")
    for c, path in ((survivor, "id"), (duplicate, "duplicate_id")):
        if c.status == "merged":
            raise Conflict(
                f"customer {c.code} was already merged into {c.merged_into_id}",
                field=path,
                merged_into_id=str(c.merged_into_id),
            )

    now = utcnow()
    moved = await repository.move_contacts(session, survivor_id, duplicate_id, at=now)
    moved_contacts = len(moved)
    moved_orders, moved_payments = await repository.move_orders_and_payments(
        session, survivor_id, duplicate_id
    )
    # The contacts changed hands: each side's history says so (the file as of replays it).
    who = Actor.of(principal)
    await write_history(
        session,
        [
            history_row(c.id, c.version, who, action, {"contact": change}, at=now)
            for old, new in moved
            for c, action, change in (
                (duplicate, "contact_removed", (contact_state(old), None)),
                (survivor, "contact_added", (None, contact_state(new))),
            )
        ],
    )
    # The survivor's orders now include the duplicate's: its lifecycle follows them.
    latest = [d for d in (survivor.last_order_date, duplicate.last_order_date) if d]
    if latest and max(latest) != survivor.last_order_date:
        await lifecycle.orders_changed(session, principal, survivor, max(latest))

    filled: dict[str, tuple[Any, Any]] = {}
    for field in FILLABLE:
        mine, theirs = getattr(survivor, field), getattr(duplicate, field)
        if _empty(mine) and not _empty(theirs):
            filled[field] = (mine, theirs)
            setattr(survivor, field, theirs)
            if field in _NORMALIZED:
                column, fn = _NORMALIZED[field]
                setattr(survivor, column, fn(theirs))
    new_tags = [t for t in duplicate.tags if t not in survivor.tags]
    if new_tags:
        filled["tags"] = (list(survivor.tags), [*survivor.tags, *new_tags])
        survivor.tags = [*survivor.tags, *new_tags]
    survivor.version += 1
    survivor.updated_at = now
    survivor.updated_by = principal.sub
    if filled or moved:
        survivor.content_updated_at = now
    # `merged_from` is not a field of the record, so an as-of replay skips it; the entry still
    # shows in the history, at the version it took.
    await record_change(
        session,
        survivor,
        principal,
        {**filled, "merged_from": (None, duplicate.code)},
        action="merged",
        comment=f"merged {duplicate.code} into this customer",
    )

    old_status = duplicate.status
    duplicate.status = "merged"
    duplicate.merged_into_id = survivor.id
    duplicate.version += 1
    duplicate.updated_at = now
    duplicate.updated_by = principal.sub
    await record_change(
        session,
        duplicate,
        principal,
        {"status": (old_status, "merged"), "merged_into_id": (None, survivor.id)},
        action="merged",
        comment=f"merged into {survivor.code}",
    )
    await session.flush()
    await refresh_quality(session, [survivor.id])

    result = MergeResult(
        survivor_id=survivor.id,
        duplicate_id=duplicate.id,
        contacts_moved=moved_contacts,
        orders_moved=moved_orders,
        payments_moved=moved_payments,
        filled_fields=sorted(f for f in filled if f != "merged_from"),
        version=survivor.version,
    )
    data = archive_events.merged(duplicate, survivor, principal.sub)
    data.update(
        survivor=archive_events.customer_facts(survivor),
        contacts_moved=moved_contacts,
        orders_moved=moved_orders,
        payments_moved=moved_payments,
        filled_fields=result.filled_fields,
    )
    await archive_events.emit(session, archive_events.CUSTOMER_MERGED, duplicate.id, data)
    return result


# --- bulk import: up to 10,000 rows a call, upsert on (source, external_ref) -----------------
#
# Every row is validated on its own, so a bad row becomes an `error` outcome and never blocks
# the good ones. The database work is set-based whatever the row count: one query finds the
# rows that already exist, one finds likely duplicates of the new ones, the archive's bulk
# create reserves the codes per prefix in one statement and inserts customers, ledger, history
# and events in multi-row statements, and updates go out as one executemany.

# Columns an export carries that an import does not set: a re-imported export file just works.
READ_ONLY = frozenset(
    {
        "id",
        "code",
        "team_id",
        "status",
        "version",
        "updated_at",
        "invalid_reason",
        "merged_into_id",
    }
)
# What an import may change on an existing customer: ownership moves by transfer, the status
# by its own rules, and (source, external_ref) is how the import finds the customer.
UPDATABLE = tuple(
    f
    for f in UPDATABLE_FIELDS
    if f not in {"source", "owner_id", "status", "invalid_reason", "external_ref"}
)


class ImportRow(CustomerCreate):
    """A customer row; the same rules as one created through the API."""


Outcome = dict[str, Any]
# The model's compiled validator, called directly: 10,000 times per call.
_validate = ImportRow.__pydantic_validator__.validate_python


def _outcome(
    row: int, outcome: str, id: uuid.UUID | None = None, *, error: str | None = None
) -> Outcome:
    # Plain dicts, not models: 10,000 of them are built and serialised per call.
    return {"row": row, "outcome": outcome, "id": id, "error": error}


@dataclass(slots=True)
class _Row:
    index: int
    data: ImportRow
    outcome: Outcome | None = None
    keys: MatchKeys | None = None


def validate_rows(raw: Sequence[Any]) -> list[_Row]:
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            outcome = _outcome(i, "error", error="row: must be an object")
            out.append(_Row(i, None, outcome))  # type: ignore[arg-type]
            continue
        if refusal := row_refusal(item):
            out.append(_Row(i, None, _outcome(i, "error", error=refusal)))  # type: ignore[arg-type]
            continue
        # Copy only the rows that carry an export's read-only columns (a re-imported export).
        values = item if READ_ONLY.isdisjoint(item) else _writable(item)
        try:
            data = _validate(values)
        except ValidationError as exc:
            outcome = _outcome(i, "error", error=validation_text(exc))
            out.append(_Row(i, None, outcome))  # type: ignore[arg-type]
            continue
        out.append(_Row(i, data))
    return out


def _writable(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in READ_ONLY}


def _fail(row: _Row, message: str) -> None:
    row.outcome = _outcome(row.index, "error", error=message)


async def _existing(session: AsyncSession, rows: Sequence[_Row]) -> dict[tuple[str, str], Any]:
    """The customers already holding the rows' (source, external_ref), locked."""
    refs = [(r.data.source, r.data.external_ref) for r in rows if r.data.external_ref]
    found = await repository.lock_by_external_refs(session, refs)
    return {(rec.source or "", rec.external_ref): rec for rec in found}


def _comparable(field: str, value: Any) -> Any:
    if field == "region" and value is not None:
        return normalize_region(value)
    if field == "estimated_potential" and value is not None:
        return Decimal(value)
    if field == "tags":
        return list(value or [])
    return value


def _changes(existing: Any, row: _Row) -> dict[str, tuple[Any, Any]]:
    changes: dict[str, tuple[Any, Any]] = {}
    for field in UPDATABLE:
        if field not in row.data.model_fields_set:
            continue
        new = _comparable(field, getattr(row.data, field))
        old = getattr(existing, field)
        if old != new:
            changes[field] = (old, new)
    return changes


async def import_customers(
    session: AsyncSession,
    principal: Principal,
    body: bytes,
    content_type: str | None,
    extensions: ArchiveExtensions,
    *,
    confirm_duplicates: bool,
) -> dict[str, Any]:
    """The import's answer, shaped as `ImportResult`. Who may import is decided before the
    body is read: a rep is refused whatever they sent."""
    if principal.kind == "key":
        principal.require_scope("customers:write")
    elif not (principal.is_admin or principal.is_manager):
        raise Forbidden("imports are for managers, admins and integrations")
    rows = validate_rows(formats.parse_rows(body, content_type))
    good = [r for r in rows if r.outcome is None]

    # Within one call an external_ref names one customer: later repeats are errors.
    seen_refs: dict[tuple[str, str], int] = {}
    for r in good:
        if r.data.external_ref is None:
            continue
        key = (r.data.source or "", r.data.external_ref)
        if key in seen_refs:
            _fail(r, f"external_ref: repeats row {seen_refs[key]} of this call")
        else:
            seen_refs[key] = r.index
    good = [r for r in good if r.outcome is None]

    doc, _ = await archive_settings.load(session)
    existing = await _existing(session, good)
    new_rows: list[_Row] = []
    updates: list[tuple[_Row, Any, dict[str, tuple[Any, Any]]]] = []
    for r in good:
        ref = r.data.external_ref
        match = existing.get((r.data.source or "", ref)) if ref is not None else None
        region = normalize_region(r.data.region)
        unknown_region = doc.unknown_region(region)
        if unknown_region and (match is None or match.region != region):
            _fail(r, f"region: {unknown_region}")
        elif match is None:
            new_rows.append(r)
        elif not can_change(principal, match):
            # Before anything that names the record: it may be one the caller cannot see.
            _fail(r, "external_ref: belongs to a customer outside what you may change")
        elif match.status == "merged":
            _fail(r, f"external_ref: customer {match.code} was merged into {match.merged_into_id}")
        elif "owner_id" in r.data.model_fields_set and r.data.owner_id != match.owner_id:
            _fail(r, "owner_id: an import does not move customers; use a transfer")
        else:
            changes = _changes(match, r)
            if changes:
                updates.append((r, match, changes))
            else:
                r.outcome = _outcome(r.index, "unchanged", match.id)

    # The normal forms serve the duplicate check and are stored with the new customers.
    for r in new_rows:
        r.keys = keys_of(r.data)
    if not confirm_duplicates:
        keys = [r.keys for r in new_rows if r.keys is not None]
        _flag_duplicates(principal, new_rows, await find_duplicates_bulk(session, keys))
        new_rows = [r for r in new_rows if r.outcome is None]

    # A customer's past (created_at, owner_since, level_since) is brought in by admins and
    # keys only; on a customer that exists already it is ignored (an export file carries
    # created_at and may be imported again by anyone who may import).
    if not may_write_history(principal) and any(
        getattr(r.data, f) is not None for r in new_rows for f in HISTORICAL_FIELDS
    ):
        require_history_writer(principal)
    owners = await plan_owners(session, principal, [r.data for r in new_rows])
    now = utcnow()
    # Time-ordered ids: the batch appends to the primary-key index instead of dirtying a page
    # per row all over it (the largest single cost of a 10,000-row COPY into 1M customers).
    ids = iter(ordered_uuids(len(new_rows)))
    items: list[NewCustomer] = []
    for r, planned in zip(new_rows, owners, strict=True):
        if isinstance(planned, DomainError):
            _fail(r, planned.detail or planned.title)
            continue
        problem = check_history(r.data, planned[0], now)
        if problem is not None:
            _fail(r, problem.detail or problem.title)
            continue
        k = r.keys
        normal = (k.phone, k.email, k.name) if k is not None else None
        item = NewCustomer(r.data, planned[0], planned[1], id=next(ids), normal=normal)
        items.append(item)
        r.outcome = _outcome(r.index, "created", item.id)
    await create_customers_bulk(
        session,
        principal,
        items,
        extensions=extensions,
        principal=principal,
        settings=doc,
        reason="imported",
    )
    await _apply_updates(session, principal, updates)

    return import_report([r.outcome for r in rows if r.outcome is not None])


def _describe(candidate: dict[str, Any]) -> str:
    same = f"same {'/'.join(candidate['matched_on'])}"
    return (
        f"{candidate['code']} ({same})" if candidate["visible"] else f"{HIDDEN_CANDIDATE} ({same})"
    )


def _flag_duplicates(
    principal: Principal, rows: list[_Row], matches: list[list[tuple[Any, list[str]]]]
) -> None:
    """Rows that look like an existing customer, or like an earlier row of the same call."""
    batch_phone: dict[str, int] = {}
    batch_email: dict[str, int] = {}
    batch_name: dict[tuple[str, str], int] = {}
    for r, found in zip(rows, matches, strict=True):
        if found:
            told = candidates_for(principal, found)
            # At most three named ones, and the entry for those the caller may not see.
            named = [c for c in told if c["visible"]][:3]
            desc = ", ".join(_describe(c) for c in named + [c for c in told if not c["visible"]])
            _fail(r, f"likely duplicate of {desc}; resend with confirm_duplicates=true to import")
            continue
        k = r.keys or keys_of(r.data)
        earlier = (
            (batch_phone.get(k.phone) if k.phone else None)
            or (batch_email.get(k.email) if k.email else None)
            or (batch_name.get((k.region, k.name)) if k.name and k.region else None)
        )
        if earlier is not None:
            _fail(
                r,
                f"likely duplicate of row {earlier} of this call; resend with "
                "confirm_duplicates=true to import",
            )
            continue
        if k.phone:
            batch_phone.setdefault(k.phone, r.index)
        if k.email:
            batch_email.setdefault(k.email, r.index)
        if k.name and k.region:
            batch_name.setdefault((k.region, k.name), r.index)


async def _apply_updates(
    session: AsyncSession,
    principal: Principal,
    updates: Sequence[tuple[_Row, Any, dict[str, tuple[Any, Any]]]],
) -> None:
    if not updates:
        return
    who = Actor.of(principal)
    now = utcnow()
    params = []
    history = []
    emitted: list[tuple[str, uuid.UUID, dict[str, Any]]] = []
    for r, match, changes in updates:
        after = dict(match._mapping)
        after.update({f: new for f, (_, new) in changes.items()})
        after["version"] = match.version + 1
        after["updated_at"] = now
        values = {f: after[f] for f in UPDATABLE}
        values.update(
            normalized_name=normalize_name(after["name"]),
            normalized_phone=normalize_phone(after["phone"]),
            normalized_email=normalize_email(after["email"]),
            content_updated_at=now,
            level_since=now if "level" in changes else match.level_since,
        )
        params.append({"_id": match.id, **values})
        history.append(
            history_row(
                match.id, after["version"], who, "updated", changes, comment="import", at=now
            )
        )
        emitted.append(
            (
                archive_events.CUSTOMER_UPDATED,
                match.id,
                archive_events.updated(after, changes, who.id),
            )
        )
        if "level" in changes:
            old, new = changes["level"]
            emitted.append(
                (
                    archive_events.CUSTOMER_LEVEL_CHANGED,
                    match.id,
                    archive_events.level_changed(after, old, new, who.id),
                )
            )
        r.outcome = _outcome(r.index, "updated", match.id)
    await repository.update_customers(
        session,
        (
            *UPDATABLE,
            "normalized_name",
            "normalized_phone",
            "normalized_email",
            "content_updated_at",
            "level_since",
        ),
        params,
        at=now,
        by=who.id,
    )
    await write_history(session, history)
    await archive_events.emit_many(session, emitted)
    await refresh_quality(session, [match.id for _, match, _ in updates])


# --- export -----------------------------------------------------------------------------------


async def export_csv(
    db: Database,
    principal: Principal,
    *,
    region: str | None,
    level: str | None,
    status: str | None,
) -> AsyncIterator[bytes]:
    """The customers the principal may see as CSV, streamed (memory stays flat whatever the
    size of the scope). Everything that can fail before the first row (the access rule, the
    statement, the connection) fails before this returns, while the answer can still be a
    problem document; a failure later ends the stream with an error, never cleanly, so the
    client cannot take a cut file for the whole."""
    require_read(principal)
    assert db.engine is not None
    batches = repository.stream_customers(
        db.engine,
        principal,
        PUBLIC_FIELDS,
        region=region.strip().upper() if region else None,
        level=level,
        status=status,
    )
    first = await anext(batches, None)

    async def body() -> AsyncIterator[bytes]:
        try:
            yield formats.export_lines([PUBLIC_FIELDS])
            if first is not None:
                yield formats.export_lines(first)
            async for batch in batches:
                yield formats.export_lines(batch)
        finally:
            await batches.aclose()

    return body()
