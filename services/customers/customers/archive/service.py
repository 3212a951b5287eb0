"""The archive's rules: reads under the access rule (list, full file, card, as of), create
(codes, owner, history, events), update with approval of key fields, and the change-request
decisions. Services flush, never commit: the request's `KitRoute` (or the consumer's unit of
work) commits once. Ownership moves are `ownership.py`, history `history.py`.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive import codes, events, levels, lifecycle, ownership, repository
from customers.archive import settings as archive_settings
from customers.archive.access import (
    can_change,
    can_see,
    key_may,
    require_lookup,
    require_person,
    require_read,
    require_write,
)
from customers.archive.exceptions import (
    ChangeRequestNotFound,
    CodeTaken,
    CustomerChangedSinceRequest,
    CustomerNotFound,
    DuplicatesFound,
    StaleChangeRequest,
)
from customers.archive.extensions import ArchiveExtensions, Section, SectionSql
from customers.archive.history import (
    CONTENT_ACTIONS,
    Actor,
    as_actor,
    jsonable,
    last_time,
    record_change,
    replay_backwards,
    write_history,
)
from customers.archive.models import ChangeRequest, Customer
from customers.archive.schemas import (
    HISTORICAL_FIELDS,
    NOT_CONTENT_FIELDS,
    NOT_NULL_FIELDS,
    PUBLIC_FIELDS,
    CustomerCard,
    CustomerCreate,
    CustomerFile,
    CustomerFileAsOf,
    CustomerListQuery,
    CustomerLookupQuery,
    CustomerRead,
    CustomerRef,
    CustomerUpdate,
    LevelProposal,
)
from customers.archive.settings import SCORABLE_FIELDS, ArchiveSettingsDoc
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
    "withdraw_change_request",
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


async def lookup_customer(
    session: AsyncSession, principal: Principal, query: CustomerLookupQuery
) -> CustomerRef:
    """Resolve a customer by id, code or (source, external_ref) to how it is addressed: the
    one read a key that pushes orders has of customers. 404 when none matches or the caller
    may not see it."""
    require_lookup(principal)
    given = [f for f in ("id", "code", "external_ref") if getattr(query, f) is not None]
    if len(given) != 1:
        raise ValidationFailed(
            "give exactly one of id, code or external_ref",
            errors=[
                {"loc": ["query", f], "msg": "give exactly one of id, code or external_ref"}
                for f in (given or ["id", "code", "external_ref"])
            ],
        )
    if query.source is not None and query.external_ref is None:
        raise ValidationFailed.field("query.source", "goes with external_ref")
    row = await repository.customer_ref(
        session,
        customer_id=query.id,
        code=query.code.strip().upper() if query.code else None,
        source=query.source,
        external_ref=query.external_ref,
    )
    # A key holding a lookup scope resolves any customer; a user, those they may see.
    if row is None or (
        principal.kind != "key" and not can_see(principal, row.owner_id, row.team_id)
    ):
        raise CustomerNotFound(query.id or query.code or query.external_ref or "")
    return CustomerRef.model_validate(row, from_attributes=True)


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
        industry=query.industry.strip() if query.industry else None,
        incomplete=query.incomplete,
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


def readable_sections(
    principal: Principal, sections: Mapping[str, Section]
) -> dict[str, SectionSql]:
    """The sections the caller may see (each by its own scope), in the wiring's order."""
    return {name: s.sql for name, s in sections.items() if key_may(principal, s.scope)}


def shows_purchases(principal: Principal, extensions: ArchiveExtensions) -> bool:
    """May the caller see purchase figures (they are the orders' figures)?"""
    if principal.kind != "key":
        return True
    scope = extensions.purchases_scope
    return scope is not None and key_may(principal, scope)


