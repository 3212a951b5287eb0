"""Every statement of data quality: the score as SQL, the incomplete-records page, likely
duplicates, the import's lookups and updates, the merge's moves and the export's stream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from customers.archive.models import CUSTOMERS, LIVE_STATUSES
from customers.archive.repository import visibility_filter
from customers.archive.settings import DataQualitySettings
from customers.commerce.models import CONTACTS, ORDERS, PAYMENTS
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


# --- the score, kept on the record -------------------------------------------------------------
#
# `DataQualitySettings` defines it. It is computed here, in SQL, for the customers a change
# touched (or all of them, after the settings changed, or those whose freshness points run out:
# `quality_due_at`), and stored with the record: the list, the card and the file read columns.


def _present(field: str) -> sa.ColumnElement[bool]:
    if field == "contacts":
        return sa.exists().where(CONTACTS.c.customer_id == C.id)
    col = C[field]
    if field == "tags":
        return sa.func.cardinality(col) > 0
    if isinstance(col.type, sa.String | sa.Text):
        return sa.func.coalesce(sa.func.btrim(col), "") != ""
    return col.is_not(None)


def _missing(fields: Sequence[str]) -> sa.ColumnElement[Any]:
    if not fields:
        return sa.cast(sa.literal("{}"), TEXT_ARRAY)
    names = [sa.case((_present(f), sa.null()), else_=sa.literal(f)) for f in fields]
    return sa.func.array_remove(pg_array(names), sa.null())


async def refresh_scores(
    session: AsyncSession,
    dq: DataQualitySettings,
    *,
    now: datetime,
    ids: Sequence[uuid.UUID] | None = None,
    due: bool = False,
    limit: int | None = None,
) -> list[Any]:
    """Compute and store the score of the customers `ids` (all of them when None), or with
    `due` of up to `limit` whose freshness ran out (rows others hold are skipped). Rows are
    locked in id order, like every batch. Returns per changed customer its record, the new
    score's facts, `was_alert` and `was_incomplete` (before)."""
    fresh, recent = timedelta(days=dq.fresh_days), timedelta(days=dq.recent_days)
    age_fresh = C.content_updated_at >= now - fresh
    age_recent = C.content_updated_at >= now - recent
    score: sa.ColumnElement[int] = sa.literal(0)
    for field, points in dq.weights.items():
        score = score + sa.case((_present(field), points), else_=0)
    score = score + sa.case((age_fresh, dq.fresh_points), (age_recent, dq.recent_points), else_=0)
    picked = sa.select(
        C.id,
        C.quality_alert.label("was_alert"),
        C.incomplete.label("was_incomplete"),
        sa.cast(score, sa.SmallInteger).label("score"),
        _missing(dq.required).label("missing_required"),
        _missing(dq.recommended).label("missing_recommended"),
        sa.not_(age_fresh).label("stale"),
        sa.case(
            (age_fresh, C.content_updated_at + fresh),
            (age_recent, C.content_updated_at + recent),
        ).label("due_at"),
    )
    if due:
        picked = (
            picked.where(C.quality_due_at <= now)
            .order_by(C.quality_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    else:
        if ids is not None:
            picked = picked.where(C.id == sa.any_(sa.cast(list(ids), ARRAY(sa.Uuid))))
        picked = picked.order_by(C.id).with_for_update()
    q = picked.cte("scored").c
    incomplete = sa.or_(sa.func.cardinality(q.missing_required) > 0, q.score < dq.threshold)
    section = sa.func.json_build_object(
        "score",
        q.score,
        "incomplete",
        incomplete,
        "threshold",
        dq.threshold,
        "missing_required",
        sa.func.to_json(q.missing_required),
        "missing_recommended",
        sa.func.to_json(q.missing_recommended),
        "stale",
        q.stale,
        "content_updated_at",
        C.content_updated_at,
    )
    stmt = (
        sa.update(CUSTOMERS)
        .where(C.id == q.id)
        .values(
            quality_score=q.score,
            incomplete=incomplete,
            quality_alert=sa.and_(C.level == "A", incomplete),
            quality_due_at=q.due_at,
            quality=section,
        )
        .returning(
            *CUSTOMERS.c,
            q.was_alert,
            q.was_incomplete,
            q.missing_required,
            q.missing_recommended,
        )
    )
    return list((await session.execute(stmt)).all())


def data_quality_section(customer_id: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The full file's data_quality section (`DataQuality`'s JSON), as kept on the record."""
    return C.quality


async def incomplete_page(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    below: int,
    level: str | None,
    region: str | None,
    owner_id: uuid.UUID | None,
) -> tuple[list[Any], str | None]:
    """Live customers the principal may see scoring under `below`, worst first."""
    stmt = sa.select(
        C.id,
        C.code,
        C.name,
        C.region,
        C.level,
        C.owner_id,
        C.team_id,
        C.updated_at,
        C.quality_score,
        C.quality,
    ).where(C.status.in_(LIVE_STATUSES), visibility_filter(principal), C.quality_score < below)
    for column, value in ((C.level, level), (C.region, region), (C.owner_id, owner_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    rows = (await session.execute(keyset(stmt, [C.quality_score, C.id], page))).all()
    return make_page(rows, page, lambda r: (r.quality_score, r.id))


# --- likely duplicates --------------------------------------------------------------------------


def _matching(
    phones: Sequence[str], emails: Sequence[str], pairs: Sequence[tuple[str, str]]
) -> sa.Subquery | None:
    """Live customers with one of the phones or emails, or one of the (region, name) pairs:
    a UNION of one index-driven branch per rule (phone index, email index, (region,
    normalized_name) index probed once per pair)."""
    active = C.status.in_(LIVE_STATUSES)
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


async def duplicate_pairs(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[Any], str | None]:
    """Pairs of live customers the principal may both see that share a normalised phone or
    email, or a normalised name in one region; each pair once (the smaller id first), with
    what they share, in id order. One self-join per rule, each on its index."""
    a, b = CUSTOMERS.alias("a"), CUSTOMERS.alias("b")
    both = [
        a.c.status.in_(LIVE_STATUSES),
        b.c.status.in_(LIVE_STATUSES),
        visibility_filter(principal, a),
        visibility_filter(principal, b),
    ]
    rules = (
        ("phone", [a.c.normalized_phone == b.c.normalized_phone]),
        ("email", [a.c.normalized_email == b.c.normalized_email]),
        ("name", [a.c.region == b.c.region, a.c.normalized_name == b.c.normalized_name]),
    )
    pairs = sa.union_all(
        *[
            sa.select(a.c.id.label("a_id"), b.c.id.label("b_id"), sa.literal(key).label("key"))
            .select_from(a.join(b, sa.and_(a.c.id < b.c.id, *same)))
            .where(*both)
            for key, same in rules
        ]
    ).subquery("pairs")
    grouped = (
        sa.select(
            pairs.c.a_id,
            pairs.c.b_id,
            sa.func.array_agg(aggregate_order_by(pairs.c.key, pairs.c.key)).label("matched_on"),
        )
        .group_by(pairs.c.a_id, pairs.c.b_id)
        .subquery("grouped")
    )
    g = grouped.c
    stmt = keyset(sa.select(grouped), [g.a_id, g.b_id], page)
    found = (await session.execute(stmt)).all()
    ids = {i for r in found for i in (r.a_id, r.b_id)}
    details = {}
    if ids:
        rows = await session.execute(
            sa.select(*_MATCH_COLUMNS).where(C.id == sa.any_(sa.cast(list(ids), ARRAY(sa.Uuid))))
        )
        details = {r.id: r for r in rows}
    return make_page(
        [(details[r.a_id], details[r.b_id], list(r.matched_on)) for r in found],
        page,
        lambda r: [r[0].id, r[1].id],
    )


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
) -> list[tuple[Any, Any]]:
    """The duplicate's contacts to the survivor; a survivor's primary contact stays the only
    primary one. Returns each moved contact before and after."""
    survivor_has_primary = await session.scalar(
        sa.select(sa.exists().where(CONTACTS.c.customer_id == survivor_id, CONTACTS.c.is_primary))
    )
    before = {
        r.id: r
        for r in await session.execute(
            sa.select(CONTACTS).where(CONTACTS.c.customer_id == duplicate_id).with_for_update()
        )
    }
    values: dict[str, Any] = {"customer_id": survivor_id, "updated_at": at}
    if survivor_has_primary:
        values["is_primary"] = False
    result = await session.execute(
        sa.update(CONTACTS)
        .where(CONTACTS.c.customer_id == duplicate_id)
        .values(**values)
        .returning(*CONTACTS.c)
    )
    return [(before[r.id], r) for r in result]


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
