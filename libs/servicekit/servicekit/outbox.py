"""Transactional outbox and the ordered event feed.

The feed orders events by (transaction id, position) and shows only rows of transactions older
than the oldest one still in flight (`pg_snapshot_xmin`). A plain serial cursor would lose
events: a transaction holding position 10 can commit after position 11 was read. With the xmin
horizon, every row a reader can see is final, and every row that appears later sorts after the
cursor, so a consumer sees each event exactly once. A long transaction anywhere in the cluster
holds the feed back until it ends; `outbox_backlog` shows it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.auth import Principal
from servicekit.bulk import COPY_THRESHOLD, Prepared, prepare, write
from servicekit.db import PoolStatement, json_text, pool_statement, utcnow
from servicekit.errors import Forbidden, ValidationFailed
from servicekit.ids import ordered_uuids
from servicekit.inputs import INT64_MAX, INT64_MIN
from servicekit.pagination import decode_cursor, encode_cursor
from servicekit.tables import kit_tables

SPEC_VERSION = "1.0"
# The largest page a feed serves (`GET /events?limit=`).
FEED_MAX_LIMIT = 1000

# Who may read a feed: `events:<app>` opens that app's feed, `events:read` every feed (the
# services' own key, admins). Feeds differ in what they disclose (identity's carries emails),
# so an integration is given only the feeds it follows.
EVENTS_SCOPE = "events:read"


def feed_scope(app: str) -> str:
    """The scope that opens one app's event feed."""
    return f"events:{app}"


def may_read_feed(principal: Principal, app: str) -> bool:
    return principal.has_scope(EVENTS_SCOPE) or principal.has_scope(feed_scope(app))


def require_feed_reader(principal: Principal, app: str) -> None:
    if not may_read_feed(principal, app):
        raise Forbidden(
            f"reading the {app} feed needs the '{feed_scope(app)}' scope "
            f"(or '{EVENTS_SCOPE}', every feed)"
        )


class CloudEvent(BaseModel):
    """One event of a feed, as `render_feed` writes it (the document's model of it)."""

    specversion: Literal["1.0"]
    id: uuid.UUID
    type: str = Field(description="What happened, in the past tense: customer.created")
    source: str = Field(description="The app the event comes from")
    subject: str | None = Field(description="The id of the record it is about")
    time: datetime
    datacontenttype: Literal["application/json"]
    dataversion: str
    data: dict[str, Any]
    cursor: str = Field(description="Read on after this event with `after=<cursor>`")


class EventPage(BaseModel):
    """A page of a feed. `next_cursor` is the last event's cursor (or the `after` sent)."""

    items: list[CloudEvent]
    next_cursor: str | None
    has_more: bool
    head: str | None = Field(
        default=None,
        description="The cursor of the newest event readable when the page was read (null: "
        "none yet): a reader whose cursor is this one is caught up",
    )


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


async def record_event(
    session: AsyncSession,
    type: str,
    subject: str | uuid.UUID | None,
    data: dict[str, Any],
    *,
    dataversion: str = "1",
) -> uuid.UUID:
    """Write an event into this app's outbox, in the caller's transaction."""
    (event_id,) = await record_events(session, [(type, subject, data)], dataversion=dataversion)
    return event_id


async def record_events(
    session: AsyncSession,
    events: Sequence[tuple[str, str | uuid.UUID | None, dict[str, Any]]],
    *,
    dataversion: str = "1",
) -> list[uuid.UUID]:
    """Write many `(type, subject, data)` events in the caller's transaction, in one round trip
    (`bulk.write`: a binary COPY for a large batch, one executemany INSERT for a small
    one). The feed shows them in the order given (positions are taken in row order)."""
    if not events:
        return []
    prepared = prepared_events(session, events, dataversion=dataversion)
    await write(session, prepared)
    if prepared.records is None:
        return [row["id"] for row in prepared.rows]
    return [record[0] for record in prepared.records]


