"""Every statement of data quality: the score as SQL, the incomplete-records page, likely
duplicates, the import's lookups and updates, the merge's moves and the export's stream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from customers.archive.models import CUSTOMERS
from customers.archive.repository import visibility_filter
from customers.commerce.models import CONTACTS, ORDERS, PAYMENTS
from customers.quality.scoring import FRESH_DAYS, FRESH_POINTS, PARTS, RECENT_DAYS, RECENT_POINTS
from servicekit.auth import Principal
from servicekit.pagination import PageParams, keyset, make_page

C = CUSTOMERS.c
TEXT_ARRAY: Any = ARRAY(sa.Text)
MAX_CANDIDATES = 20
EXPORT_BATCH = 2000
# The columns duplicates are matched and reported on.
_MATCH_COLUMNS = (
    C.id,
    C.code,
    C.name,
    C.region,
    C.owner_id,
    C.team_id,
    C.status,
    C.normalized_phone,
    C.normalized_email,
    C.normalized_name,
)


def _texts(values: Sequence[str | None]) -> sa.ColumnElement[list[str]]:
    # One array parameter instead of one parameter per value: a 10,000-row import stays one
    # short statement, far below the protocol's 32,767-parameter limit.
    return sa.cast(sa.bindparam(None, list(values)), TEXT_ARRAY)


# --- the score (`scoring.PARTS`) as SQL ---------------------------------------------------------


def _present(field: str) -> sa.ColumnElement[bool]:
    if field == "contacts":
        return sa.exists().where(CONTACTS.c.customer_id == C.id)
    col = C[field]
    if field == "tags":
        return sa.func.cardinality(col) > 0
    if isinstance(col.type, sa.String | sa.Text):
        return sa.func.coalesce(sa.func.btrim(col), "") != ""
    return col.is_not(None)


def score_sql(now: datetime | sa.ColumnElement[datetime]) -> sa.ColumnElement[int]:
    terms: list[sa.ColumnElement[int]] = [
        sa.case((_present(p.field), p.points), else_=0) for p in PARTS
    ]
    terms.append(
        sa.case(
            (C.updated_at >= now - timedelta(days=FRESH_DAYS), FRESH_POINTS),
            (C.updated_at >= now - timedelta(days=RECENT_DAYS), RECENT_POINTS),
            else_=0,
        )
    )
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return sa.cast(total, sa.Integer)


def data_quality_section(customer_id: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The full file's data_quality section (`DataQuality`'s JSON), computed in the file's own
    statement: the customer's columns are in scope there."""
    now = sa.func.now()

    def missing(required: bool) -> sa.ColumnElement[Any]:
        names = [
            sa.case((_present(p.field), sa.null()), else_=sa.literal(p.field))
            for p in PARTS
            if p.required is required
        ]
        return sa.func.to_json(sa.func.array_remove(pg_array(names), sa.null()))

    return sa.func.json_build_object(
        "score",
        score_sql(now),
        "missing_required",
        missing(True),
        "missing_recommended",
        missing(False),
        "stale",
        C.updated_at < now - timedelta(days=FRESH_DAYS),
    )


