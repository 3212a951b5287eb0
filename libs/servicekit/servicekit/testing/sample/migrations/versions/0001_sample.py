"""Sample schema: kit tables, widgets, received events.

Revision ID: kitsample_0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from servicekit.migrations import create_kit_tables, drop_kit_tables

revision = "kitsample_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables(op, "kitsample")
    op.create_table(
        "widgets",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema="kitsample",
    )
    op.create_table(
        "received",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        schema="kitsample",
    )


def downgrade() -> None:
    op.drop_table("received", schema="kitsample")
    op.drop_table("widgets", schema="kitsample")
    drop_kit_tables(op, "kitsample")
