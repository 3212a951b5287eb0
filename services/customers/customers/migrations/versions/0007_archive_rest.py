"""The rest of the archive: dormant and lost customers, level and status since when, the last
order date, data quality kept on the record, the product catalogue, cancelled orders and
reversed payments.

Existing rows: a customer's status and level hold since its creation, its content changed when
it was last updated, its last order date comes from its orders, and its data-quality score is
due at once (the service's quality pass computes it).

Revision ID: customers_0007_archive_rest
Revises: customers_0006_requests
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "customers_0007_archive_rest"
down_revision: str | None = "customers_0006_requests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "customers"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # --- customers: lifecycle, since-when, last order, data quality ---------------------------
    op.drop_constraint(op.f("ck_customers_status"), "customers", schema=S, type_="check")
    op.create_check_constraint(
        op.f("ck_customers_status"),
        "customers",
        "status IN ('active', 'dormant', 'lost', 'invalid', 'merged')",
        schema=S,
    )
    # Server defaults too, for rows written outside the service (a bulk load): their score is
    # due at once, so the quality pass computes it.
    now = sa.text("now()")
    for name, type_, default in (
        ("status_since", TS, now),
        ("lost_reason", sa.Text(), None),
        ("lost_competitor", sa.Text(), None),
        ("level_since", TS, now),
        ("last_order_date", sa.Date(), None),
        ("content_updated_at", TS, now),
        ("quality_score", sa.SmallInteger(), sa.text("0")),
        ("incomplete", sa.Boolean(), sa.false()),
        ("quality_alert", sa.Boolean(), sa.false()),
        ("quality_due_at", TS, now),
        ("quality", postgresql.JSONB(astext_type=sa.Text()), None),
    ):
        op.add_column(
            "customers",
            sa.Column(
                name,
                type_,
                nullable=default is None or name == "quality_due_at",
                server_default=default,
            ),
            schema=S,
        )
    op.execute(
        "UPDATE customers.customers SET status_since = created_at, level_since = created_at, "
        "content_updated_at = updated_at, "
        "last_order_date = (SELECT max(o.order_date) FROM customers.orders o "
        "WHERE o.customer_id = customers.id)"
    )

    op.drop_index("ix_customers_status_not_active", table_name="customers", schema=S)
    op.create_index(
        "ix_customers_status_created",
        "customers",
        ["status", "created_at", "id"],
        schema=S,
        postgresql_where=sa.text("status <> 'active'"),
    )
    op.create_index(
        "ix_customers_industry_created", "customers", ["industry", "created_at", "id"], schema=S
    )
    op.create_index(
        "ix_customers_active_last_order",
        "customers",
        ["last_order_date"],
        schema=S,
        postgresql_where=sa.text("status = 'active' AND last_order_date IS NOT NULL"),
    )
    op.create_index(
        "ix_customers_incomplete_created",
        "customers",
        ["created_at", "id"],
        schema=S,
        postgresql_where=sa.text("incomplete"),
    )
    op.create_index(
        "ix_customers_live_quality",
        "customers",
        ["quality_score", "id"],
        schema=S,
        postgresql_where=sa.text("status IN ('active', 'dormant', 'lost')"),
    )
    op.create_index(
        "ix_customers_quality_due",
        "customers",
        ["quality_due_at"],
        schema=S,
        postgresql_where=sa.text("quality_due_at IS NOT NULL"),
    )

    # --- orders and payments: cancellation, amendment, reversal -------------------------------
    op.add_column(
        "orders",
        sa.Column("status", sa.Text(), nullable=False, server_default="placed"),
        schema=S,
    )
    op.alter_column("orders", "status", server_default=None, schema=S)
    op.create_check_constraint(
        op.f("ck_orders_status"), "orders", "status IN ('placed', 'cancelled')", schema=S
    )
    op.add_column("orders", sa.Column("cancelled_at", TS, nullable=True), schema=S)
    op.add_column("orders", sa.Column("cancelled_by", sa.Text(), nullable=True), schema=S)
    op.add_column("orders", sa.Column("cancel_reason", sa.Text(), nullable=True), schema=S)
    op.add_column(
        "orders", sa.Column("version", sa.Integer(), nullable=False, server_default="1"), schema=S
    )
    op.alter_column("orders", "version", server_default=None, schema=S)
    op.add_column("orders", sa.Column("updated_at", TS, nullable=True), schema=S)
    op.execute("UPDATE customers.orders SET updated_at = created_at")
    op.alter_column("orders", "updated_at", nullable=False, schema=S)
    op.create_index("ix_orders_date", "orders", ["order_date", "id"], schema=S)

    op.add_column("payments", sa.Column("reversed_at", TS, nullable=True), schema=S)
    op.add_column("payments", sa.Column("reversed_by", sa.Text(), nullable=True), schema=S)
    op.add_column("payments", sa.Column("reverse_reason", sa.Text(), nullable=True), schema=S)

    # --- the product catalogue ----------------------------------------------------------------
    op.create_table(
        "products",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("sku", name=op.f("uq_products_sku")),
        schema=S,
    )
    op.create_index("ix_products_category_sku", "products", ["category", "sku"], schema=S)
    op.create_index("ix_products_created", "products", ["created_at", "id"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_products_created", table_name="products", schema=S)
    op.drop_index("ix_products_category_sku", table_name="products", schema=S)
    op.drop_table("products", schema=S)
    for name in ("reverse_reason", "reversed_by", "reversed_at"):
        op.drop_column("payments", name, schema=S)
    op.drop_index("ix_orders_date", table_name="orders", schema=S)
    op.drop_constraint(op.f("ck_orders_status"), "orders", schema=S, type_="check")
    for name in (
        "updated_at",
        "version",
        "cancel_reason",
        "cancelled_by",
        "cancelled_at",
        "status",
    ):
        op.drop_column("orders", name, schema=S)
    for index in (
        "ix_customers_quality_due",
        "ix_customers_live_quality",
        "ix_customers_incomplete_created",
        "ix_customers_active_last_order",
        "ix_customers_industry_created",
        "ix_customers_status_created",
    ):
        op.drop_index(index, table_name="customers", schema=S)
    op.create_index(
        "ix_customers_status_not_active",
        "customers",
        ["status"],
        schema=S,
        postgresql_where=sa.text("status <> 'active'"),
    )
    op.execute(
        "UPDATE customers.customers SET status = 'active' WHERE status IN ('dormant', 'lost')"
    )
    op.drop_constraint(op.f("ck_customers_status"), "customers", schema=S, type_="check")
    op.create_check_constraint(
        op.f("ck_customers_status"),
        "customers",
        "status IN ('active', 'invalid', 'merged')",
        schema=S,
    )
    for name in (
        "quality",
        "quality_due_at",
        "quality_alert",
        "incomplete",
        "quality_score",
        "content_updated_at",
        "last_order_date",
        "level_since",
        "lost_competitor",
        "lost_reason",
        "status_since",
    ):
        op.drop_column("customers", name, schema=S)
