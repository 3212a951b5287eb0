"""Each customer's last completed visit kept on its row (`customers.last_visit_day`, set by
the visits feed as visits arrive): a rep's alert rules read their customers' rows instead of
each customer's visits. Filled here from the visits already applied. And each customer's live
order days as an index (`ix_orders_live_customer_day`): churn risk reads them in order
instead of sorting every order. A rep's visits index includes their region: the regions a rep
visited are read from it alone.

Revision ID: analytics_0007
Revises: analytics_0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "analytics_0007"
down_revision: str | None = "analytics_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customers", sa.Column("last_visit_day", sa.Date(), nullable=True), schema="analytics"
    )
    customers = sa.table(
        "customers", sa.column("id"), sa.column("last_visit_day"), schema="analytics"
    )
    visits = sa.table("visits", sa.column("customer_id"), sa.column("day"), schema="analytics")
    latest = (
        sa.select(visits.c.customer_id, sa.func.max(visits.c.day).label("day"))
        .group_by(visits.c.customer_id)
        .subquery("latest")
    )
    op.execute(
        sa.update(customers)
        .where(customers.c.id == latest.c.customer_id)
        .values(last_visit_day=latest.c.day)
    )
    # A rep's visits with their region, from the index alone.
    op.drop_index("ix_visits_rep_day", table_name="visits", schema="analytics")
    op.create_index(
        "ix_visits_rep_day",
        "visits",
        ["rep_id", "day"],
        schema="analytics",
        postgresql_include=["customer_id", "region"],
    )
    op.create_index(
        "ix_orders_live_customer_day",
        "orders",
        ["customer_id", "day"],
        schema="analytics",
        postgresql_where=sa.text("NOT cancelled"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_live_customer_day", table_name="orders", schema="analytics")
    op.drop_index("ix_visits_rep_day", table_name="visits", schema="analytics")
    op.create_index(
        "ix_visits_rep_day",
        "visits",
        ["rep_id", "day"],
        schema="analytics",
        postgresql_include=["customer_id"],
    )
    op.drop_column("customers", "last_visit_day", schema="analytics")