def prepared_events(
    session: AsyncSession,
    events: Sequence[tuple[str, str | uuid.UUID | None, dict[str, Any]]],
    *,
    dataversion: str = "1",
) -> Prepared:
    """`record_events`' rows made ready to write (`bulk.write`), for a writer that prepares
    them while PostgreSQL stores its other rows (`bulk.writing`). A large batch's COPY
    records are made straight from the events, payloads encoded as `bulk.prepare` encodes
    JSON cells, without a dict per event on the way."""
    table = outbox_table(session)
    if len(events) < COPY_THRESHOLD:
        return prepare(table, event_rows(session, events, dataversion=dataversion))
    records = _event_values(session, events, dataversion, json_text)
    return Prepared(table, (), list(_EVENT_COLUMNS), records)


def outbox_table(session: AsyncSession) -> sa.Table:
    """The outbox of the app the session belongs to."""
    return kit_tables(session.info["outbox_schema"]).outbox


# The columns an event's row sets (the rest are the table's defaults), in `_event_values`' order.
_EVENT_COLUMNS = ("id", "type", "source", "subject", "time", "data", "dataversion")


def _event_values(
    session: AsyncSession,
    events: Sequence[tuple[str, str | uuid.UUID | None, dict[str, Any]]],
    dataversion: str,
    data: Callable[[dict[str, Any]], Any],
) -> list[tuple[Any, ...]]:
    source = session.info["outbox_source"]
    now = utcnow()
    return [
        (event_id, type_, source, subject, now, data(payload), dataversion)
        for event_id, (type_, _, payload), subject in zip(
            ordered_uuids(len(events)), events, _subjects(events), strict=True
        )
    ]


def _subjects(
    events: Sequence[tuple[str, str | uuid.UUID | None, dict[str, Any]]],
) -> list[str | None]:
    """Each event's subject as text (None stays None). orjson writes a UUID as `str` does, in
    C: for a batch's thousands of ids, a tenth of `str`'s time (other UUID classes, such as
    asyncpg's, through `str`). A subject of any other type goes through `str` too."""
    subjects = [subject for _, subject, _ in events]
    if not all(s is None or type(s) is str or isinstance(s, uuid.UUID) for s in subjects):
        return [None if s is None else str(s) for s in subjects]
    texts: list[str | None] = orjson.loads(orjson.dumps(subjects, default=str))
    return texts


def event_rows(
    session: AsyncSession,
    events: Sequence[tuple[str, str | uuid.UUID | None, dict[str, Any]]],
    *,
    dataversion: str = "1",
) -> list[dict[str, Any]]:
    """The outbox rows of `(type, subject, data)` events, keyed by column name: for a write
    that inserts its events in the same statement as its change (a data-modifying CTE into
    `outbox_table(session)`), saving a round trip; `record_events` inserts them on their own."""
    values = _event_values(session, events, dataversion, _as_given)
    return [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in values]


