"""The kit's own tables, created in every app's schema by that app's first migration.

They are Core `Table`s: the app's models add them to its metadata (`add_kit_tables`, for the
migrations), and the kit's own statements (outbox, feed, idempotency keys, consumer
bookkeeping) are built on `kit_tables(schema)`, never as SQL text.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSON, JSONB, UUID

from servicekit.db import make_metadata

# xid8 fits in a bigint; keeping it as bigint lets plain comparisons and indexes work.
CURRENT_TXID = sa.text("(pg_current_xact_id()::text::bigint)")


class KitTables(NamedTuple):
    outbox: sa.Table
    idempotency_keys: sa.Table
    consumer_cursors: sa.Table
    consumer_processed: sa.Table


def add_kit_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Outbox, idempotency keys and consumer bookkeeping, in `metadata`'s schema."""
    outbox = sa.Table(
        "outbox",
        metadata,
        sa.Column("position", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("txid", sa.BigInteger, nullable=False, server_default=CURRENT_TXID),
        sa.Column("id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # `json`, not `jsonb`: kept as written (checked for syntax only) and served as that
        # text by the feed; nothing queries a payload's content in SQL, so jsonb's parsing on
        # every write and its rendering on every feed read bought nothing.
        sa.Column("data", JSON, nullable=False),
        sa.Column("dataversion", sa.Text, nullable=False, server_default="1"),
        sa.Index("ix_outbox_feed_order", "txid", "position"),
    )
    idempotency = sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("principal", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("headers", JSONB, nullable=True),
        sa.Column("body", sa.LargeBinary, nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
            index=True,
        ),
    )
    cursors = sa.Table(
        "consumer_cursors",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("cursor", sa.Text, nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    processed = sa.Table(
        "consumer_processed",
        metadata,
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    return {
        "outbox": outbox,
        "idempotency_keys": idempotency,
        "consumer_cursors": cursors,
        "consumer_processed": processed,
    }


@functools.cache
def kit_tables(schema: str) -> KitTables:
    """The kit's tables in `schema`, for the kit's statements at run time (one set per schema,
    in a metadata of its own, so they never mix with an app's models)."""
    return KitTables(**add_kit_tables(make_metadata(schema)))


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def outbox_notify_ddl(schema: str) -> list[str]:
    """A statement-level trigger: one NOTIFY per inserting statement, delivered at commit."""
    channel = notify_channel(schema)
    # DDL has no bound parameters: the schema and channel are identifiers of the app's own.
    return [
        f"""
        CREATE OR REPLACE FUNCTION "{schema}".outbox_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{channel}', '');
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".outbox_notify()
        """,
    ]
