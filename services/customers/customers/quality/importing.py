"""Bulk import: up to 10,000 rows a call, upsert on (source, external_ref), one outcome per row.

Every row is validated on its own, so a bad row becomes an `error` outcome and never blocks the
good ones. The database work is set-based whatever the row count: one query finds the rows
that already exist, one finds likely duplicates of the new ones, the archive's bulk create
reserves the codes per prefix in one statement and inserts customers, ledger, history and
events in multi-row statements, and updates go out as one executemany.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import events
from customers.archive.access import can_change
from customers.archive.extensions import ArchiveExtensions
from customers.archive.history import Actor, history_row, write_history
from customers.archive.models import CUSTOMERS
from customers.archive.normalize import (
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_region,
)
from customers.archive.schemas import CustomerCreate
from customers.archive.service import NewCustomer, create_customers_bulk, plan_owners
from customers.quality.duplicates import TEXT_ARRAY, Keys, find_duplicates_bulk
from customers.quality.export import TAG_SEPARATOR
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import BadRequest, DomainError, Forbidden, PayloadTooLarge
from servicekit.ids import ordered_uuids

MAX_ROWS = 10_000
# Columns an export carries that an import does not set: a re-imported export file just works.
READ_ONLY = frozenset(
    {
        "id",
        "code",
        "team_id",
        "status",
        "version",
        "created_at",
        "updated_at",
        "invalid_reason",
        "merged_into_id",
    }
)
# What an import may change on an existing customer (ownership moves by transfer, not import).
UPDATABLE = (
    "name",
    "region",
    "level",
    "industry",
    "address",
    "phone",
    "email",
    "tags",
    "estimated_potential",
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
    keys: Keys | None = None


def parse_json(body: bytes) -> list[Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    rows = doc.get("rows") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise BadRequest('send {"rows": [...]} (or a CSV body with Content-Type text/csv)')
    _check_size(len(rows))
    return rows


def parse_csv(body: bytes) -> list[Any]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the CSV must be UTF-8") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise BadRequest("the CSV has no header row")
    rows: list[Any] = []
    for record in reader:
        if len(rows) >= MAX_ROWS:
            _check_size(MAX_ROWS + 1)
        row: dict[str, Any] = {}
        for key, value in record.items():
            if key is None:
                # More cells than headers: keep them visible so the row fails validation.
                row["_extra_cells"] = value
                continue
            key = key.strip()
            if value is None or value.strip() == "":
                continue  # an empty cell sets nothing (it never clears a field)
            if key == "tags":
                row[key] = [t.strip() for t in value.split(TAG_SEPARATOR) if t.strip()]
            else:
                row[key] = value
        rows.append(row)
    return rows


def _check_size(n: int) -> None:
    if n > MAX_ROWS:
        raise PayloadTooLarge(
            f"at most {MAX_ROWS} rows per call; split the file", max_rows=MAX_ROWS
        )


def _error_text(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "row"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def validate_rows(raw: Sequence[Any]) -> list[_Row]:
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            outcome = _outcome(i, "error", error="row: must be an object")
            out.append(_Row(i, None, outcome))  # type: ignore[arg-type]
            continue
        # Copy only the rows that carry an export's read-only columns (a re-imported export).
        values = item if READ_ONLY.isdisjoint(item) else _writable(item)
        try:
            data = _validate(values)
        except ValidationError as exc:
            outcome = _outcome(i, "error", error=_error_text(exc))
            out.append(_Row(i, None, outcome))  # type: ignore[arg-type]
            continue
        out.append(_Row(i, data))
    return out


def _writable(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in READ_ONLY}


def _fail(row: _Row, message: str) -> None:
    row.outcome = _outcome(row.index, "error", error=message)


async def _existing(session: AsyncSession, rows: Sequence[_Row]) -> dict[tuple[str, str], Any]:
    """The customers already holding the rows' (source, external_ref): one query, both
    branches on the (source, external_ref) unique index."""
    with_source = {(r.data.source, r.data.external_ref) for r in rows if r.data.external_ref}
    sourced = sorted((s, ref) for s, ref in with_source if s is not None)
    unsourced = sorted({ref for s, ref in with_source if s is None and ref is not None})
    c = CUSTOMERS.c
    branches: list[sa.ColumnElement[bool]] = []
    if sourced:
        wanted = sa.select(
            sa.func.unnest(sa.cast(sa.bindparam("srcs", [p[0] for p in sourced]), TEXT_ARRAY)),
            sa.func.unnest(sa.cast(sa.bindparam("refs", [p[1] for p in sourced]), TEXT_ARRAY)),
        )
        branches.append(sa.tuple_(c.source, c.external_ref).in_(wanted))
    if unsourced:
        branches.append(
            sa.and_(
                c.source.is_(None),
                c.external_ref == sa.any_(sa.cast(sa.bindparam("bare", unsourced), TEXT_ARRAY)),
            )
        )
    if not branches:
        return {}
    # Locked (in id order, like every batch, so two imports cannot deadlock): no change can
    # slip in between reading a row and updating it.
    # `external_ref IS NOT NULL` lets the planner use the partial unique index.
    stmt = (
        sa.select(CUSTOMERS)
        .where(c.external_ref.is_not(None), sa.or_(*branches))
        .order_by(c.id)
        .with_for_update()
    )
    found: dict[tuple[str, str], Any] = {}
    for rec in (await session.execute(stmt)).all():
        found[(rec.source or "", rec.external_ref)] = rec
    return found


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
    raw: Sequence[Any],
    extensions: ArchiveExtensions,
    *,
    confirm_duplicates: bool,
) -> dict[str, Any]:
    """The import's answer, shaped as `ImportResult`."""
    if principal.kind == "key":
        principal.require_scope("customers:write")
    elif not (principal.is_admin or principal.is_manager):
        raise Forbidden("imports are for managers, admins and integrations")
    rows = validate_rows(raw)
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

    existing = await _existing(session, good)
    new_rows: list[_Row] = []
    updates: list[tuple[_Row, Any, dict[str, tuple[Any, Any]]]] = []
    for r in good:
        ref = r.data.external_ref
        match = existing.get((r.data.source or "", ref)) if ref is not None else None
        if match is None:
            new_rows.append(r)
        elif match.status == "merged":
            _fail(r, f"external_ref: customer {match.code} was merged into {match.merged_into_id}")
        elif not can_change(principal, match):
            _fail(r, "external_ref: belongs to a customer outside what you may change")
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
        r.keys = Keys.of(r.data)
    if not confirm_duplicates:
        keys = [r.keys for r in new_rows if r.keys is not None]
        _flag_duplicates(new_rows, await find_duplicates_bulk(session, keys))
        new_rows = [r for r in new_rows if r.outcome is None]

    owners = await plan_owners(session, principal, [r.data for r in new_rows])
    # Time-ordered ids: the batch appends to the primary-key index instead of dirtying a page
    # per row all over it (the largest single cost of a 10,000-row COPY into 1M customers).
    ids = iter(ordered_uuids(len(new_rows)))
    items: list[NewCustomer] = []
    for r, planned in zip(new_rows, owners, strict=True):
        if isinstance(planned, DomainError):
            _fail(r, planned.detail or planned.title)
            continue
        k = r.keys
        normal = (k.phone, k.email, k.name) if k is not None else None
        item = NewCustomer(r.data, planned[0], planned[1], id=next(ids), normal=normal)
        items.append(item)
        r.outcome = _outcome(r.index, "created", item.id)
    await create_customers_bulk(
        session, principal, items, extensions=extensions, principal=principal, reason="imported"
    )
    await _apply_updates(session, principal, updates)

    results = [r.outcome for r in rows if r.outcome is not None]
    counts = {"created": 0, "updated": 0, "unchanged": 0, "error": 0}
    for o in results:
        counts[o["outcome"]] += 1
    return {
        "results": results,
        "created": counts["created"],
        "updated": counts["updated"],
        "unchanged": counts["unchanged"],
        "errors": counts["error"],
    }


