"""The read models of the followed feeds, the rollups the dashboard reads, and targets.

Revision ID: analytics_0003
Revises: analytics_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "analytics_0003"
down_revision: str | None = "analytics_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_versions",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_customer_versions")),
        sa.UniqueConstraint("event_id", name=op.f("uq_customer_versions_event_id")),
        schema="analytics",
    )
    op.create_index(
        "ix_customer_versions_customer_day",
        "customer_versions",
        ["customer_id", "day", "seq"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("data_incomplete", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_day", sa.Date(), nullable=True),
        sa.Column("created_owner_id", sa.Uuid(), nullable=True),
        sa.Column("created_team_id", sa.Uuid(), nullable=True),
        sa.Column("created_region", sa.Text(), nullable=True),
        sa.Column("first_order_id", sa.Uuid(), nullable=True),
        sa.Column("first_order_day", sa.Date(), nullable=True),
        sa.Column("first_owner_id", sa.Uuid(), nullable=True),
        sa.Column("first_team_id", sa.Uuid(), nullable=True),
        sa.Column("first_region", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        schema="analytics",
    )
    op.create_index(
        "ix_customers_created_day", "customers", ["created_day"], unique=False, schema="analytics"
    )
    op.create_index(
        "ix_customers_first_order_day",
        "customers",
        ["first_order_day"],
        unique=False,
        schema="analytics",
    )
    op.create_index(
        "ix_customers_owner_id", "customers", ["owner_id"], unique=False, schema="analytics"
    )
    op.create_table(
        "daily_company",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("new_customers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("developed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("effective_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("order_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_fulfilled", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "sales_amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "gross_profit", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "paid_on_orders", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "collected", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column("undeveloped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("a_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_daily_company")),
        schema="analytics",
    )
    op.create_table(
        "daily_regions",
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("new_customers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("developed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("effective_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("order_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_fulfilled", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "sales_amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "gross_profit", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "paid_on_orders", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "collected", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column("undeveloped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("a_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("region", "day", name=op.f("pk_daily_regions")),
        schema="analytics",
    )
    op.create_table(
        "daily_reps",
        sa.Column("rep_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("new_customers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("developed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("effective_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("order_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_fulfilled", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "sales_amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "gross_profit", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "paid_on_orders", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "collected", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column("undeveloped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("a_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("rep_id", "day", name=op.f("pk_daily_reps")),
        schema="analytics",
    )
    op.create_table(
        "daily_teams",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("new_customers", sa.Integer(), server_default="0", nullable=False),
        sa.Column("developed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("effective_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("order_visits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("plan_fulfilled", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "sales_amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "gross_profit", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "paid_on_orders", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "collected", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column("undeveloped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("a_level", sa.Integer(), server_default="0", nullable=False),
        sa.Column("active", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("team_id", "day", name=op.f("pk_daily_teams")),
        schema="analytics",
    )
    op.create_table(
        "field_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rep_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("severity", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_field_reports")),
        schema="analytics",
    )
    op.create_index(
        "ix_field_reports_kind_day",
        "field_reports",
        ["kind", "day"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_day", sa.Date(), nullable=False),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invalid", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opportunity_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        schema="analytics",
    )
    op.create_index(
        "ix_leads_owner_received_day",
        "leads",
        ["owner_id", "received_day"],
        unique=False,
        schema="analytics",
    )
    op.create_index(
        "ix_leads_received_day", "leads", ["received_day"], unique=False, schema="analytics"
    )
    op.create_index(
        "ix_leads_team_received_day",
        "leads",
        ["team_id", "received_day"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        schema="analytics",
    )
    op.create_index(
        op.f("ix_memberships_team_id"), "memberships", ["team_id"], unique=False, schema="analytics"
    )
    op.create_index(
        op.f("ix_memberships_user_id"), "memberships", ["user_id"], unique=False, schema="analytics"
    )
    op.create_table(
        "opportunities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("won_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("won_day", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opportunities")),
        schema="analytics",
    )
    op.create_index(
        op.f("ix_opportunities_lead_id"),
        "opportunities",
        ["lead_id"],
        unique=False,
        schema="analytics",
    )
    op.create_index(
        "ix_opportunities_won_day", "opportunities", ["won_day"], unique=False, schema="analytics"
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("product", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("order_id", "line", name=op.f("pk_order_lines")),
        schema="analytics",
    )
    op.create_index(
        "ix_order_lines_product", "order_lines", ["product"], unique=False, schema="analytics"
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False),
        sa.Column("gross_profit", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column(
            "paid_amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column("cancelled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("first", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("seq", name=op.f("uq_orders_seq")),
        schema="analytics",
    )
    op.create_index(
        "ix_orders_customer_day",
        "orders",
        ["customer_id", "day", "seq"],
        unique=False,
        schema="analytics",
    )
    op.create_index(
        "ix_orders_day_day",
        "orders",
        ["day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.create_index(
        "ix_orders_owner_day",
        "orders",
        ["owner_id", "day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.create_index(
        "ix_orders_region_day",
        "orders",
        ["region", "day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.create_index(
        "ix_orders_team_day",
        "orders",
        ["team_id", "day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False),
        sa.Column("reversed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        schema="analytics",
    )
    op.create_index(
        "ix_payments_customer_id", "payments", ["customer_id"], unique=False, schema="analytics"
    )
    op.create_index("ix_payments_day", "payments", ["day"], unique=False, schema="analytics")
    op.create_index(
        "ix_payments_order_id", "payments", ["order_id"], unique=False, schema="analytics"
    )
    op.create_table(
        "period_counts",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("visited", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ordering", sa.Integer(), server_default="0", nullable=False),
        sa.Column("repeat", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("kind", "period", name=op.f("pk_period_counts")),
        schema="analytics",
    )
    op.create_table(
        "period_sales",
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("period", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("kind", "period", "customer_id", name=op.f("pk_period_sales")),
        schema="analytics",
    )
    op.create_index(
        "ix_period_sales_top",
        "period_sales",
        ["kind", "period", sa.literal_column("amount DESC"), "customer_id"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "plan_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("rep_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("approved", sa.Boolean(), nullable=False),
        sa.Column("fulfilled_by", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_items")),
        schema="analytics",
    )
    op.create_index("ix_plan_items_day", "plan_items", ["day"], unique=False, schema="analytics")
    op.create_index(
        op.f("ix_plan_items_plan_id"), "plan_items", ["plan_id"], unique=False, schema="analytics"
    )
    op.create_index(
        "ix_plan_items_rep_day", "plan_items", ["rep_id", "day"], unique=False, schema="analytics"
    )
    op.create_index(
        "ix_plan_items_team_day", "plan_items", ["team_id", "day"], unique=False, schema="analytics"
    )
    op.create_table(
        "stage_moves",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("opportunity_id", sa.Uuid(), nullable=False),
        sa.Column("from_stage", sa.Text(), nullable=False),
        sa.Column("to_stage", sa.Text(), nullable=False),
        sa.Column("forward", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_stage_moves")),
        schema="analytics",
    )
    op.create_index("ix_stage_moves_day", "stage_moves", ["day"], unique=False, schema="analytics")
    op.create_table(
        "targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("period_kind", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("scope_key", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("value", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("value >= 0", name=op.f("ck_targets_value")),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["analytics.targets.id"],
            name=op.f("fk_targets_parent_id_targets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_targets")),
        sa.UniqueConstraint(
            "metric",
            "period_kind",
            "period_start",
            "scope",
            "scope_key",
            name=op.f("uq_targets_metric_period_kind_period_start_scope_scope_key"),
        ),
        schema="analytics",
    )
    op.create_index(
        "ix_targets_parent_id", "targets", ["parent_id"], unique=False, schema="analytics"
    )
    op.create_index(
        "ix_targets_scope_period",
        "targets",
        ["scope", "scope_key", "period_kind", "period_start"],
        unique=False,
        schema="analytics",
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rep_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), nullable=True),
        sa.Column("customer_status", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("check_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective", sa.Boolean(), nullable=False),
        sa.Column("order_taken", sa.Boolean(), nullable=False),
        sa.Column(
            "order_amount", sa.Numeric(precision=16, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "collected_amount",
            sa.Numeric(precision=16, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column("plan_item_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visits")),
        schema="analytics",
    )
    op.create_index(
        "ix_visits_customer_day", "visits", ["customer_id", "day"], unique=False, schema="analytics"
    )
    op.create_index(
        "ix_visits_day_day",
        "visits",
        ["day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.create_index(
        "ix_visits_reengaged_day",
        "visits",
        ["day"],
        unique=False,
        schema="analytics",
        postgresql_include=["rep_id", "team_id", "region", "customer_id"],
        postgresql_where=sa.text("customer_status IN ('dormant', 'lost')"),
    )
    op.create_index(
        "ix_visits_region_day",
        "visits",
        ["region", "day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.create_index(
        "ix_visits_rep_day",
        "visits",
        ["rep_id", "day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.create_index(
        "ix_visits_team_day",
        "visits",
        ["team_id", "day"],
        unique=False,
        schema="analytics",
        postgresql_include=["customer_id"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_visits_team_day",
        table_name="visits",
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.drop_index(
        "ix_visits_rep_day",
        table_name="visits",
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.drop_index(
        "ix_visits_region_day",
        table_name="visits",
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.drop_index(
        "ix_visits_reengaged_day",
        table_name="visits",
        schema="analytics",
        postgresql_include=["rep_id", "team_id", "region", "customer_id"],
        postgresql_where=sa.text("customer_status IN ('dormant', 'lost')"),
    )
    op.drop_index(
        "ix_visits_day_day",
        table_name="visits",
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.drop_index("ix_visits_customer_day", table_name="visits", schema="analytics")
    op.drop_table("visits", schema="analytics")
    op.drop_index("ix_targets_scope_period", table_name="targets", schema="analytics")
    op.drop_index("ix_targets_parent_id", table_name="targets", schema="analytics")
    op.drop_table("targets", schema="analytics")
    op.drop_index("ix_stage_moves_day", table_name="stage_moves", schema="analytics")
    op.drop_table("stage_moves", schema="analytics")
    op.drop_index("ix_plan_items_team_day", table_name="plan_items", schema="analytics")
    op.drop_index("ix_plan_items_rep_day", table_name="plan_items", schema="analytics")
    op.drop_index(op.f("ix_plan_items_plan_id"), table_name="plan_items", schema="analytics")
    op.drop_index("ix_plan_items_day", table_name="plan_items", schema="analytics")
    op.drop_table("plan_items", schema="analytics")
    op.drop_index("ix_period_sales_top", table_name="period_sales", schema="analytics")
    op.drop_table("period_sales", schema="analytics")
    op.drop_table("period_counts", schema="analytics")
    op.drop_index("ix_payments_order_id", table_name="payments", schema="analytics")
    op.drop_index("ix_payments_day", table_name="payments", schema="analytics")
    op.drop_index("ix_payments_customer_id", table_name="payments", schema="analytics")
    op.drop_table("payments", schema="analytics")
    op.drop_index(
        "ix_orders_team_day",
        table_name="orders",
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.drop_index(
        "ix_orders_region_day",
        table_name="orders",
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.drop_index(
        "ix_orders_owner_day",
        table_name="orders",
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.drop_index(
        "ix_orders_day_day",
        table_name="orders",
        schema="analytics",
        postgresql_include=["customer_id", "amount", "cancelled", "first"],
    )
    op.drop_index("ix_orders_customer_day", table_name="orders", schema="analytics")
    op.drop_table("orders", schema="analytics")
    op.drop_index("ix_order_lines_product", table_name="order_lines", schema="analytics")
    op.drop_table("order_lines", schema="analytics")
    op.drop_index("ix_opportunities_won_day", table_name="opportunities", schema="analytics")
    op.drop_index(op.f("ix_opportunities_lead_id"), table_name="opportunities", schema="analytics")
    op.drop_table("opportunities", schema="analytics")
    op.drop_index(op.f("ix_memberships_user_id"), table_name="memberships", schema="analytics")
    op.drop_index(op.f("ix_memberships_team_id"), table_name="memberships", schema="analytics")
    op.drop_table("memberships", schema="analytics")
    op.drop_index("ix_leads_team_received_day", table_name="leads", schema="analytics")
    op.drop_index("ix_leads_received_day", table_name="leads", schema="analytics")
    op.drop_index("ix_leads_owner_received_day", table_name="leads", schema="analytics")
    op.drop_table("leads", schema="analytics")
    op.drop_index("ix_field_reports_kind_day", table_name="field_reports", schema="analytics")
    op.drop_table("field_reports", schema="analytics")
    op.drop_table("daily_teams", schema="analytics")
    op.drop_table("daily_reps", schema="analytics")
    op.drop_table("daily_regions", schema="analytics")
    op.drop_table("daily_company", schema="analytics")
    op.drop_index("ix_customers_owner_id", table_name="customers", schema="analytics")
    op.drop_index("ix_customers_first_order_day", table_name="customers", schema="analytics")
    op.drop_index("ix_customers_created_day", table_name="customers", schema="analytics")
    op.drop_table("customers", schema="analytics")
    op.drop_index(
        "ix_customer_versions_customer_day", table_name="customer_versions", schema="analytics"
    )
    op.drop_table("customer_versions", schema="analytics")
