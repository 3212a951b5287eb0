"""What each lead source cost, per month."""

from __future__ import annotations

import sqlalchemy as sa

from opportunities.models import metadata

SOURCE_COSTS = sa.Table(
    "source_costs",
    metadata,
    sa.Column("source", sa.Text, primary_key=True),
    # The month's first day.
    sa.Column("month", sa.Date, primary_key=True),
    sa.Column("amount", sa.Numeric(16, 2), nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.Text),
)
