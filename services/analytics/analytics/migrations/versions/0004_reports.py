"""The weekly report's facts: what a completed visit and a daily report heard (competitor news,
customer feedback), and every step of a complaint or market report.

Revision ID: analytics_0004
Revises: analytics_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0004"
down_revision: str | None = "analytics_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("visits", "field_reports"):
        op.add_column(
            table, sa.Column("competitor_news", sa.Text(), nullable=True), schema="analytics"
        )
        op.add_column(
            table, sa.Column("customer_feedback", sa.Text(), nullable=True), schema="analytics"
        )
    op.create_index(
        "ix_visits_remarks_team_day",
        "visits",
        ["team_id", "day"],
        unique=False,
        schema="analytics",
        postgresql_where=sa.text("competitor_news IS NOT NULL OR customer_feedback IS NOT NULL"),
    )
    op.create_index(
        "ix_field_reports_kind_team_day",
        "field_reports",
        ["kind", "team_id", "day"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "case_steps",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("step", sa.Text(), nullable=False),
        sa.Column("rep_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_case_steps")),
        schema="analytics",
    )
    op.create_index(
        "ix_case_steps_team_day", "case_steps", ["team_id", "day"], unique=False, schema="analytics"
    )
    op.create_index(
        "ix_case_steps_case_id", "case_steps", ["case_id"], unique=False, schema="analytics"
    )


def downgrade() -> None:
    op.drop_table("case_steps", schema="analytics")
    op.drop_index("ix_field_reports_kind_team_day", table_name="field_reports", schema="analytics")
    op.drop_index("ix_visits_remarks_team_day", table_name="visits", schema="analytics")
    for table in ("visits", "field_reports"):
        op.drop_column(table, "customer_feedback", schema="analytics")
        op.drop_column(table, "competitor_news", schema="analytics")