async def customer_file(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    extensions: ArchiveExtensions,
) -> CustomerFile:
    """The full file: the record, its level (cadence, proposal), the custody ledger and the
    sections the other features add, read in one statement."""
    require_read(principal)
    sections = readable_sections(principal, extensions.file_sections)
    row = await repository.customer_file(
        session, customer_id, sections=sections, purchases=extensions.purchases, now=utcnow()
    )
    if row is None or not can_see(principal, row.owner_id, row.team_id):
        raise CustomerNotFound(customer_id)
    doc = archive_settings.from_json(row.settings_data)
    purchases = Decimal(row.purchases_12m or 0)
    level_info = {
        "level": row.level,
        "since": row.level_since,
        "cadence_days": doc.cadence(row.level),
        "proposed_level": levels.proposed_level(
            purchases, row.estimated_potential, doc.level_thresholds
        ),
        "purchases_12m": purchases if shows_purchases(principal, extensions) else None,
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
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    as_of: datetime,
    extensions: ArchiveExtensions,
) -> dict[str, Any]:
    """The full file as it was at `as_of`, in the shape of the current one: the record with
    its changes since then undone (history keeps diffs), its level as it was (and since
    when), the custody ledger up to then, the contacts as they were, and the sections read as
    of then (orders recorded and not cancelled by then, payments received and not reversed).
    Who may see it is decided by the record as it is now."""
    require_read(principal)
    sections = readable_sections(principal, extensions.file_sections)
    row = await repository.customer_file(
        session, customer_id, sections=sections, purchases=extensions.purchases, now=as_of
    )
    if row is None or not can_see(principal, row.owner_id, row.team_id):
        raise CustomerNotFound(customer_id)
    entries = await repository.history_entries(session, customer_id)
    older = [e for e in entries if e["at"] <= as_of]
    if not older:
        raise CustomerNotFound(customer_id)  # it did not exist yet
    values = repository.section_values(row, sections)
    current = CustomerRead.model_validate(row, from_attributes=True).model_dump(mode="json")
    contacts = values.get("contacts")
    if contacts is not None:
        current["contacts"] = contacts
    past = replay_backwards(current, [e for e in entries if e["at"] > as_of])
    if past is None:
        raise CustomerNotFound(customer_id)
    if contacts is not None:
        values["contacts"] = past.pop("contacts")
    doc = archive_settings.from_json(row.settings_data)
    changed_at = last_time(older)
    content_at = last_time([e for e in older if e["action"] in CONTENT_ACTIONS]) or changed_at
    past.update(
        version=max(e["version"] for e in older),
        updated_at=changed_at,
        level_since=last_time(older, touching="level"),
        status_since=last_time(older, touching="status") or last_time(older),
    )
    summary = (values.get("orders") or {}).get("summary") or {}
    past["last_order_date"] = summary.get("last_order_date")
    if "data_quality" in values:
        present = {
            f for f in SCORABLE_FIELDS if f != "contacts" and past.get(f) not in (None, "", [])
        }
        if values.get("contacts"):
            present.add("contacts")
        quality = doc.data_quality.assess(present, content_at, as_of)
        values["data_quality"] = quality
        past.update(quality_score=quality["score"], incomplete=quality["incomplete"])
    level = past.get("level")
    purchases = Decimal(row.purchases_12m or 0)
    level_info = None
    if level is not None:
        potential = past.get("estimated_potential")
        level_info = {
            "level": level,
            "since": past["level_since"],
            "cadence_days": doc.cadence(level),
            "proposed_level": levels.proposed_level(
                purchases,
                None if potential is None else Decimal(potential),
                doc.level_thresholds,
            ),
            "purchases_12m": purchases if shows_purchases(principal, extensions) else None,
        }
    ownership = []
    for period in row.ledger:
        if datetime.fromisoformat(period["started_at"]) > as_of:
            continue
        ended = period["ended_at"]
        if ended is not None and datetime.fromisoformat(ended) > as_of:
            period = {**period, "ended_at": None, "end_reason": None, "ended_by": None}
        ownership.append(period)
    return CustomerFileAsOf.model_validate(
        {
            **past,
            "level_info": level_info,
            "ownership": ownership,
            "sections": values,
            "as_of": as_of,
        }
    ).model_dump(mode="json")


async def customer_card(
    session: AsyncSession,
    principal: Principal,
    customer_id: uuid.UUID,
    extensions: ArchiveExtensions,
) -> tuple[CustomerCard, int]:
    """The rep's short card and the record's version, read in one statement."""
    require_read(principal)
    sections = readable_sections(principal, extensions.card_sections)
    row = await repository.customer_card(session, customer_id, sections=sections, now=utcnow())
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
    items = [LevelProposal.model_validate(r, from_attributes=True) for r in rows]
    if not shows_purchases(principal, extensions):
        for item in items:
            item.purchases_12m = None
    return Page(items=items, next_cursor=cursor)


