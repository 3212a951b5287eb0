"""Statements of the visit memos, and the section they add to the card and the full file."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from customers.archive.models import CUSTOMERS, SETTINGS
from customers.archive.settings import DEFAULTS
from customers.visitmemos.models import VISIT_MEMOS

M, C = VISIT_MEMOS.c, CUSTOMERS.c
LATEST = 3


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    """A completed visit is final: the first delivery stands."""
    stmt = pg_insert(VISIT_MEMOS).values(row).on_conflict_do_nothing(index_elements=[M.visit_id])
    await session.execute(stmt)


def _cadence_days() -> sa.ColumnElement[int]:
    """The customer's level's follow-up cadence: the archive's settings, else their defaults."""
    saved = (
        sa.select(sa.cast(SETTINGS.c.data["cadence_days"][C.level].astext, sa.Integer))
        .where(SETTINGS.c.id == 1)
        .scalar_subquery()
    )
    default = sa.case(
        *((C.level == level, DEFAULTS.cadence(level)) for level in ("A", "B", "C")),
        else_=DEFAULTS.cadence("C"),
    )
    return sa.func.coalesce(saved, default)


def visits_section(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    """The visits part of the card and the file, as one correlated JSON expression (on a
    statement over the customers table): the latest memos of completed visits (date, rep,
    channel, memo), the last effective contact and the next follow-up due date (the last
    effective contact plus the level's cadence; never contacted: due since the customer was
    created)."""
    latest = (
        sa.select(M.visit_id, M.visited_on, M.check_in_at, M.rep_id, M.rep_name, M.channel, M.memo)
        .where(M.customer_id == customer_id, M.memo.is_not(None), M.memo != "")
        .order_by(M.check_in_at.desc(), M.visit_id.desc())
        .limit(LATEST)
        .subquery("latest")
    )
    entry = sa.func.json_build_object(
        "visit_id", latest.c.visit_id,
        "visited_on", latest.c.visited_on,
        "check_in_at", sa.func.to_char(
            sa.func.timezone("UTC", latest.c.check_in_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
        ),
        "rep_id", latest.c.rep_id,
        "rep_name", latest.c.rep_name,
        "channel", latest.c.channel,
        "memo", latest.c.memo,
    )  # fmt: skip
    memos = sa.select(
        sa.func.coalesce(
            sa.func.json_agg(aggregate_order_by(entry, latest.c.check_in_at.desc())),
            sa.text("'[]'::json"),
        )
    ).scalar_subquery()
    last_effective = (
        sa.select(sa.func.max(M.visited_on))
        .where(M.customer_id == customer_id, M.effective)
        .scalar_subquery()
    )
    cadence = _cadence_days()
    due = sa.func.coalesce(
        last_effective + cadence, sa.cast(sa.func.timezone("UTC", C.created_at), sa.Date)
    )
    return sa.func.json_build_object(
        "latest_memos", memos,
        "last_effective_contact_on", last_effective,
        "next_follow_up_due_on", due,
        "cadence_days", cadence,
        type_=sa.JSON,
    )  # fmt: skip
