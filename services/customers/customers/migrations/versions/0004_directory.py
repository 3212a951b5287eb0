"""The identity directory moves into the kit: the read model gains the team tree.

`directory_users` keeps its rows. The nearest manager is no longer stored per user: the kit
derives it from `directory_teams`, which is new and empty, so the identity feed is replayed
from zero to fill it, with the archive's reactions (handovers, customers following their owner
to a new team) quiet for the events it already reacted to.

Revision ID: customers_0004_directory
Revises: customers_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from servicekit.directory import (
    TEAMS_TABLE,
    USERS_TABLE,
    create_directory_tables,
    quiet_marker,
    replay_directory_quietly,
)

revision: str = "customers_0004_directory"
down_revision: str | None = "customers_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "customers"
CONSUMER = "customers.identity"


def upgrade() -> None:
    create_directory_tables(op, S, only=[TEAMS_TABLE])
    op.drop_column(USERS_TABLE, "manager_id", schema=S)
    for column in ("role", "name"):
        op.alter_column(USERS_TABLE, column, type_=sa.Text(), schema=S)
    replay_directory_quietly(op, S, CONSUMER)


def downgrade() -> None:
    cursors = sa.table("consumer_cursors", sa.column("consumer"), schema=S)
    op.execute(sa.delete(cursors).where(cursors.c.consumer == quiet_marker(CONSUMER)))
    for column in ("role", "name"):
        op.alter_column(USERS_TABLE, column, type_=sa.String(), schema=S)
    op.add_column(USERS_TABLE, sa.Column("manager_id", sa.Uuid(), nullable=True), schema=S)
    op.drop_table(TEAMS_TABLE, schema=S)