def _flag_duplicates(rows: list[_Row], matches: list[list[tuple[Any, list[str]]]]) -> None:
    """Rows that look like an existing customer, or like an earlier row of the same call."""
    batch_phone: dict[str, int] = {}
    batch_email: dict[str, int] = {}
    batch_name: dict[tuple[str, str], int] = {}
    for r, found in zip(rows, matches, strict=True):
        if found:
            desc = ", ".join(f"{m.code} (same {'/'.join(on)})" for m, on in found[:3])
            _fail(r, f"likely duplicate of {desc}; resend with confirm_duplicates=true to import")
            continue
        k = r.keys or Keys.of(r.data)
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
        )
        params.append({"_id": match.id, **values})
        history.append(
            history_row(
                match.id, after["version"], who, "updated", changes, comment="import", at=now
            )
        )
        emitted.append((events.CUSTOMER_UPDATED, match.id, events.updated(after, changes, who.id)))
        if "level" in changes:
            old, new = changes["level"]
            emitted.append(
                (
                    events.CUSTOMER_LEVEL_CHANGED,
                    match.id,
                    events.level_changed(after, old, new, who.id),
                )
            )
        r.outcome = _outcome(r.index, "updated", match.id)
    c = CUSTOMERS.c
    stmt = (
        sa.update(CUSTOMERS)
        .where(c.id == sa.bindparam("_id"))
        .values(
            {
                **{f: sa.bindparam(f) for f in UPDATABLE},
                "normalized_name": sa.bindparam("normalized_name"),
                "normalized_phone": sa.bindparam("normalized_phone"),
                "normalized_email": sa.bindparam("normalized_email"),
                "version": c.version + 1,
                "updated_at": now,
                "updated_by": who.id,
            }
        )
    )
    await session.execute(stmt, params)
    await write_history(session, history)
    await events.emit_many(session, emitted)
