"""The owner history of opportunities (a deactivated rep's open opportunities handed to their
manager).

Revision ID: opportunities_0004
Revises: opportunities_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "opportunities_0004"
down_revision: str | None = "opportunities_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "opportunity_owners",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("from_owner_id", sa.Uuid(), nullable=True),
        sa.Column("to_owner_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("by", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunity_owners")),
        schema="opportunities",
    )
    op.create_index(
        "ix_opportunity_owners_opportunity",
        "opportunity_owners",
        ["opportunity_id", "id"],
        unique=False,
        schema="opportunities",
    )


def downgrade() -> None:
    op.drop_table("opportunity_owners", schema="opportunities")
