"""The archive's rules: reads under the access rule (list, full file, card, as of), create
(codes, owner, history, events), update with approval of key fields, and the change-request
decisions. Services flush, never commit: the request's `KitRoute` (or the consumer's unit of
work) commits once. Ownership moves are `ownership.py`, history `history.py`.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import codes, events, levels, ownership, repository
from customers.archive import settings as archive_settings
from customers.archive.access import can_change, can_see, require_read, require_write
from customers.archive.exceptions import (
    ChangeRequestNotFound,
    CustomerNotFound,
    DuplicatesFound,
    StaleChangeRequest,
)
from customers.archive.extensions import ArchiveExtensions
from customers.archive.history import (
    Actor,
    as_actor,
    jsonable,
    record_change,
    replay_backwards,
    write_history,
)
from customers.archive.models import ChangeRequest, Customer
from customers.archive.schemas import (
    NOT_NULL_FIELDS,
    PUBLIC_FIELDS,
    CustomerCard,
    CustomerCreate,
    CustomerFile,
    CustomerListQuery,
    CustomerRead,
    CustomerUpdate,
    LevelProposal,
)
from customers.archive.settings import ArchiveSettingsDoc
from customers.models import directory
from servicekit.auth import Principal
from servicekit.db import utcnow
from servicekit.errors import Conflict, DomainError, Forbidden, ValidationFailed
from servicekit.ids import new_id
from servicekit.normalize import (
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_region,
)
from servicekit.pagination import Page, PageParams

__all__ = [
    "NewCustomer",
    "apply_changes",
    "create_customer",
    "create_customers_bulk",
    "decide_change_request",
    "find_duplicates",
    "get_changeable_customer",
    "get_visible_customer",
    "plan_owners",
    "record_change",
    "update_customer",
]

# The fields history shows for a new customer (old = null): what the caller gave or got.
_CREATED_FIELDS = (
    *(f for f in PUBLIC_FIELDS if f not in {"id", "version", "created_at", "updated_at"}),
    "location",
)


# --- reads under the access rule --------------------------------------------------------------


async def get_visible_customer(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    *,
    for_update: bool = False,
) -> Customer:
    """The customer, or 404 when it does not exist or the principal may not see it."""
    customer = await repository.customer_by_id(session, customer_id, for_update=for_update)
    if customer is None or not can_see(principal, customer.owner_id, customer.team_id):
        raise CustomerNotFound(customer_id)
    return customer


async def get_changeable_customer(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID
) -> Customer:
    """Locked for the change: 404 when invisible, 403 when visible but not theirs to change."""
    customer = await get_visible_customer(session, principal, customer_id, for_update=True)
    if not can_change(principal, customer):
        raise Forbidden("you may read this customer but not change it")
    return customer


def _like(text: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", text)


async def list_customers(
    session: AsyncSession, principal: Principal, query: CustomerListQuery
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the customers the principal may see, each `CustomerRead`'s fields (the rows'
    columns are the schema's), and the next cursor. `q` matches the name anywhere, the code's
    start and, from three digits on, the normalised phone's start."""
    require_read(principal)
    name_like = code_like = phone_like = None
    if query.q:
        text = query.q.strip()
        name_like, code_like = f"%{_like(text)}%", f"{_like(text.upper())}%"
        digits = normalize_phone(text)
        if digits and len(digits) >= 3:
            phone_like = f"{digits}%"
    filters = repository.ListFilters(
        region=normalize_region(query.region) if query.region else None,
        level=query.level or None,
        owner_id=query.owner_id,
        team_id=query.team_id,
        status=query.status or None,
        tag=query.tag or None,
        pool=query.pool,
        name_like=name_like,
        code_like=code_like,
        phone_like=phone_like,
    )
    return await repository.list_page(
        session,
        principal,
        filters,
        PageParams(query.limit, query.cursor),
        sort=query.sort,
        descending=query.order == "desc",
    )


