"""The visit memos read model: what the visits service's `visit.completed` events said."""

from __future__ import annotations

import sqlalchemy as sa

from customers.models import metadata

VISIT_MEMOS = sa.Table(
    "visit_memos",
    metadata,
    sa.Column("visit_id", sa.Uuid, primary_key=True),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("rep_id", sa.Uuid, nullable=True),
    sa.Column("rep_name", sa.Text, nullable=True),
    sa.Column("channel", sa.Text, nullable=True),
    sa.Column("purpose", sa.Text, nullable=True),
    sa.Column("check_in_at", sa.DateTime(timezone=True), nullable=False),
    # The company day of the visit, as the visits service counted it.
    sa.Column("visited_on", sa.Date, nullable=False),
    sa.Column("effective", sa.Boolean, nullable=False),
    sa.Column("memo", sa.Text, nullable=True),
    # A customer's latest visits first, and its last effective one.
    sa.Index("ix_visit_memos_customer_check_in", "customer_id", sa.text("check_in_at DESC")),
    sa.Index(
        "ix_visit_memos_customer_effective",
        "customer_id",
        "visited_on",
        postgresql_where=sa.text("effective"),
    ),
)
