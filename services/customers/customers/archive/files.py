"""The full file as ONE statement on the direct reads: the record, the settings (for the
cadence and level thresholds), the custody ledger, the trailing purchases and every SQL
section registered by other features, each as a correlated scalar subquery.

`GET /{id}` is the hottest read of the service; one round trip and no ORM session keep it
close to the bare driver. The compiled statement is cached per day (the purchases window
moves daily) and per set of registered sections.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from customers.archive.extensions import file_sql_sections, hooks
from customers.archive.models import CUSTOMERS, LEDGER, SETTINGS
from customers.archive.schemas import CustomerRead
from servicekit.db import DirectReads, utcnow

C = CUSTOMERS.c
L = LEDGER.c
# The record's public columns, in CustomerRead's order: the row is the record's JSON as is.
RECORD_FIELDS = tuple(CustomerRead.model_fields)
TRAILING = timedelta(days=365)
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
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


@dataclass(frozen=True, slots=True)
class FileQuery:
    key: tuple[Any, ...]
    sql: str
    names: tuple[str, ...]
    params: dict[str, Any]
    sections: tuple[tuple[str, str], ...]  # (section name, column label)


_cached: FileQuery | None = None


def trailing_since(now: datetime | None = None) -> datetime:
    """Start of the trailing-12-month window (midnight UTC, so one statement serves a day)."""
    day = (now or utcnow()).date() - TRAILING
    return datetime.combine(day, time(0), tzinfo=UTC)


def purchases_select(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.Select[Any]:
    """One row: the customer's trailing-12-month purchases (0 until commerce sets a source)."""
    if hooks.purchases is None:
        return sa.select(sa.literal(0, sa.Numeric(16, 2)).label("amount"))
    sub = hooks.purchases(trailing_since()).subquery("purchases")
    key, amount = list(sub.c)[:2]
    return sa.select(sa.func.coalesce(sa.func.sum(amount), 0).label("amount")).where(
        key == customer_id
    )


def purchases_expr(customer_id: sa.ColumnElement[uuid.UUID]) -> sa.ColumnElement[Any]:
    return purchases_select(customer_id).scalar_subquery()


def _utc_text(ts: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    # PostgreSQL's JSON writes a timestamptz as "...+00:00"; the API writes "...Z" everywhere.
    return sa.func.to_char(sa.func.timezone("UTC", ts), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')


def _build(key: tuple[Any, ...]) -> FileQuery:
    ledger_entry = sa.func.json_build_object(
        *[
            part
            for f in _LEDGER_FIELDS
            for part in (
                sa.literal(f),
                _utc_text(L[f]) if f in ("started_at", "ended_at") else L[f],
            )
        ]
    )
    ledger = (
        sa.select(
            sa.func.coalesce(
                sa.func.json_agg(aggregate_order_by(ledger_entry, L.started_at, L.id)),
                sa.text("'[]'::json"),
            )
        )
        .where(L.customer_id == C.id)
        .scalar_subquery()
    )
    settings = sa.select(SETTINGS.c.data).where(SETTINGS.c.id == 1).scalar_subquery()
    sections = tuple(
        (name, f"section_{i}") for i, (name, _) in enumerate(file_sql_sections.items())
    )
    stmt = sa.select(
        *[C[f] for f in RECORD_FIELDS],
        settings.label("settings_data"),
        ledger.label("ledger"),
        purchases_expr(C.id).label("purchases_12m"),
        *[
            fn(C.id).label(label)
            for (_, fn), (_, label) in zip(file_sql_sections.items(), sections, strict=True)
        ],
    ).where(C.id == sa.bindparam("customer_id", type_=sa.Uuid))
    compiled = stmt.compile(dialect=_DIALECT)
    names = tuple(compiled.positiontup or ())
    return FileQuery(key, str(compiled), names, dict(compiled.params), sections)


def file_query() -> FileQuery:
    global _cached
    key = (trailing_since(), file_sql_sections.generation, id(hooks.purchases))
    if _cached is None or _cached.key != key:
        _cached = _build(key)
    return _cached


async def fetch_file(reads: DirectReads, customer_id: uuid.UUID) -> tuple[Any, FileQuery]:
    q = file_query()
    args = [customer_id if n == "customer_id" else q.params[n] for n in q.names]
    return await reads.fetchrow(q.sql, *args), q
