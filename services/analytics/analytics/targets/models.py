"""Targets (目标): a value for one metric, one period (year, quarter, month) and one scope
(company, team, rep, region, product), and the target it was decomposed from."""

from __future__ import annotations

import sqlalchemy as sa

from analytics.models import metadata

TARGETS = sa.Table(
    "targets",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("period_kind", sa.Text, nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    # The rep's or team's id, the region's or product's name; "" for the company.
    sa.Column("scope_key", sa.Text, nullable=False),
    sa.Column(
        "parent_id",
        sa.Uuid,
        sa.ForeignKey("analytics.targets.id", ondelete="CASCADE"),
        nullable=True,
    ),
    # How its value was set: by hand, or by decomposing its parent (even, weights, last_year).
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("value", sa.Numeric(16, 2), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("metric", "period_kind", "period_start", "scope", "scope_key"),
    sa.Index("ix_targets_scope_period", "scope", "scope_key", "period_kind", "period_start"),
    sa.Index("ix_targets_parent_id", "parent_id"),
    sa.CheckConstraint("value >= 0", name="value"),
)
