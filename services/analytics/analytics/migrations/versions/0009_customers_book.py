"""A rep's customers read from the owner index alone: `ix_customers_owner_id` includes what the
rep's alert rules read of each customer (level, status, last visit, region, id), so that an
event's evaluation reads a few index pages instead of one table page per customer. The
customers' table is vacuumed after 0.2 % of its rows changed (PostgreSQL's default: 20 %), so
that the pages changed since the last vacuum (whose rows the index alone cannot vouch for, and
which are then read from the table) stay few.

Revision ID: analytics_0009
Revises: analytics_0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "analytics_0009"
down_revision: str | None = "analytics_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOOK = ["level", "status", "last_visit_day", "region", "id"]


def upgrade() -> None:
    op.drop_index("ix_customers_owner_id", table_name="customers", schema="analytics")
    op.create_index(
        "ix_customers_owner_id",
        "customers",
        ["owner_id"],
        schema="analytics",
        postgresql_include=BOOK,
    )
    op.execute("ALTER TABLE analytics.customers SET (autovacuum_vacuum_scale_factor = 0.002)")


def downgrade() -> None:
    op.execute("ALTER TABLE analytics.customers RESET (autovacuum_vacuum_scale_factor)")
    op.drop_index("ix_customers_owner_id", table_name="customers", schema="analytics")
    op.create_index("ix_customers_owner_id", "customers", ["owner_id"], schema="analytics")
