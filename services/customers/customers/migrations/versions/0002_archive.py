"""The core archive: customers, code counters, history, custody ledger, change requests,
settings and the identity read model.

Revision ID: customers_0002
Revises: customers_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "customers_0002"
down_revision: str | None = "customers_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_change_requests_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
        schema="customers",
    )
    op.create_index(
        "ix_change_requests_customer",
        "change_requests",
        ["customer_id", "created_at"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_change_requests_requested_by",
        "change_requests",
        ["requested_by", "created_at"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_change_requests_team_status",
        "change_requests",
        ["team_id", "status", "created_at"],
        unique=False,
        schema="customers",
    )
    op.create_table(
        "code_counters",
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_code_counters")),
        schema="customers",
    )
    op.create_table(
        "customer_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(), nullable=True),
        sa.Column("actor_kind", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("comment", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_history")),
        schema="customers",
    )
    op.create_index(
        "ix_customer_history_customer",
        "customer_history",
        ["customer_id", "id"],
        unique=False,
        schema="customers",
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("industry", sa.String(), nullable=True),
        sa.Column("address", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("estimated_potential", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("invalid_reason", sa.String(), nullable=True),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("external_ref", sa.String(), nullable=True),
        sa.Column("normalized_phone", sa.String(), nullable=True),
        sa.Column("normalized_email", sa.String(), nullable=True),
        sa.Column("normalized_name", sa.String(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=True),
        sa.Column("updated_by", sa.String(), nullable=True),
        sa.CheckConstraint("level IN ('A', 'B', 'C')", name=op.f("ck_customers_level")),
        sa.CheckConstraint(
            "status IN ('active', 'invalid', 'merged')", name=op.f("ck_customers_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("code", name=op.f("uq_customers_code")),
        schema="customers",
    )
    op.create_index(
        "ix_customers_created", "customers", ["created_at", "id"], unique=False, schema="customers"
    )
    op.create_index(
        "ix_customers_name", "customers", ["name", "id"], unique=False, schema="customers"
    )
    op.create_index(
        "ix_customers_normalized_email",
        "customers",
        ["normalized_email"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_customers_normalized_phone",
        "customers",
        ["normalized_phone"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_customers_owner_created",
        "customers",
        ["owner_id", "created_at", "id"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_customers_owner_region_created",
        "customers",
        ["owner_id", "region", "created_at", "id"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_customers_region_level",
        "customers",
        ["region", "level"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_customers_region_normalized_name",
        "customers",
        ["region", "normalized_name"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_customers_status_not_active",
        "customers",
        ["status"],
        unique=False,
        schema="customers",
        postgresql_where=sa.text("status <> 'active'"),
    )
    op.create_index(
        "ix_customers_tags",
        "customers",
        ["tags"],
        unique=False,
        schema="customers",
        postgresql_using="gin",
    )
    op.create_index(
        "ix_customers_team_created",
        "customers",
        ["team_id", "created_at", "id"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_customers_updated", "customers", ["updated_at", "id"], unique=False, schema="customers"
    )
    op.create_index(
        "uq_customers_source_external_ref",
        "customers",
        ["source", "external_ref"],
        unique=True,
        schema="customers",
        postgresql_where=sa.text("external_ref IS NOT NULL"),
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "directory_users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("manager_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_users")),
        schema="customers",
    )
    op.create_index(
        "ix_directory_users_team_role",
        "directory_users",
        ["team_id", "role"],
        unique=False,
        schema="customers",
    )
    op.create_table(
        "ownership_ledger",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=True),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("actor_id", sa.String(), nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.Column("ended_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ownership_ledger")),
        schema="customers",
    )
    op.create_index(
        "ix_ownership_ledger_customer",
        "ownership_ledger",
        ["customer_id", "started_at"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "ix_ownership_ledger_owner_started",
        "ownership_ledger",
        ["owner_id", "started_at"],
        unique=False,
        schema="customers",
    )
    op.create_index(
        "uq_ownership_ledger_open",
        "ownership_ledger",
        ["customer_id"],
        unique=True,
        schema="customers",
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_table(
        "settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settings")),
        schema="customers",
    )


def downgrade() -> None:
    for table in (
        "settings",
        "ownership_ledger",
        "directory_users",
        "customers",
        "customer_history",
        "code_counters",
        "change_requests",
    ):
        op.drop_table(table, schema="customers")
