"""Commerce: contacts, orders, payments.

Revision ID: customers_0003
Revises: customers_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "customers_0003"
down_revision: str | None = "customers_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = "customers"


def _money(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.Numeric(14, 2), nullable=nullable)


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("is_decision_maker", sa.Boolean(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["customer_id"], [f"{S}.customers.id"], name=op.f("fk_contacts_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        schema=S,
    )
    op.create_index(op.f("ix_contacts_customer_id"), "contacts", ["customer_id"], schema=S)
    op.create_index(
        "uq_contacts_primary_per_customer",
        "contacts",
        ["customer_id"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("is_primary"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=False),
        _money("amount"),
        _money("gross_profit", nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=True),
        _money("paid_amount"),
        sa.Column("created_by", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("paid_amount <= amount", name=op.f("ck_orders_not_overpaid")),
        sa.CheckConstraint("amount >= 0 AND paid_amount >= 0", name=op.f("ck_orders_non_negative")),
        sa.ForeignKeyConstraint(
            ["customer_id"], [f"{S}.customers.id"], name=op.f("fk_orders_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("source", "external_ref", name="uq_orders_source_external_ref"),
        schema=S,
    )
    op.create_index(
        "ix_orders_customer_date", "orders", ["customer_id", "order_date", "id"], schema=S
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        _money("amount"),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("method", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("external_ref", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payments_positive")),
        sa.ForeignKeyConstraint(
            ["order_id"], [f"{S}.orders.id"], name=op.f("fk_payments_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            [f"{S}.customers.id"],
            name=op.f("fk_payments_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("source", "external_ref", name="uq_payments_source_external_ref"),
        schema=S,
    )
    op.create_index(op.f("ix_payments_order_id"), "payments", ["order_id"], schema=S)
    op.create_index(op.f("ix_payments_customer_id"), "payments", ["customer_id"], schema=S)


def downgrade() -> None:
    op.drop_table("payments", schema=S)
    op.drop_table("orders", schema=S)
    op.drop_table("contacts", schema=S)