async def save_settings(
    session: AsyncSession,
    principal: Principal,
    current: ArchiveSettingsDoc,
    doc: ArchiveSettingsDoc,
    extensions: ArchiveExtensions,
) -> int:
    """Store the settings (the caller checked the admin and If-Match); returns the version.
    New data-quality rules apply to every customer at once (the `after_change` hooks)."""
    version = await archive_settings.save(session, doc, principal.sub)
    if doc.data_quality != current.data_quality:
        await _after_change(session, extensions, None)
    return version


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
    principal: Principal,
    data: Any,
    extensions: ArchiveExtensions,
    exclude_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """The likely duplicates of `data` (a `CustomerCreate`, or a mapping of name, region, phone
    and email), as `principal` may be told of them."""
    if extensions.duplicate_finder is None:
        return []
    return await extensions.duplicate_finder(session, principal, data, exclude_id)


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
    if any(item.data.created_at for item in items):
        # Customers with a past get their numbers in the order they came to be.
        items = sorted(items, key=lambda item: item.data.created_at or now)
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
        created_at = d.created_at or now
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
                "status_since": created_at,
                "invalid_reason": None,
                "lost_reason": None,
                "lost_competitor": None,
                "merged_into_id": None,
                "external_ref": d.external_ref,
                "normalized_name": n_name,
                "normalized_phone": n_phone,
                "normalized_email": n_email,
                "level_since": d.level_since or created_at,
                "last_order_date": None,
                "content_updated_at": now,
                # Computed by the `after_change` hooks below (data quality).
                "quality_score": 0,
                "incomplete": False,
                "quality_alert": False,
                "quality_due_at": now,
                "quality": None,
                "version": 1,
                "created_at": created_at,
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
        text = str(getattr(exc, "orig", exc))
        if "uq_customers_source_external_ref" in text:
            raise Conflict("a customer with this source and external_ref exists") from None
        if "uq_customers_code" in text:
            # Only when the pattern changed and a new code meets one of the old pattern's
            # (`codes.validate_pattern` refuses patterns that collide by themselves).
            raise CodeTaken(
                "a new customer's code is already taken by a customer numbered under an "
                "earlier code pattern; nothing was created. Change the code pattern (for "
                "example its prefix) so the shapes differ"
            ) from None
        raise
    await ownership.open_periods(
        session,
        [
            ownership.ledger_row(
                r["id"],
                r["owner_id"],
                r["team_id"],
                item.data.owner_since or r["created_at"],
                reason,
                "created",
                who,
            )
            for r, item in zip(rows, items, strict=True)
        ],
    )
    history: list[dict[str, Any]] = []
    for r, item in zip(rows, items, strict=True):
        history.extend(_creation_history(r, item.data, who))
    await write_history(session, history)
    await events.emit_many(
        session,
        [
            (
                events.CUSTOMER_CREATED,
                r["id"],
                events.created(r, who.id, item.data.owner_since, item.data.level_since),
            )
            for r, item in zip(rows, items, strict=True)
        ],
    )
    for hook in extensions.after_create:
        await hook(session, principal, [(item.id, item.data) for item in items])
    await _after_change(session, extensions, [r["id"] for r in rows])
    return rows


