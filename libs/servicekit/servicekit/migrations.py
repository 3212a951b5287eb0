"""Per-app Alembic environments: the version table lives in the app's schema, autogenerate sees
only that schema, and `upgrade_head` runs them programmatically (make migrate, tests, start-up
checks)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel.sql.sqltypes import AutoString

from servicekit.db import make_metadata, to_sqlalchemy_url
from servicekit.tables import add_kit_tables, outbox_notify_ddl


def alembic_config(migrations_dir: Path, database_url: str, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", to_sqlalchemy_url(database_url))
    cfg.attributes["schema"] = schema
    return cfg


def head_revisions(migrations_dir: Path) -> set[str]:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    return set(ScriptDirectory.from_config(cfg).get_heads())


def upgrade_head(migrations_dir: Path, database_url: str, schema: str) -> None:
    command.upgrade(alembic_config(migrations_dir, database_url, schema), "head")


def compare_type(
    context: Any,
    inspected_column: Any,
    metadata_column: Any,
    inspected_type: sa.types.TypeEngine[Any],
    metadata_type: sa.types.TypeEngine[Any],
) -> bool | None:
    """SQLModel's `str` (AutoString, an unbounded VARCHAR) and TEXT are the same in PostgreSQL;
    anything else is left to Alembic's own comparison."""
    if isinstance(metadata_type, AutoString) and isinstance(inspected_type, sa.String):
        return getattr(inspected_type, "length", None) is not None
    return None


def run_env(target_metadata: sa.MetaData, schema: str) -> None:
    """The body of every app's `env.py`."""
    config = context.config

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "schema":
            return name == schema
        return True

    def configure(connection: Connection | None = None, **kw: Any) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=include_name,
            compare_type=compare_type,
            **kw,
        )

    if context.is_offline_mode():
        configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def do_run(connection: Connection) -> None:
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
        configure(connection)
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        url = config.get_main_option("sqlalchemy.url") or to_sqlalchemy_url(
            os.environ["DATABASE_URL"]
        )
        engine = create_async_engine(url, poolclass=sa.pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    asyncio.run(run_async())


def create_kit_tables(op: Operations, schema: str) -> None:
    """Called by each app's first migration: the outbox and its trigger, idempotency keys,
    consumer cursors."""
    tables = add_kit_tables(make_metadata(schema))
    bind = op.get_bind()
    for table in tables.values():
        table.create(bind)
    for ddl in outbox_notify_ddl(schema):
        op.execute(ddl)


def drop_kit_tables(op: Operations, schema: str) -> None:
    op.execute(f'DROP TRIGGER IF EXISTS outbox_notify ON "{schema}".outbox')
    op.execute(f'DROP FUNCTION IF EXISTS "{schema}".outbox_notify()')
    for name in ("consumer_processed", "consumer_cursors", "idempotency_keys", "outbox"):
        op.drop_table(name, schema=schema)


def set_outbox_payload_type(op: Operations, schema: str, type_name: str) -> None:
    """Convert the outbox's `data` column to `json` or `jsonb` (each payload parsed anew), for
    the migrations that change it. The migration names the type itself: it must not change
    when the kit's table does. The rewrite locks the outbox for its length. Replicas of the
    code before it must not write on: a connection that has COPYed into the outbox keeps the
    old type's binary form (asyncpg caches a COPY's column types) and its next COPY fails
    (their `/readyz` turns unready once the database is past their head)."""
    types = {"json": postgresql.JSON(), "jsonb": postgresql.JSONB()}
    op.alter_column(
        "outbox",
        "data",
        schema=schema,
        type_=types[type_name],
        postgresql_using=f"data::{type_name}",
    )
