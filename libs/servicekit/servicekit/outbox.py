"""Transactional outbox and the ordered event feed.

The feed orders events by (transaction id, position) and shows only rows of transactions older
than the oldest one still in flight (`pg_snapshot_xmin`). A plain serial cursor would lose
events: a transaction holding position 10 can commit after position 11 was read. With the xmin
horizon, every row a reader can see is final, and every row that appears later sorts after the
cursor, so a consumer sees each event exactly once. A long transaction anywhere in the cluster
holds the feed back until it ends; `outbox_backlog` shows it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import utcnow
from servicekit.errors import ValidationFailed
from servicekit.ids import ordered_uuids
from servicekit.pagination import decode_cursor, encode_cursor

SPEC_VERSION = "1.0"
# Below this many events one executemany INSERT is cheaper than setting up a COPY.
COPY_THRESHOLD = 64
_OUTBOX_COLUMNS = ("id", "type", "source", "subject", "time", "data", "dataversion")


@dataclass(frozen=True, slots=True)
class Event:
    id: uuid.UUID
    type: str
    source: str
    subject: str | None
    time: datetime
    data: dict[str, Any]
    dataversion: str
    cursor: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Event:
        return cls(
            id=uuid.UUID(doc["id"]),
            type=doc["type"],
            source=doc["source"],
            subject=doc.get("subject"),
            time=datetime.fromisoformat(doc["time"]),
            data=doc.get("data") or {},
            dataversion=str(doc.get("dataversion", "1")),
            cursor=doc["cursor"],
        )


def _outbox_sql(schema: str) -> str:
    return (
        f'INSERT INTO "{schema}".outbox (id, type, source, subject, time, data, dataversion) '
        "VALUES (:id, :type, :source, :subject, :time, CAST(:data AS jsonb), :dataversion)"
    )


async def record_event(
    session: AsyncSession,
    type: str,
    subject: str | uuid.UUID | None,
    data: dict[str, Any],
    *,
    dataversion: str = "1",
) -> uuid.UUID:
    """Write an event into this app's outbox, in the caller's transaction."""
    schema = session.info["outbox_schema"]
    (event_id,) = ordered_uuids(1)
    await session.execute(
        sa.text(_outbox_sql(schema)),
        {
            "id": event_id,
            "type": type,
            "source": session.info["outbox_source"],
            "subject": None if subject is None else str(subject),
            "time": utcnow(),
            "data": orjson.dumps(data, default=str).decode(),
            "dataversion": dataversion,
        },
    )
    return event_id


async def record_events(
    session: AsyncSession,
    events: Sequence[tuple[str, str | uuid.UUID | None, dict[str, Any]]],
    *,
    dataversion: str = "1",
) -> list[uuid.UUID]:
    """Write many `(type, subject, data)` events in the caller's transaction, in one round trip:
    a binary COPY for a large batch, one executemany INSERT for a small one. The feed shows
    them in the order given (positions are taken in row order)."""
    if not events:
        return []
    schema = session.info["outbox_schema"]
    source = session.info["outbox_source"]
    now = utcnow()
    ids = ordered_uuids(len(events))
    dumps = orjson.dumps
    if len(events) < COPY_THRESHOLD:
        await session.execute(
            sa.text(_outbox_sql(schema)),
            [
                {
                    "id": event_id,
                    "type": type_,
                    "source": source,
                    "subject": None if subject is None else str(subject),
                    "time": now,
                    "data": dumps(data, default=str).decode(),
                    "dataversion": dataversion,
                }
                for event_id, (type_, subject, data) in zip(ids, events, strict=True)
            ],
        )
        return ids
    records = [
        (
            event_id,
            type_,
            source,
            None if subject is None else str(subject),
            now,
            dumps(data, default=str).decode(),
            dataversion,
        )
        for event_id, (type_, subject, data) in zip(ids, events, strict=True)
    ]
    driver = await _driver_connection(session)
    await driver.copy_records_to_table(
        "outbox", schema_name=schema, columns=_OUTBOX_COLUMNS, records=records
    )
    return ids


async def _driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under the session's transaction, with that transaction begun:
    SQLAlchemy's asyncpg adapter sends BEGIN only with the first statement, and a COPY before
    it would commit on its own."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if driver is None or not driver.is_in_transaction():
        await session.execute(sa.text("SELECT 1"))
        driver = raw.driver_connection
    return driver


def feed_cursor(txid: int, position: int) -> str:
    return encode_cursor([txid, position])


def parse_feed_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (-1, -1)
    txid, position = decode_cursor(cursor, 2, param="after")
    if not isinstance(txid, int) or not isinstance(position, int):
        raise ValidationFailed.field("after", "not a cursor this feed gave out")
    return txid, position


def feed_sql(schema: str) -> str:
    return f"""
        SELECT txid, position, id, type, source, subject, time, data::text AS data, dataversion
        FROM "{schema}".outbox
        WHERE (txid, position) > ($1, $2)
          AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
        ORDER BY txid, position
        LIMIT $3
    """


def stats_sql(schema: str) -> str:
    # Index-only work: max(position) and a range scan above the horizon, never a full count.
    return f"""
        WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
        SELECT (SELECT coalesce(max(position), 0) FROM "{schema}".outbox) AS total,
               count(o.position) AS pending,
               min(o.time) AS oldest_pending
        FROM horizon LEFT JOIN "{schema}".outbox o ON o.txid >= horizon.xmin
    """


def render_feed(rows: list[Any], after: str | None, limit: int) -> bytes:
    """The page as CloudEvents JSON; built by hand because it is the hottest consumer path."""
    items = []
    for r in rows:
        items.append(
            {
                "specversion": SPEC_VERSION,
                "id": str(r["id"]),
                "type": r["type"],
                "source": r["source"],
                "subject": r["subject"],
                "time": r["time"].isoformat(),
                "datacontenttype": "application/json",
                "dataversion": r["dataversion"],
                "data": orjson.Fragment(r["data"]),
                "cursor": feed_cursor(r["txid"], r["position"]),
            }
        )
    next_cursor = items[-1]["cursor"] if items else after
    return orjson.dumps(
        {"items": items, "next_cursor": next_cursor, "has_more": len(rows) == limit}
    )