def _creation_history(
    row: dict[str, Any], data: CustomerCreate, who: Actor
) -> list[dict[str, Any]]:
    """The `created` entry (what the caller gave or got, contacts included) at the creation;
    with a later `level_since` / `owner_since` (an import), the level and the owner enter
    the history at those times instead (before them: not known)."""
    created_at = row["created_at"]
    later = set()
    if data.level_since and data.level_since > created_at:
        later.add("level")
    if data.owner_since and data.owner_since > created_at:
        later |= {"owner_id", "team_id"}

    def entry(action: str, at: Any, fields: Any) -> dict[str, Any]:
        # What `history_row` would store for (None, value) pairs, without the detour.
        changes = {
            f: {"old": None, "new": row[f]} for f in fields if row[f] is not None and row[f] != []
        }
        return {
            "customer_id": row["id"],
            "version": 1,
            "at": at,
            "actor_id": who.id,
            "actor_kind": who.kind,
            "action": action,
            "changes": changes,
            "comment": None,
        }

    first = entry("created", created_at, [f for f in _CREATED_FIELDS if f not in later])
    if data.contacts:
        first["changes"]["contacts"] = {
            "old": None,
            "new": [c.model_dump(mode="json") for c in data.contacts],
        }
    out = [first]
    # In the order they happened: the history lists entries in the order they were written.
    for action, fields, at in sorted(
        (
            ("level_changed", ("level",), data.level_since),
            ("owner_changed", ("owner_id", "team_id"), data.owner_since),
        ),
        key=lambda step: step[2] or created_at,
    ):
        if at is not None and fields[0] in later:
            out.append(entry(action, at, fields))
    return out


async def _after_change(
    session: AsyncSession, extensions: ArchiveExtensions, ids: Sequence[uuid.UUID] | None
) -> None:
    for hook in extensions.after_change:
        await hook(session, ids)


async def content_changed(
    session: AsyncSession, extensions: ArchiveExtensions, customer: Customer
) -> None:
    """A part of the customer's content kept elsewhere changed (a contact): it counts as an
    update of the record for data quality. The caller holds the customer's lock."""
    customer.content_updated_at = utcnow()
    await session.flush()
    await _after_change(session, extensions, [customer.id])


async def create_customer(
    session: AsyncSession,
    principal: Principal,
    data: CustomerCreate,
    extensions: ArchiveExtensions,
    *,
    confirm_duplicates: bool,
) -> Customer:
    require_write(principal)
    if historical(data):
        require_history_writer(principal)
    doc, _ = await archive_settings.load(session)
    check_region(doc, data.region)
    (planned,) = await plan_owners(session, principal, [data])
    if isinstance(planned, DomainError):
        raise planned
    problem = check_history(data, planned[0], utcnow())
    if problem is not None:
        raise problem
    if data.external_ref is not None:
        existing = await repository.external_ref_holder(session, data.source, data.external_ref)
        if existing is not None:
            # Its id only to a caller who may see it: never a handle on another team's record.
            if can_see(principal, existing.owner_id, existing.team_id):
                raise Conflict(
                    "a customer with this source and external_ref exists",
                    existing_id=str(existing.id),
                )
            raise Conflict("a customer you cannot see has this source and external_ref")
    if not confirm_duplicates:
        candidates = await find_duplicates(session, principal, data, extensions)
        if candidates:
            raise DuplicatesFound(candidates)
    owner_id, team_id = planned
    item = NewCustomer(data, owner_id, team_id)
    await create_customers_bulk(
        session, principal, [item], extensions=extensions, principal=principal, settings=doc
    )
    customer = await repository.customer_by_id(session, item.id)
    assert customer is not None
    return customer


def historical(data: CustomerCreate) -> bool:
    """Does the new customer bring history (a past creation, owner or level since)?"""
    return any(getattr(data, f) is not None for f in HISTORICAL_FIELDS)


def may_write_history(principal: Principal) -> bool:
    """Admins and integration keys with customers:write bring in customers with a past."""
    if principal.kind == "key":
        return principal.has_scope("customers:write")
    return principal.kind == "user" and principal.is_admin


def require_history_writer(principal: Principal) -> None:
    if not may_write_history(principal):
        raise Forbidden(
            "only admins and integration keys with customers:write bring in customers with "
            f"a past ({', '.join(HISTORICAL_FIELDS)})"
        )


def check_history(
    data: CustomerCreate, owner_id: uuid.UUID | None, now: datetime
) -> ValidationFailed | None:
    """What is wrong with the times a new customer brings, or None: its creation is not in
    the future, and its owner and level hold from its creation at the earliest, until now."""
    created = data.created_at or now
    if created > now:
        return ValidationFailed.field("created_at", "is in the future")
    for name in ("owner_since", "level_since"):
        since = getattr(data, name)
        if since is None:
            continue
        if since > now:
            return ValidationFailed.field(name, "is in the future")
        if since < created:
            return ValidationFailed.field(name, "is before created_at")
    if data.owner_since is not None and owner_id is None:
        return ValidationFailed.field("owner_since", "a customer in the pool has no owner")
    return None


