"""Every statement of the archive (SQLAlchemy Core and ORM loads); services decide, this fetches
and writes what they decided. No rules here beyond how to ask PostgreSQL efficiently."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.access import key_reads
from customers.archive.extensions import PurchasesQuery, Section
from customers.archive.models import (
    CHANGE_REQUESTS,
    COUNTERS,
    CUSTOMERS,
    HISTORY,
    LEDGER,
    SETTINGS,
    ChangeRequest,
    Customer,
)
from customers.archive.schemas import CustomerRead
from servicekit.auth import Principal
from servicekit.bulk import insert_rows
from servicekit.pagination import PageParams, keyset, make_page

if TYPE_CHECKING:
    from customers.archive.settings import LevelThresholds

C = CUSTOMERS.c
L = LEDGER.c
TRAILING = timedelta(days=365)
# The record's public columns in `CustomerRead`'s order: a row of them is that schema's JSON.
RECORD = [C[f] for f in CustomerRead.model_fields]

SORTS: dict[str, list[sa.ColumnElement[Any]]] = {
    "created_at": [C.created_at, C.id],
    "updated_at": [C.updated_at, C.id],
    "name": [C.name, C.id],
    "code": [C.code],
}
_LEDGER_FIELDS = (
    "owner_id",
    "team_id",
    "started_at",
    "ended_at",
    "reason",
    "kind",
    "actor_id",
    "end_reason",
    "ended_by",
)


# --- who sees which customer, as SQL (the rule itself: access.py) ------------------------------


def visibility_filter(principal: Principal, table: sa.Table = CUSTOMERS) -> sa.ColumnElement[bool]:
    """The WHERE clause of "customers this principal may see" (`access.can_see` as SQL)."""
    c = table.c
    if principal.kind == "key":
        return sa.true() if key_reads(principal) else sa.false()
    if principal.is_admin:
        return sa.true()
    own = c.owner_id == principal.user_id if principal.user_id else sa.false()
    if principal.is_rep:
        return sa.or_(own, c.owner_id.is_(None))
    if principal.is_manager:
        teams = principal.team_uuids()
        clauses = [own, c.owner_id.is_(None)]
        if teams:
            clauses.append(c.team_id.in_(teams))
        return sa.or_(*clauses)
    return sa.false()


def _list_visibility(
    principal: Principal, *, owner_id: uuid.UUID | None, pool: bool
) -> list[sa.ColumnElement[bool]]:
    """`visibility_filter` for a list, as branches whose union is what the principal sees.

    Decided ahead when the list is narrowed to one owner or to the pool: otherwise the planner
    sees `(owner_id = me OR owner_id IS NULL) AND owner_id = X`, estimates a handful of rows and
    reads and sorts every row of the owner (a rep's own 5,000 customers: ~14 ms instead of
    ~0.1 ms on the owner's index). A rep's unnarrowed list is two branches (own, pool), each
    walking an owner index in page order; as one OR the planner reads and sorts every row the
    rep owns (~25 ms instead of ~0.3 ms).
    """
    if principal.kind == "user" and not principal.is_admin:
        me = principal.user_id
        if principal.is_rep or principal.is_manager:
            if pool:
                return [sa.true()]  # every rep and manager sees the pool
            if owner_id is not None:
                if owner_id == me:
                    return [sa.true()]
                if principal.is_rep:
                    return [sa.false()]  # someone else's customers: never a rep's
                return [C.team_id.in_(principal.team_uuids())]
            if principal.is_rep:
                own = C.owner_id == me if me else sa.false()
                return [own, C.owner_id.is_(None)]
    return [visibility_filter(principal)]


# --- records ----------------------------------------------------------------------------------


async def customer_by_id(
    session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False
) -> Customer | None:
    return await session.get(Customer, customer_id, with_for_update=for_update)


async def customers_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Customer]:
    stmt = sa.select(Customer).where(C.id.in_(ids))
    return list((await session.execute(stmt)).scalars())


async def owner_and_status(session: AsyncSession, customer_id: uuid.UUID) -> Any:
    """(owner_id, status) of a customer, or None: why a claim moved nothing."""
    stmt = sa.select(C.owner_id, C.status).where(C.id == customer_id)
    return (await session.execute(stmt)).first()


async def insert_customers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(session, CUSTOMERS, rows)


async def external_ref_owner(
    session: AsyncSession, source: str | None, external_ref: str
) -> uuid.UUID | None:
    stmt = sa.select(C.id).where(
        C.external_ref == external_ref,
        C.source.is_(None) if source is None else C.source == source,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class ListFilters:
    """The list's filters, values already normalised; the `*_like` are LIKE patterns."""

    region: str | None = None
    level: str | None = None
    owner_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    status: str | None = None
    tag: str | None = None
    pool: bool | None = None  # True: only the pool, False: only owned customers
    name_like: str | None = None
    code_like: str | None = None
    phone_like: str | None = None


async def list_page(
    session: AsyncSession,
    principal: Principal,
    filters: ListFilters,
    page: PageParams,
    *,
    sort: str,
    descending: bool,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the customers the principal may see that match `filters`, as dicts of the
    `RECORD` columns."""
    f = filters
    where: list[sa.ColumnElement[bool]] = []
    for column, value in (
        (C.region, f.region),
        (C.level, f.level),
        (C.owner_id, f.owner_id),
        (C.team_id, f.team_id),
        (C.status, f.status),
    ):
        if value is not None:
            where.append(column == value)
    if f.tag:
        where.append(C.tags.contains(sa.cast([f.tag], ARRAY(sa.Text))))
    if f.pool is True:
        where.append(C.owner_id.is_(None))
    elif f.pool is False:
        where.append(C.owner_id.is_not(None))
    if f.name_like is not None and f.code_like is not None:
        text = [C.name.ilike(f.name_like, escape="\\"), C.code.like(f.code_like, escape="\\")]
        if f.phone_like is not None:
            text.append(C.normalized_phone.like(f.phone_like))
        where.append(sa.or_(*text))
    columns = SORTS[sort]
    branches = [
        keyset(sa.select(*RECORD).where(visible, *where), columns, page, descending=descending)
        for visible in _list_visibility(principal, owner_id=f.owner_id, pool=f.pool is True)
    ]
    stmt = branches[0]
    if len(branches) > 1:
        merged = sa.union_all(*branches).subquery("visible")
        outer = [merged.c[str(c.key)] for c in columns]
        stmt = (
            sa.select(merged)
            .order_by(*[c.desc() if descending else c.asc() for c in outer])
            .limit(page.limit + 1)
        )
    result = await session.execute(stmt)
    names = list(map(str, result.keys()))
    rows = [dict(zip(names, row, strict=True)) for row in result]
    keys = [str(c.key) for c in columns]
    return make_page(rows, page, lambda r: [r[k] for k in keys])


# --- the full file and the card: one statement each ---------------------------------------------


def trailing_since(now: datetime) -> date:
    """The first day of the trailing-12-month window (UTC)."""
    return now.astimezone(UTC).date() - TRAILING


def purchases_select(
    customer_id: sa.ColumnElement[uuid.UUID],
    purchases: PurchasesQuery | None,
    since: sa.ColumnElement[date],
) -> sa.Select[Any]:
    """One row: the customer's purchases since `since` (0 without a purchases source)."""
    if purchases is None:
        return sa.select(sa.literal(0, sa.Numeric(16, 2)).label("amount"))
    sub = purchases(since).subquery("purchases")
    key, amount = list(sub.c)[:2]
    return sa.select(sa.func.coalesce(sa.func.sum(amount), 0).label("amount")).where(
        key == customer_id
    )


def _settings_data() -> sa.ScalarSelect[Any]:
    return sa.select(SETTINGS.c.data).where(SETTINGS.c.id == 1).scalar_subquery()


Sections = tuple[tuple[str, Section], ...]


def _sections(sections: Sections) -> list[sa.Label[Any]]:
    return [fn(C.id).label(f"section_{i}") for i, (_, fn) in enumerate(sections)]


def section_values(row: Any, sections: Mapping[str, Section]) -> dict[str, Any]:
    """The sections of a `customer_file` / `customer_card` row, by name."""
    return {name: row._mapping[f"section_{i}"] for i, name in enumerate(sections)}


# The full file and the card have the shape the wiring gives them (which sections, which
# purchases source), not one per request: each is built once per wiring, with the customer
# and the window as bound parameters. Building them per request cost more CPU than the rest
# of the request (bench/README.md); SQLAlchemy caches their compiled form as for any statement.
@functools.lru_cache(maxsize=16)
def _file_statement(sections: Sections, purchases: PurchasesQuery | None) -> sa.Select[Any]:
    entry = sa.func.json_build_object(*[p for f in _LEDGER_FIELDS for p in (sa.literal(f), L[f])])
    ledger = (
        sa.select(
            sa.func.coalesce(
                sa.func.json_agg(aggregate_order_by(entry, L.started_at, L.id)),
                sa.func.json_build_array(),
            )
        )
        .where(L.customer_id == C.id)
        .scalar_subquery()
    )
    bought = purchases_select(C.id, purchases, sa.bindparam("since", type_=sa.Date))
    return sa.select(
        CUSTOMERS,
        _settings_data().label("settings_data"),
        ledger.label("ledger"),
        bought.scalar_subquery().label("purchases_12m"),
        *_sections(sections),
    ).where(C.id == sa.bindparam("customer_id", type_=sa.Uuid))


@functools.lru_cache(maxsize=16)
def _card_statement(sections: Sections) -> sa.Select[Any]:
    return sa.select(
        CUSTOMERS, _settings_data().label("settings_data"), *_sections(sections)
    ).where(C.id == sa.bindparam("customer_id", type_=sa.Uuid))


async def customer_file(
    session: AsyncSession,
    customer_id: uuid.UUID,
    *,
    sections: Mapping[str, Section],
    purchases: PurchasesQuery | None,
    now: datetime,
) -> Any:
    """The record, the settings document, the custody ledger (JSON), the trailing purchases
    and every section, as correlated subqueries of one statement; None when no such id."""
    stmt = _file_statement(tuple(sections.items()), purchases)
    params = {"customer_id": customer_id, "since": trailing_since(now)}
    return (await session.execute(stmt, params)).first()


async def customer_card(
    session: AsyncSession, customer_id: uuid.UUID, *, sections: Mapping[str, Section]
) -> Any:
    """The record, the settings document and the card's sections in one statement."""
    stmt = _card_statement(tuple(sections.items()))
    return (await session.execute(stmt, {"customer_id": customer_id})).first()


# --- levels -----------------------------------------------------------------------------------


def _proposed_level(
    purchases: sa.ColumnElement[Any], thresholds: LevelThresholds
) -> sa.ColumnElement[str]:
    """`levels.proposed_level` as SQL."""
    pot = sa.func.coalesce(C.estimated_potential, 0)
    a, b = thresholds.A, thresholds.B
    return sa.case(
        (sa.or_(purchases >= a.purchases_12m, pot >= a.estimated_potential), sa.literal("A")),
        (sa.or_(purchases >= b.purchases_12m, pot >= b.estimated_potential), sa.literal("B")),
        else_=sa.literal("C"),
    )


async def level_proposals_page(
    session: AsyncSession,
    thresholds: LevelThresholds,
    *,
    purchases: PurchasesQuery | None,
    now: datetime,
    region: str | None,
    owner_id: uuid.UUID | None,
    principal: Principal,
    page: PageParams,
) -> tuple[list[Any], str | None]:
    """Active customers the principal may see whose proposed level differs from their level.

    Purchases are summed per customer as the page is walked (one index range per customer),
    not aggregated over every order first: a page stops as soon as it has its rows.
    """
    where = [visibility_filter(principal)]
    if region:
        where.append(C.region == region)
    if owner_id:
        where.append(C.owner_id == owner_id)
    # LATERAL: the sum is computed once per customer, though the CASE names it four times.
    since = sa.literal(trailing_since(now), sa.Date)
    per_customer = purchases_select(C.id, purchases, since).lateral("p12")
    bought = per_customer.c.amount
    level = _proposed_level(bought, thresholds)
    stmt = (
        sa.select(
            C.id,
            C.code,
            C.name,
            C.region,
            C.level,
            level.label("proposed_level"),
            bought.label("purchases_12m"),
            C.estimated_potential,
            C.owner_id,
            C.team_id,
            C.created_at,
        )
        .select_from(CUSTOMERS.join(per_customer, sa.true()))
        .where(C.status == "active", level != C.level, *where)
    )
    rows = (await session.execute(keyset(stmt, [C.created_at, C.id], page))).all()
    return make_page(rows, page, lambda r: [r.created_at, r.id])


# --- history ----------------------------------------------------------------------------------


async def write_history(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(session, HISTORY, rows)


async def history_page(
    session: AsyncSession, customer_id: uuid.UUID, page: PageParams
) -> tuple[list[Any], str | None]:
    stmt = keyset(
        sa.select(HISTORY).where(HISTORY.c.customer_id == customer_id),
        [HISTORY.c.id],
        page,
        descending=True,
    )
    rows = (await session.execute(stmt)).all()
    return make_page(rows, page, lambda r: [r.id])


async def changes_since(
    session: AsyncSession, customer_id: uuid.UUID, since: datetime
) -> list[dict[str, Any]]:
    """The customer's history entries after `since`, newest first."""
    rows = await session.execute(
        sa.select(HISTORY.c.changes, HISTORY.c.action)
        .where(HISTORY.c.customer_id == customer_id, HISTORY.c.at > since)
        .order_by(HISTORY.c.id.desc())
    )
    return [{"changes": r.changes, "action": r.action} for r in rows]


# --- ownership and the custody ledger ---------------------------------------------------------


async def ledger(session: AsyncSession, customer_id: uuid.UUID) -> list[Any]:
    stmt = sa.select(LEDGER).where(L.customer_id == customer_id).order_by(L.started_at, L.id)
    return list((await session.execute(stmt)).all())


async def open_periods(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(session, LEDGER, rows)


async def close_periods(
    session: AsyncSession,
    customer_ids: Sequence[uuid.UUID],
    *,
    at: datetime,
    reason: str,
    by: str | None,
) -> None:
    await session.execute(
        sa.update(LEDGER)
        .where(L.customer_id.in_(customer_ids), L.ended_at.is_(None))
        .values(ended_at=at, end_reason=reason, ended_by=by)
    )


ANY_OWNER: Any = object()


@dataclass(frozen=True, slots=True)
class OwnerMove:
    """Which customers an ownership move takes (`ANY_OWNER`: whoever holds them; None: the
    pool)."""

    from_owner_id: Any = ANY_OWNER
    customer_ids: Sequence[uuid.UUID] | None = None
    only_active: bool = False
    visible_to: Principal | None = None


async def move_owner(
    session: AsyncSession,
    move: OwnerMove,
    *,
    to_owner_id: uuid.UUID | None,
    to_team_id: uuid.UUID | None,
    at: datetime,
    by: str | None,
) -> list[Any]:
    """Lock (in id order) and move the customers `move` names whose owner or team differs
    from the target; returns the moved rows with `old_owner_id` / `old_team_id`."""
    where: list[sa.ColumnElement[bool]] = []
    if move.from_owner_id is None:
        where.append(C.owner_id.is_(None))
    elif move.from_owner_id is not ANY_OWNER:
        where.append(C.owner_id == move.from_owner_id)
    if move.customer_ids is not None:
        where.append(C.id.in_(move.customer_ids))
    if move.only_active:
        where.append(C.status == "active")
    if move.visible_to is not None:
        where.append(visibility_filter(move.visible_to))
    locked = (
        sa.select(C.id, C.owner_id, C.team_id)
        .where(
            *where,
            sa.or_(
                C.owner_id.is_distinct_from(to_owner_id), C.team_id.is_distinct_from(to_team_id)
            ),
        )
        .order_by(C.id)
        .with_for_update()
        .cte("locked")
    )
    stmt = (
        sa.update(CUSTOMERS)
        .where(C.id == locked.c.id)
        .values(
            owner_id=to_owner_id,
            team_id=to_team_id,
            version=C.version + 1,
            updated_at=at,
            updated_by=by,
        )
        .returning(
            *CUSTOMERS.c,
            locked.c.owner_id.label("old_owner_id"),
            locked.c.team_id.label("old_team_id"),
        )
    )
    return list((await session.execute(stmt)).all())


async def take_claim_turn(session: AsyncSession, owner_id: uuid.UUID) -> None:
    """One rep's claims take turns (a transaction-scoped advisory lock on the rep)."""
    key = sa.func.hashtext(f"claim:{owner_id}")
    await session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


async def claims_since(session: AsyncSession, owner_id: uuid.UUID, since: datetime) -> int:
    stmt = sa.select(sa.func.count()).where(
        L.owner_id == owner_id, L.kind == "claimed", L.started_at >= since
    )
    return int((await session.execute(stmt)).scalar_one())


async def held_by(session: AsyncSession, owner_id: uuid.UUID) -> int:
    stmt = sa.select(sa.func.count()).where(C.owner_id == owner_id, C.status == "active")
    return int((await session.execute(stmt)).scalar_one())


# --- codes ------------------------------------------------------------------------------------


async def reserve_codes(session: AsyncSession, counts: Mapping[str, int]) -> dict[str, int]:
    """Reserve `n` numbers per prefix key; returns the last number of each range."""
    keys = sorted(counts)  # one lock order for every transaction: no deadlocks between batches
    wanted = sa.select(
        sa.func.unnest(sa.cast(keys, ARRAY(sa.Text))).label("prefix"),
        sa.func.unnest(sa.cast([counts[k] for k in keys], ARRAY(sa.BigInteger))).label("n"),
    ).subquery("wanted")
    insert = pg_insert(COUNTERS).from_select(
        ["prefix", "last_value"], sa.select(wanted.c.prefix, wanted.c.n).order_by(wanted.c.prefix)
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[COUNTERS.c.prefix],
        set_={"last_value": COUNTERS.c.last_value + insert.excluded.last_value},
    ).returning(COUNTERS.c.prefix, COUNTERS.c.last_value)
    return {r.prefix: int(r.last_value) for r in await session.execute(stmt)}


# --- settings ---------------------------------------------------------------------------------


async def settings_row(session: AsyncSession) -> Any:
    """(data, version) of the settings document, None while the admins never saved any."""
    stmt = sa.select(SETTINGS.c.data, SETTINGS.c.version).where(SETTINGS.c.id == 1)
    return (await session.execute(stmt)).first()


async def save_settings(session: AsyncSession, data: dict[str, Any], actor_id: str | None) -> int:
    """Store the document; returns its new version."""
    insert = pg_insert(SETTINGS).values(
        id=1, data=data, version=1, updated_at=sa.func.now(), updated_by=actor_id
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[SETTINGS.c.id],
        set_={
            "data": insert.excluded.data,
            "version": SETTINGS.c.version + 1,
            "updated_at": sa.func.now(),
            "updated_by": insert.excluded.updated_by,
        },
    ).returning(SETTINGS.c.version)
    return int((await session.execute(stmt)).scalar_one())


# --- change requests --------------------------------------------------------------------------


def _requests_visible_to(principal: Principal) -> sa.ColumnElement[bool]:
    """Which requests a principal lists: managers their teams', reps their own, admins all."""
    t = CHANGE_REQUESTS.c
    if principal.kind != "user":
        return sa.false()
    if principal.is_admin:
        return sa.true()
    own = t.requested_by == principal.sub
    if principal.is_manager:
        teams = principal.team_uuids()
        return sa.or_(own, t.team_id.in_(teams)) if teams else own
    return own


async def change_requests_page(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    status: str | None,
    customer_id: uuid.UUID | None,
) -> tuple[list[Any], str | None]:
    t = CHANGE_REQUESTS.c
    stmt = sa.select(CHANGE_REQUESTS).where(_requests_visible_to(principal))
    if status is not None:
        stmt = stmt.where(t.status == status)
    if customer_id is not None:
        stmt = stmt.where(t.customer_id == customer_id)
    rows = (await session.execute(keyset(stmt, [t.created_at, t.id], page))).all()
    return make_page(rows, page, lambda r: [r.created_at, r.id])


async def change_request_by_id(
    session: AsyncSession, request_id: uuid.UUID, *, for_update: bool = False
) -> ChangeRequest | None:
    return await session.get(ChangeRequest, request_id, with_for_update=for_update)


async def add(session: AsyncSession, obj: Any) -> None:
    """A new ORM object (a change request), written with the next flush."""
    session.add(obj)