async def incomplete_page(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    now: datetime,
    below: int,
    level: str | None,
    region: str | None,
    owner_id: uuid.UUID | None,
) -> tuple[list[Any], str | None]:
    """Active customers the principal may see scoring under `below`, worst first; each row
    carries `score` and one `has_<field>` flag per part."""
    score = score_sql(now)
    stmt = sa.select(
        C.id,
        C.code,
        C.name,
        C.region,
        C.level,
        C.owner_id,
        C.team_id,
        C.updated_at,
        score.label("score"),
        *[_present(p.field).label(f"has_{p.field}") for p in PARTS],
    ).where(C.status == "active", visibility_filter(principal), score < below)
    for column, value in ((C.level, level), (C.region, region), (C.owner_id, owner_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    rows = (await session.execute(keyset(stmt, [score, C.id], page))).all()
    return make_page(rows, page, lambda r: (r.score, r.id))


# --- likely duplicates --------------------------------------------------------------------------


def _matching(
    phones: Sequence[str], emails: Sequence[str], pairs: Sequence[tuple[str, str]]
) -> sa.Subquery | None:
    """Active customers with one of the phones or emails, or one of the (region, name) pairs:
    a UNION of one index-driven branch per rule (phone index, email index, (region,
    normalized_name) index probed once per pair)."""
    active = C.status == "active"
    branches: list[sa.Select[Any]] = []
    if phones:
        branches.append(
            sa.select(*_MATCH_COLUMNS).where(C.normalized_phone == sa.any_(_texts(phones)), active)
        )
    if emails:
        branches.append(
            sa.select(*_MATCH_COLUMNS).where(C.normalized_email == sa.any_(_texts(emails)), active)
        )
    if pairs:
        wanted = sa.select(
            sa.func.unnest(_texts([p[0] for p in pairs])).label("r"),
            sa.func.unnest(_texts([p[1] for p in pairs])).label("n"),
        ).subquery("wanted")
        branches.append(
            sa.select(*_MATCH_COLUMNS)
            .select_from(
                CUSTOMERS.join(
                    wanted, sa.and_(C.region == wanted.c.r, C.normalized_name == wanted.c.n)
                )
            )
            .where(active)
        )
    if not branches:
        return None
    if len(branches) == 1:
        return branches[0].subquery("matches")
    return sa.union(*branches).subquery("matches")


async def matching_customers(
    session: AsyncSession,
    *,
    phones: Sequence[str],
    emails: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    exclude_id: uuid.UUID | None = None,
    limit: int | None = None,
) -> list[Any]:
    """The active customers matching any of the keys (by code when limited)."""
    matches = _matching(phones, emails, pairs)
    if matches is None:
        return []
    stmt = sa.select(matches)
    if exclude_id is not None:
        stmt = stmt.where(matches.c.id != exclude_id)
    if limit is not None:
        stmt = stmt.order_by(matches.c.code).limit(limit)
    return list((await session.execute(stmt)).all())


# --- import -------------------------------------------------------------------------------------


async def lock_by_external_refs(
    session: AsyncSession, refs: Sequence[tuple[str | None, str]]
) -> list[Any]:
    """The customers holding these (source, external_ref) pairs, locked in id order (like every
    batch, so two imports cannot deadlock): no change slips in between reading and updating.
    Both branches use the (source, external_ref) unique index."""
    sourced = sorted({(s, ref) for s, ref in refs if s is not None})
    unsourced = sorted({ref for s, ref in refs if s is None})
    branches: list[sa.ColumnElement[bool]] = []
    if sourced:
        wanted = sa.select(
            sa.func.unnest(_texts([p[0] for p in sourced])),
            sa.func.unnest(_texts([p[1] for p in sourced])),
        )
        branches.append(sa.tuple_(C.source, C.external_ref).in_(wanted))
    if unsourced:
        branches.append(sa.and_(C.source.is_(None), C.external_ref == sa.any_(_texts(unsourced))))
    if not branches:
        return []
    # `external_ref IS NOT NULL` lets the planner use the partial unique index.
    stmt = (
        sa.select(CUSTOMERS)
        .where(C.external_ref.is_not(None), sa.or_(*branches))
        .order_by(C.id)
        .with_for_update()
    )
    return list((await session.execute(stmt)).all())


async def update_customers(
    session: AsyncSession,
    fields: Sequence[str],
    rows: Sequence[dict[str, Any]],
    *,
    at: datetime,
    by: str | None,
) -> None:
    """One executemany UPDATE: each row is `{"_id": id, <field>: value, ...}` for `fields`;
    the version goes up by one."""
    stmt = (
        sa.update(CUSTOMERS)
        .where(C.id == sa.bindparam("_id"))
        .values(
            {
                **{f: sa.bindparam(f) for f in fields},
                "version": C.version + 1,
                "updated_at": at,
                "updated_by": by,
            }
        )
    )
    await session.execute(stmt, list(rows))


# --- merge --------------------------------------------------------------------------------------


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


async def move_contacts(
    session: AsyncSession, survivor_id: uuid.UUID, duplicate_id: uuid.UUID, *, at: datetime
) -> int:
    """The duplicate's contacts to the survivor; a survivor's primary contact stays the only
    primary one."""
    survivor_has_primary = await session.scalar(
        sa.select(sa.exists().where(CONTACTS.c.customer_id == survivor_id, CONTACTS.c.is_primary))
    )
    values: dict[str, Any] = {"customer_id": survivor_id, "updated_at": at}
    if survivor_has_primary:
        values["is_primary"] = False
    result = await session.execute(
        sa.update(CONTACTS).where(CONTACTS.c.customer_id == duplicate_id).values(**values)
    )
    return _rowcount(result)


async def move_orders_and_payments(
    session: AsyncSession, survivor_id: uuid.UUID, duplicate_id: uuid.UUID
) -> tuple[int, int]:
    moved = []
    for table in (ORDERS, PAYMENTS):
        result = await session.execute(
            sa.update(table)
            .where(table.c.customer_id == duplicate_id)
            .values(customer_id=survivor_id)
        )
        moved.append(_rowcount(result))
    return moved[0], moved[1]


# --- export -------------------------------------------------------------------------------------


async def stream_customers(
    engine: AsyncEngine,
    principal: Principal,
    columns: Sequence[str],
    *,
    region: str | None,
    level: str | None,
    status: str | None,
) -> AsyncGenerator[Sequence[Any]]:
    """The customers the principal may see, in creation order, a few thousand rows at a time,
    from a server-side cursor on a connection of its own (the request's session is committed
    and closed before a streamed body starts to flow)."""
    stmt = sa.select(*[C[name] for name in columns]).where(visibility_filter(principal))
    for column, value in ((C.region, region), (C.level, level), (C.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    stmt = stmt.order_by(C.created_at, C.id).execution_options(yield_per=EXPORT_BATCH)
    async with engine.connect() as conn:
        result = await conn.stream(stmt)
        async for partition in result.partitions(EXPORT_BATCH):
            yield partition