def check_region(doc: ArchiveSettingsDoc, region: str) -> None:
    """422 when the settings list the regions and `region` is not one of them."""
    problem = doc.unknown_region(normalize_region(region))
    if problem:
        raise ValidationFailed.field("region", problem)


def _diff(
    customer: Customer, data: CustomerUpdate, doc: ArchiveSettingsDoc
) -> dict[str, tuple[Any, Any]]:
    given = data.model_dump(exclude_unset=True, exclude={"reason"})
    changes: dict[str, tuple[Any, Any]] = {}
    for name, new in given.items():
        if name in NOT_NULL_FIELDS and new is None:
            raise ValidationFailed.field(name, "may not be null")
        if name == "region":
            new = normalize_region(new)
            if new != customer.region:
                check_region(doc, new)
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


# The fields a likely duplicate is recognised by.
_MATCHED_FIELDS = frozenset({"name", "region", "phone", "email"})


async def update_customer(
    session: AsyncSession,
    principal: Principal,
    customer: Customer,
    data: CustomerUpdate,
    extensions: ArchiveExtensions,
    *,
    confirm_duplicates: bool = False,
) -> tuple[Customer, ChangeRequest | None]:
    """Apply a PATCH (the record loaded as changeable and If-Match checked by the caller). A
    rep's change of a key field becomes a change request for a manager: nothing of that PATCH
    is applied then. A change that makes the record look like another customer (the same
    phone, email, or name in the region) answers 409 with the candidates unless confirmed."""
    require_write(principal)
    doc, _ = await archive_settings.load(session)
    changes = _diff(customer, data, doc)
    take_back = _taking_back(customer, changes)
    _check_status(customer, changes)
    if not changes and not take_back:
        return customer, None
    if not confirm_duplicates and _MATCHED_FIELDS & set(changes):
        after = {f: getattr(customer, f) for f in _MATCHED_FIELDS}
        after.update({f: new for f, (_, new) in changes.items() if f in _MATCHED_FIELDS})
        candidates = await find_duplicates(
            session, principal, after, extensions, exclude_id=customer.id
        )
        if candidates:
            raise DuplicatesFound(
                candidates,
                detail=f"{len(candidates)} other customer(s) look like this one after the "
                "change; resend with confirm_duplicates=true to change it anyway",
            )
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
            # The customer's team decides (the owner's team; the rep's token may lag a move).
            team = customer.team_id
            if team is None and principal.team_id:
                team = uuid.UUID(principal.team_id)
            request = ChangeRequest(
                customer_id=customer.id,
                requested_by=principal.sub,
                team_id=team,
                changes={f: jsonable(new) for f, (_, new) in changes.items()},
                base_version=customer.version,
                reason=data.reason,
            )
            await repository.add(session, request)
            await session.flush()
            await events.emit(session, *events.change_request_event(request, customer))
            return customer, request
    await apply_changes(session, principal, customer, changes, extensions, comment=data.reason)
    if take_back:
        await lifecycle.take_back_lost(session, principal, customer)
    return customer, None


def _taking_back(customer: Customer, changes: dict[str, tuple[Any, Any]]) -> bool:
    """Is the PATCH setting a lost customer active again (a manager's take-back)? The status
    change then goes through the lifecycle, not as a field change."""
    if changes.get("status", (None, None))[1] != "active" or customer.status == "invalid":
        return False
    if customer.status == "dormant":
        raise Conflict("a dormant customer becomes active with its next order")
    if customer.status == "lost":
        del changes["status"]
        return True
    return False


async def apply_changes(
    session: AsyncSession,
    actor: Actor | Principal,
    customer: Customer,
    changes: dict[str, tuple[Any, Any]],
    extensions: ArchiveExtensions,
    *,
    comment: str | None = None,
) -> None:
    """Write field changes (one version, one history entry, the events), then an owner change
    through the ownership path."""
    who = as_actor(actor)
    owner_change = changes.pop("owner_id", None)
    if changes:
        now = utcnow()
        for name, (_, new) in changes.items():
            setattr(customer, name, new)
        if {"name", "phone", "email"} & set(changes):
            for k, v in normalized(customer.name, customer.phone, customer.email).items():
                setattr(customer, k, v)
        if "level" in changes:
            customer.level_since = now
        if "status" in changes:
            customer.status_since = now
        if set(changes) - NOT_CONTENT_FIELDS:
            customer.content_updated_at = now
        customer.version += 1
        customer.updated_at = now
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
        await _after_change(session, extensions, [customer.id])
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