async def customer_file(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    extensions: ArchiveExtensions,
) -> CustomerFile:
    """The full file: the record, its level (cadence, proposal), the custody ledger and the
    sections the other features add, read in one statement."""
    require_read(principal)
    sections = extensions.file_sections
    row = await repository.customer_file(
        session, customer_id, sections=sections, purchases=extensions.purchases, now=utcnow()
    )
    if row is None or not can_see(principal, row.owner_id, row.team_id):
        raise CustomerNotFound(customer_id)
    doc = archive_settings.from_json(row.settings_data)
    purchases = Decimal(row.purchases_12m or 0)
    level_info = {
        "level": row.level,
        "cadence_days": doc.cadence(row.level),
        "proposed_level": levels.proposed_level(
            purchases, row.estimated_potential, doc.level_thresholds
        ),
        "purchases_12m": purchases,
    }
    return CustomerFile.model_validate(
        {
            **row._mapping,
            "level_info": level_info,
            "ownership": row.ledger,
            "sections": repository.section_values(row, sections),
        }
    )


async def customer_as_of(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID, as_of: datetime
) -> dict[str, Any]:
    """The record as it was at `as_of`: its changes since then undone, newest first."""
    require_read(principal)
    customer = await get_visible_customer(session, principal, customer_id)
    current = CustomerRead.model_validate(customer, from_attributes=True).model_dump(mode="json")
    newer = await repository.changes_since(session, customer_id, as_of)
    state = replay_backwards(current, newer)
    if state is None:
        raise CustomerNotFound(customer_id)
    past = CustomerRead.model_validate(state).model_dump(mode="json")
    return {**past, "as_of": as_of.isoformat()}


async def customer_card(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    extensions: ArchiveExtensions,
) -> tuple[CustomerCard, int]:
    """The rep's short card and the record's version, read in one statement."""
    require_read(principal)
    sections = extensions.card_sections
    row = await repository.customer_card(session, customer_id, sections=sections)
    if row is None or not can_see(principal, row.owner_id, row.team_id):
        raise CustomerNotFound(customer_id)
    doc = archive_settings.from_json(row.settings_data)
    card = CustomerCard.model_validate(
        {
            **row._mapping,
            "cadence_days": doc.cadence(row.level),
            "sections": repository.section_values(row, sections),
        }
    )
    return card, int(row.version)


