"""Insight alerts: the rules as data (seeded with their defaults), the alerts, and what the
rules and the next plan read from the feeds (a customer's quality score, an opportunity's
next action).

Revision ID: analytics_0005
Revises: analytics_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "analytics_0005"
down_revision: str | None = "analytics_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The defaults of `analytics.alerts.rules` when this revision was written.
DEFAULTS = {
    "neglect_over_visit": {"neglect_days": 30, "over_visits_per_month": 8},
    "low_daily_visits": {"floor": "3"},
    "low_development_rate": {"floor": "0.05", "min_candidates": 10},
    "incomplete_key_customer": {"floor": 60},
    "churn_risk": {"factor": "2", "min_orders": 3},
    "stalled_opportunity": {"factor": "1.5", "min_won": 5, "default_cycle_days": 90},
}


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("quality_score", sa.SmallInteger(), nullable=True),
        schema="analytics",
    )
    op.add_column(
        "opportunities", sa.Column("next_action", sa.Text(), nullable=True), schema="analytics"
    )
    op.add_column(
        "opportunities", sa.Column("next_action_on", sa.Date(), nullable=True), schema="analytics"
    )
    op.create_index(
        "ix_opportunities_owner_next_action_on",
        "opportunities",
        ["owner_id", "next_action_on"],
        unique=False,
        schema="analytics",
    )
    rules = op.create_table(
        "alert_rules",
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("scope_key", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("thresholds", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("rule", "scope_key", name=op.f("pk_alert_rules")),
        schema="analytics",
    )
    op.bulk_insert(
        rules,
        [{"rule": rule, "scope_key": "", "thresholds": th} for rule, th in DEFAULTS.items()],
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=False),
        sa.Column("rep_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'dismissed', 'resolved')",
            name=op.f("ck_alerts_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        schema="analytics",
    )
    op.create_index(
        "uq_alerts_live_rule_subject",
        "alerts",
        ["rule", "subject_kind", "subject_id"],
        unique=True,
        schema="analytics",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index("ix_alerts_raised", "alerts", ["raised_at", "id"], schema="analytics")
    op.create_index(
        "ix_alerts_rep_raised", "alerts", ["rep_id", "raised_at", "id"], schema="analytics"
    )
    op.create_index(
        "ix_alerts_team_raised", "alerts", ["team_id", "raised_at", "id"], schema="analytics"
    )
    op.create_index(
        "ix_alerts_customer",
        "alerts",
        ["customer_id"],
        schema="analytics",
        postgresql_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("alerts", schema="analytics")
    op.drop_table("alert_rules", schema="analytics")
    op.drop_index(
        "ix_opportunities_owner_next_action_on", table_name="opportunities", schema="analytics"
    )
    op.drop_column("opportunities", "next_action_on", schema="analytics")
    op.drop_column("opportunities", "next_action", schema="analytics")
    op.drop_column("customers", "quality_score", schema="analytics")
