"""A customer's point (`location`), and the visit memos read from the visits feed.

Revision ID: customers_0005
Revises: customers_0004_directory
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "customers_0005"
down_revision: str | None = "customers_0004_directory"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "customers"


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("location", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema=S,
    )
    op.create_table(
        "visit_memos",
        sa.Column("visit_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("rep_id", sa.Uuid(), nullable=True),
        sa.Column("rep_name", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("check_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("effective", sa.Boolean(), nullable=False),
        sa.Column("memo", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("visit_id", name=op.f("pk_visit_memos")),
        schema=S,
    )
    op.create_index(
        "ix_visit_memos_customer_check_in",
        "visit_memos",
        ["customer_id", sa.text("check_in_at DESC")],
        unique=False,
        schema=S,
    )
    op.create_index(
        "ix_visit_memos_customer_effective",
        "visit_memos",
        ["customer_id", "visited_on"],
        unique=False,
        schema=S,
        postgresql_where=sa.text("effective"),
    )


def downgrade() -> None:
    op.drop_index("ix_visit_memos_customer_effective", table_name="visit_memos", schema=S)
    op.drop_index("ix_visit_memos_customer_check_in", table_name="visit_memos", schema=S)
    op.drop_table("visit_memos", schema=S)
    op.drop_column("customers", "location", schema=S)