def _as_given(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def payload_uuid(value: Any) -> uuid.UUID | None:
    """An id read from another app's payload: None when absent, empty or not a UUID (a
    consumer skips what it cannot read rather than fail the page)."""
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def feed_cursor(txid: int, position: int) -> str:
    return encode_cursor([txid, position])


def parse_feed_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return (-1, -1)
    txid, position = decode_cursor(cursor, 2, param="after")
    # Both are bigints: anything else (a float, a bool, an integer beyond 64 bits) is foreign.
    for value in (txid, position):
        if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
            raise ValidationFailed.field("after", "not a cursor this feed gave out")
    return txid, position


def _horizon() -> sa.ColumnElement[int]:
    """The oldest transaction still in flight: rows of older transactions are final."""
    xmin = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
    return sa.cast(sa.cast(xmin, sa.Text), sa.BigInteger)


def _json_string(value: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """A text column as a JSON string (`null` for NULL), escaped by PostgreSQL."""
    return sa.func.coalesce(sa.cast(sa.func.to_json(value), sa.Text), "null")


def _iso_time(value: sa.ColumnElement[datetime]) -> sa.ColumnElement[str]:
    """A time as Python's `isoformat()` writes a UTC time: microseconds only when not zero."""
    text = sa.func.to_char(sa.func.timezone("UTC", value), 'YYYY-MM-DD"T"HH24:MI:SS.US+00:00')
    return sa.func.replace(text, ".000000+", "+")


def _cursor(txid: sa.ColumnElement[int], position: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    """`feed_cursor(txid, position)`: URL-safe base64 of `[txid,position]`, unpadded (short
    enough that PostgreSQL's base64 never breaks the line)."""
    raw = sa.func.convert_to(sa.func.concat("[", txid, ",", position, "]"), "UTF8")
    return sa.func.rtrim(sa.func.translate(sa.func.encode(raw, "base64"), "+/", "-_"), "=")


@functools.cache
def feed_statement(schema: str) -> PoolStatement:
    """A page of the feed after (`txid`, `position`), at most `limit` rows: each event's
    CloudEvents JSON (`item`, as `render_feed` puts it in the page) and its place.
    PostgreSQL writes the items, in its own process, instead of the service's one thread
    building a dict and a cursor per event (a large intake's events are read by every
    follower of the feed)."""
    t = kit_tables(schema).outbox
    c = t.c
    item = sa.func.concat(
        f'{{"specversion":"{SPEC_VERSION}","id":"',
        sa.cast(c.id, sa.Text),
        '","type":',
        _json_string(c.type),
        ',"source":',
        _json_string(c.source),
        ',"subject":',
        _json_string(c.subject),
        ',"time":"',
        _iso_time(c.time),
        '","datacontenttype":"application/json","dataversion":',
        _json_string(c.dataversion),
        ',"data":',
        sa.cast(c.data, sa.Text),
        ',"cursor":"',
        _cursor(c.txid, c.position),
        '"}',
    )
    stmt = (
        sa.select(item.label("item"), c.txid, c.position)
        .where(
            sa.tuple_(c.txid, c.position)
            > sa.tuple_(
                sa.bindparam("txid", type_=sa.BigInteger),
                sa.bindparam("position", type_=sa.BigInteger),
            ),
            c.txid < _horizon(),
        )
        .order_by(c.txid, c.position)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    return pool_statement(stmt)


@functools.cache
def head_statement(schema: str) -> PoolStatement:
    """The newest readable event's place (txid, position): one step down the feed's index."""
    c = kit_tables(schema).outbox.c
    stmt = (
        sa.select(c.txid, c.position)
        .where(c.txid < _horizon())
        .order_by(c.txid.desc(), c.position.desc())
        .limit(1)
    )
    return pool_statement(stmt)


def events_between(cursor: str | None, head: str | None) -> int:
    """How many events separate a reader's cursor from the feed's head, reckoned by position
    (taken in write order; a rolled-back write leaves a gap, so this may count a few more)."""
    if head is None or cursor == head:
        return 0
    _, at = parse_feed_cursor(cursor)
    _, newest = parse_feed_cursor(head)
    return max(0, newest - max(at, 0))


@functools.cache
def stats_statement(schema: str) -> PoolStatement:
    """Index-only work: max(position) and a range scan above the horizon, never a full count."""
    t = kit_tables(schema).outbox
    pending = t.alias("pending")
    horizon = sa.select(_horizon().label("xmin")).cte("horizon")
    total = sa.select(sa.func.coalesce(sa.func.max(t.c.position), 0)).scalar_subquery()
    stmt = sa.select(
        total.label("total"),
        sa.func.count(pending.c.position).label("pending"),
        sa.func.min(pending.c.time).label("oldest_pending"),
    ).select_from(horizon.outerjoin(pending, pending.c.txid >= horizon.c.xmin))
    return pool_statement(stmt)


def render_feed(rows: list[Any], after: str | None, limit: int, head: Any = None) -> bytes:
    """The page as CloudEvents JSON, from `feed_statement`'s rows (each event's JSON written
    by PostgreSQL). `head`: the newest readable event's row (`head_statement`), if read."""
    return orjson.dumps(
        {
            "items": [orjson.Fragment(r["item"]) for r in rows],
            "next_cursor": feed_cursor(rows[-1]["txid"], rows[-1]["position"]) if rows else after,
            "has_more": len(rows) == limit,
            "head": None if head is None else feed_cursor(head["txid"], head["position"]),
        }
    )