_REQUESTS = "change requests"


async def list_change_requests(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    status: str | None,
    customer_id: uuid.UUID | None,
) -> tuple[list[Any], str | None]:
    """The requests the principal may read: a manager their teams', a rep their own."""
    require_person(principal, _REQUESTS)
    return await repository.change_requests_page(
        session, principal, page, status=status, customer_id=customer_id
    )


async def read_change_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID
) -> ChangeRequest:
    """The request, or 404 when it does not exist or is not the principal's to see."""
    require_person(principal, _REQUESTS)
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
    extensions: ArchiveExtensions,
    *,
    approve: bool,
    comment: str | None,
) -> ChangeRequest:
    """Approve or reject a pending request. The approver must still be allowed to see and
    change the customer now, and an approval applies only while the customer is at the
    version the request was made against: a later change by anyone is never overwritten
    (409; the request can still be rejected or withdrawn). A move to another owner or team
    has already cancelled the request (`ownership.move_customers`)."""
    require_person(principal, _REQUESTS)
    customer_id = await repository.change_request_customer(session, request_id)
    if customer_id is None:
        raise ChangeRequestNotFound(request_id)
    # The customer's row first, then the request's: the order an ownership move takes them
    # (it cancels the customer's pending requests), so the two never deadlock.
    customer = await repository.customer_by_id(session, customer_id, for_update=True)
    request = await get_change_request(session, request_id, for_update=True)
    if not may_read_request(principal, request):
        raise ChangeRequestNotFound(request_id)
    if not may_decide(principal, request):
        raise Forbidden("only a manager of the customer's team decides this request")
    if request.status != "pending":
        raise StaleChangeRequest(f"the request was already {request.status}")
    if (
        customer is None
        or not can_see(principal, customer.owner_id, customer.team_id)
        or not can_change(principal, customer)
    ):
        raise Forbidden("the customer is no longer one you may change; the request stays pending")
    if approve and customer.version != request.base_version:
        raise CustomerChangedSinceRequest(request.base_version, customer.version)
    request.status = "approved" if approve else "rejected"
    request.decided_by = principal.sub
    request.decided_at = utcnow()
    request.comment = comment
    # Decided before the changes apply: an owner change cancels the customer's *pending*
    # requests, and this one is no longer among them.
    await session.flush()
    if approve:
        changes: dict[str, tuple[Any, Any]] = {}
        for name, value in request.changes.items():
            new = _from_json(name, value)
            if name == "region" and new is not None:
                new = normalize_region(new)
                if new != customer.region:
                    check_region((await archive_settings.load(session))[0], new)
            if getattr(customer, name) != new:
                changes[name] = (getattr(customer, name), new)
        _check_status(customer, changes)
        note = f"change request {request.id} by {request.requested_by} approved"
        if comment:
            note += f": {comment}"
        await apply_changes(session, principal, customer, changes, extensions, comment=note)
    await events.emit(session, *events.change_request_event(request, customer))
    return request


async def withdraw_change_request(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, comment: str | None
) -> ChangeRequest:
    """The author takes back their own pending request."""
    require_person(principal, _REQUESTS)
    request = await get_change_request(session, request_id, for_update=True)
    if not may_read_request(principal, request):
        raise ChangeRequestNotFound(request_id)
    if request.requested_by != principal.sub:
        raise Forbidden("only the rep who filed a change request withdraws it")
    if request.status != "pending":
        raise StaleChangeRequest(f"the request was already {request.status}")
    request.status = "withdrawn"
    request.decided_by = principal.sub
    request.decided_at = utcnow()
    request.comment = comment
    await session.flush()
    customer = await repository.customer_by_id(session, request.customer_id)
    if customer is None:  # customers are never deleted; merged ones stay
        raise CustomerNotFound(request.customer_id)
    await events.emit(session, *events.change_request_event(request, customer))
    return request