async def level_proposals(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    extensions: ArchiveExtensions,
    *,
    region: str | None,
    owner_id: uuid.UUID | None,
) -> Page[LevelProposal]:
    require_read(principal)
    doc, _ = await archive_settings.load(session)
    rows, cursor = await repository.level_proposals_page(
        session,
        doc.level_thresholds,
        purchases=extensions.purchases,
        now=utcnow(),
        region=normalize_region(region) if region else None,
        owner_id=owner_id,
        principal=principal,
        page=page,
    )
    return Page(
        items=[LevelProposal.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=cursor,
    )


# --- creating customers -----------------------------------------------------------------------


@dataclass(slots=True)
class NewCustomer:
    """One row to create, with its owner already resolved (see `plan_owners`)."""

    data: CustomerCreate
    owner_id: uuid.UUID | None
    team_id: uuid.UUID | None
    id: uuid.UUID = field(default_factory=new_id)
    # (phone, email, name) normal forms when the caller already computed them (the import
    # did, for its duplicate check); None: computed here.
    normal: tuple[str | None, str | None, str | None] | None = None


def normalized(name: str | None, phone: str | None, email: str | None) -> dict[str, str | None]:
    return {
        "normalized_name": normalize_name(name),
        "normalized_phone": normalize_phone(phone),
        "normalized_email": normalize_email(email),
    }


async def plan_owners(
    session: AsyncSession, principal: Principal, rows: Sequence[CustomerCreate]
) -> list[tuple[uuid.UUID | None, uuid.UUID | None] | DomainError]:
    """(owner, team) per row, or the row's error: a rep owns what they create; a manager,
    admin or key may name an active owner (a manager: one of their teams) or leave it in the
    pool. One directory query for the whole batch."""
    if principal.kind == "user" and principal.is_rep:
        me = principal.user_id
        team = uuid.UUID(principal.team_id) if principal.team_id else None
        return [
            (me, team)
            if r.owner_id in (None, me)
            else ValidationFailed.field("owner_id", "a rep creates customers for themselves")
            for r in rows
        ]
    users = await directory.get_users(
        session, [r.owner_id for r in rows if r.owner_id and r.owner_id != principal.user_id]
    )
    out: list[tuple[uuid.UUID | None, uuid.UUID | None] | DomainError] = []
    for r in rows:
        if r.owner_id is None:
            out.append((None, None))
        elif r.owner_id == principal.user_id:
            out.append((r.owner_id, uuid.UUID(principal.team_id) if principal.team_id else None))
        elif (user := users.get(r.owner_id)) is None:
            out.append(ValidationFailed.field("owner_id", "unknown user"))
        elif not user.active:
            out.append(ValidationFailed.field("owner_id", "the user is deactivated"))
        elif principal.is_manager and not principal.sees_team(user.team_id):
            out.append(ValidationFailed.field("owner_id", "the user is not in one of your teams"))
        else:
            out.append((user.id, user.team_id))
    return out


async def find_duplicates(
    session: AsyncSession,
    data: CustomerCreate,
    extensions: ArchiveExtensions,
    exclude_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    if extensions.duplicate_finder is None:
        return []
    return await extensions.duplicate_finder(session, data, exclude_id)


async def create_customers_bulk(
    session: AsyncSession,
    actor: Actor | Principal | None,
    items: Sequence[NewCustomer],
    *,
    extensions: ArchiveExtensions,
    principal: Principal | None = None,
    settings: ArchiveSettingsDoc | None = None,
    reason: str = "created",
) -> list[dict[str, Any]]:
    """Insert many customers in a handful of statements: one code reservation per batch,
    then executemany inserts of the rows, their ledger periods, history and events.

    No duplicate check and no owner resolution here: the caller did both (import decides
    per row). Returns the inserted rows as dicts (column -> value).
    """
    if not items:
        return []
    who = as_actor(actor)
    doc = settings or (await archive_settings.load(session))[0]
    now = utcnow()
    keys = []
    known: dict[tuple[str, str], str] = {}
    for item in items:
        shape = (item.data.region, item.data.level)
        key = known.get(shape)
        if key is None:
            region = normalize_region(item.data.region)
            key = codes.prefix_key(doc.code_pattern, region, item.data.level, now.year)
            known[shape] = key
        keys.append(key)
    firsts = await codes.reserve(session, Counter(keys))
    rows: list[dict[str, Any]] = []
    for item, key in zip(items, keys, strict=True):
        seq = firsts[key]
        firsts[key] = seq + 1
        d = item.data
        region = normalize_region(d.region)  # cached
        if item.normal is None:
            n_phone, n_email, n_name = (
                normalize_phone(d.phone),
                normalize_email(d.email),
                normalize_name(d.name),
            )
        else:
            n_phone, n_email, n_name = item.normal
        rows.append(
            {
                "id": item.id,
                "code": codes.render_key(key, seq),
                "name": d.name,
                "region": region,
                "level": d.level,
                "industry": d.industry,
                "address": d.address,
                "phone": d.phone,
                "email": d.email,
                "source": d.source,
                "tags": list(d.tags),
                "estimated_potential": d.estimated_potential,
                "location": None if d.location is None else d.location.model_dump(),
                "owner_id": item.owner_id,
                "team_id": item.team_id,
                "status": "active",
                "invalid_reason": None,
                "merged_into_id": None,
                "external_ref": d.external_ref,
                "normalized_name": n_name,
                "normalized_phone": n_phone,
                "normalized_email": n_email,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "created_by": who.id,
                "updated_by": who.id,
            }
        )
    try:
        await repository.insert_customers(session, rows)
    except (IntegrityError, asyncpg.UniqueViolationError) as exc:
        # A concurrent create took the same (source, external_ref) after our check; the
        # request rolls back, the reserved code numbers with it. (COPY raises asyncpg's own.)
        if "uq_customers_source_external_ref" in str(getattr(exc, "orig", exc)):
            raise Conflict("a customer with this source and external_ref exists") from None
        raise
    await ownership.open_periods(
        session,
        [
            ownership.ledger_row(r["id"], r["owner_id"], r["team_id"], now, reason, "created", who)
            for r in rows
        ],
    )
    await write_history(
        session,
        [
            {
                "customer_id": r["id"],
                "version": 1,
                "at": now,
                "actor_id": who.id,
                "actor_kind": who.kind,
                "action": "created",
                # What `history_row` would store for (None, value) pairs, without the detour.
                "changes": {
                    f: {"old": None, "new": r[f]}
                    for f in _CREATED_FIELDS
                    if r[f] is not None and r[f] != []
                },
                "comment": None,
            }
            for r in rows
        ],
    )
    await events.emit_many(
        session, [(events.CUSTOMER_CREATED, r["id"], events.created(r, who.id)) for r in rows]
    )
    for hook in extensions.after_create:
        await hook(session, principal, [(item.id, item.data) for item in items])
    return rows


async def create_customer(
    session: AsyncSession,
    principal: Principal,
    data: CustomerCreate,
    extensions: ArchiveExtensions,
    *,
    confirm_duplicates: bool,
) -> Customer:
    require_write(principal)
    (planned,) = await plan_owners(session, principal, [data])
    if isinstance(planned, DomainError):
        raise planned
    if data.external_ref is not None:
        existing = await repository.external_ref_owner(session, data.source, data.external_ref)
        if existing is not None:
            raise Conflict(
                "a customer with this source and external_ref exists", existing_id=str(existing)
            )
    if not confirm_duplicates:
        candidates = await find_duplicates(session, data, extensions)
        if candidates:
            raise DuplicatesFound(candidates)
    owner_id, team_id = planned
    item = NewCustomer(data, owner_id, team_id)
    await create_customers_bulk(
        session, principal, [item], extensions=extensions, principal=principal
    )
    customer = await repository.customer_by_id(session, item.id)
    assert customer is not None
    return customer


def _diff(customer: Customer, data: CustomerUpdate) -> dict[str, tuple[Any, Any]]:
    given = data.model_dump(exclude_unset=True, exclude={"reason"})
    changes: dict[str, tuple[Any, Any]] = {}
    for name, new in given.items():
        if name in NOT_NULL_FIELDS and new is None:
            raise ValidationFailed.field(name, "may not be null")
        if name == "region":
            new = normalize_region(new)
        old = getattr(customer, name)
        if old != new:
            changes[name] = (old, new)
    return changes


def _check_status(customer: Customer, changes: dict[str, tuple[Any, Any]]) -> None:
    if customer.status == "merged" and changes:
        raise Conflict("a merged customer is read-only; change the customer it was merged into")
    status = changes.get("status", (None, customer.status))[1]
    reason = changes.get("invalid_reason", (None, customer.invalid_reason))[1]
    if status == "invalid" and not reason:
        raise ValidationFailed.field("invalid_reason", "is required when status is invalid")
    if status == "active" and "invalid_reason" in changes and changes["invalid_reason"][1]:
        raise ValidationFailed.field("invalid_reason", "only an invalid customer has one")
    if status == "active" and customer.invalid_reason is not None:
        changes["invalid_reason"] = (customer.invalid_reason, None)


async def update_customer(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    data: CustomerUpdate,
) -> tuple[Customer, ChangeRequest | None]:
    """Apply a PATCH (the record loaded as changeable and If-Match checked by the caller). A
    rep's change of a key field becomes a change request for a manager: nothing of that PATCH
    is applied then."""
    require_write(principal)
    changes = _diff(customer, data)
    _check_status(customer, changes)
    if not changes:
        return customer, None
    doc, _ = await archive_settings.load(session)
    if principal.kind == "user" and principal.is_rep:
        if (
            "owner_id" in changes
            and changes["owner_id"][1] is not None
            and "owner_id" not in doc.approval_fields
        ):
            raise ValidationFailed.field("owner_id", "reps hand customers over via transfers")
        if "owner_id" in changes and changes["owner_id"][1] is None:
            raise ValidationFailed.field("owner_id", "use POST /{id}/release to give it back")
        if any(f in doc.approval_fields for f in changes):
            request = ChangeRequest(
                customer_id=customer.id,
                requested_by=principal.sub,
                team_id=uuid.UUID(principal.team_id) if principal.team_id else customer.team_id,
                changes={f: jsonable(new) for f, (_, new) in changes.items()},
                base_version=customer.version,
                reason=data.reason,
            )
            await repository.add(session, request)
            await session.flush()
            return customer, request
    await apply_changes(session, principal, customer, changes, comment=data.reason)
    return customer, None


async def apply_changes(
    session: AsyncSession,
    actor: Actor | Principal,
    customer: Customer,
    changes: dict[str, tuple[Any, Any]],
    *,
    comment: str | None = None,
) -> None:
    """Write field changes (one version, one history entry, the events), then an owner change
    through the ownership path."""
    who = as_actor(actor)
    owner_change = changes.pop("owner_id", None)
    if changes:
        for name, (_, new) in changes.items():
            setattr(customer, name, new)
        if {"name", "phone", "email"} & set(changes):
            for k, v in normalized(customer.name, customer.phone, customer.email).items():
                setattr(customer, k, v)
        customer.version += 1
        customer.updated_at = utcnow()
        customer.updated_by = who.id
        try:
            await session.flush()
        except IntegrityError as exc:
            if "uq_customers_source_external_ref" in str(exc.orig):
                raise ValidationFailed.field(
                    "external_ref", "another customer of this source has it"
                ) from None
            raise
        await record_change(session, customer, who, changes, comment=comment)
        await events.emit(
            session, events.CUSTOMER_UPDATED, customer.id, events.updated(customer, changes, who.id)
        )
        if "level" in changes:
            old, new = changes["level"]
            await events.emit(
                session,
                events.CUSTOMER_LEVEL_CHANGED,
                customer.id,
                events.level_changed(customer, old, new, who.id),
            )
        if "status" in changes and changes["status"][1] == "invalid":
            await events.emit(
                session,
                events.CUSTOMER_INVALIDATED,
                customer.id,
                events.invalidated(customer, customer.invalid_reason, who.id),
            )
    if owner_change is not None:
        new_owner = owner_change[1]
        if isinstance(actor, Principal):
            owner, team = await ownership.resolve_target(session, actor, new_owner, "owner_id")
        else:
            user = None if new_owner is None else await directory.get_user(session, new_owner)
            owner, team = new_owner, None if user is None else user.team_id
        moved = await ownership.move_customers(
            session,
            actor,
            to_owner_id=owner,
            to_team_id=team,
            reason=comment or "reassigned",
            kind="reassigned",
            customer_ids=[customer.id],
        )
        if not moved.rows:
            raise Conflict("the customer's owner changed meanwhile; read it again")


async def get_change_request(
    session: AsyncSession, request_id: uuid.UUID, *, for_update: bool = False
) -> ChangeRequest:
    request = await repository.change_request_by_id(session, request_id, for_update=for_update)
    if request is None:
        raise ChangeRequestNotFound(request_id)
    return request


def may_decide(principal: Principal, request: ChangeRequest) -> bool:
    if principal.kind != "user":
        return False
    if principal.is_admin:
        return True
    return principal.is_manager and principal.sees_team(request.team_id)


def may_read_request(principal: Principal, request: ChangeRequest) -> bool:
    return may_decide(principal, request) or request.requested_by == principal.sub


async def read_change_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> ChangeRequest:
    """The request, or 404 when it does not exist or is not the principal's to see."""
    request = await get_change_request(session, request_id)
    if not may_read_request(principal, request):
        raise ChangeRequestNotFound(request_id)
    return request


def _from_json(field_name: str, value: Any) -> Any:
    return CustomerUpdate.model_validate({field_name: value}).model_dump()[field_name]


async def decide_change_request(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    *,
    approve: bool,
    comment: str | None,
) -> ChangeRequest:
    request = await get_change_request(session, request_id, for_update=True)
    if not may_read_request(principal, request):
        raise ChangeRequestNotFound(request_id)
    if not may_decide(principal, request):
        raise Forbidden("only a manager of the requester's team decides this request")
    if request.status != "pending":
        raise StaleChangeRequest(f"the request was already {request.status}")
    request.status = "approved" if approve else "rejected"
    request.decided_by = principal.sub
    request.decided_at = utcnow()
    request.comment = comment
    if approve:
        customer = await repository.customer_by_id(session, request.customer_id, for_update=True)
        if customer is None:
            raise CustomerNotFound(request.customer_id)
        if customer.status == "merged":
            raise Conflict("the customer was merged meanwhile; the request cannot apply")
        changes: dict[str, tuple[Any, Any]] = {}
        for name, value in request.changes.items():
            new = _from_json(name, value)
            if name == "region" and new is not None:
                new = normalize_region(new)
            if getattr(customer, name) != new:
                changes[name] = (getattr(customer, name), new)
        _check_status(customer, changes)
        note = f"change request {request.id} by {request.requested_by} approved"
        if comment:
            note += f": {comment}"
        await apply_changes(session, principal, customer, changes, comment=note)
    await session.flush()
    return request
