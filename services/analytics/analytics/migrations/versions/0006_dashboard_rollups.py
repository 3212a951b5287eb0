"""What the dashboard reads besides the daily rollups: the company's re-engaged and redeveloped
customers per named period, and each team's visited customers per named period. Both start
empty here; a rollup rebuild (or a replay of the feeds) fills them.

Revision ID: analytics_0006
Revises: analytics_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0006"
down_revision: str | None = "analytics_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("reengaged", "redeveloped"):
        op.add_column(
            "period_counts",
            sa.Column(name, sa.Integer(), server_default="0", nullable=False),
            schema="analytics",
        )
    op.create_table(
        "period_team_counts",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("visited", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("kind", "period", "team_id", name=op.f("pk_period_team_counts")),
        schema="analytics",
    )


def downgrade() -> None:
    op.drop_table("period_team_counts", schema="analytics")
    for name in ("redeveloped", "reengaged"):
        op.drop_column("period_counts", name, schema="analytics")
