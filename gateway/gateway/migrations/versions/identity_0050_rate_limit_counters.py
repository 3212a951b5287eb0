"""Rate limit counters shared by every gateway replica.

Revision ID: identity_0050
Revises: identity_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "identity_0050"
down_revision = "identity_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name="pk_rate_limit_counters"),
        schema="identity",
    )
    op.create_index(
        "ix_rate_limit_counters_expires_at",
        "rate_limit_counters",
        ["expires_at"],
        schema="identity",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_rate_limit_counters_expires_at", table_name="rate_limit_counters", schema="identity"
    )
    op.drop_table("rate_limit_counters", schema="identity")
