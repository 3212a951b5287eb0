"""Assignment rules: region and/or industry -> team, in order; first match wins."""

from __future__ import annotations

import sqlalchemy as sa

from opportunities.models import metadata

STRATEGIES = ("round_robin", "least_load")
TS = sa.DateTime(timezone=True)

ASSIGNMENT_RULES = sa.Table(
    "assignment_rules",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    # null: any. Region in its normal form (upper case), industry case-folded.
    sa.Column("region", sa.Text),
    sa.Column("industry", sa.Text),
    sa.Column("team_id", sa.Uuid, nullable=False),
    sa.Column("strategy", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Round robin's place: the rep the rule gave the last lead to.
    sa.Column("last_owner_id", sa.Uuid),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.CheckConstraint("strategy IN ('round_robin', 'least_load')", name="strategy"),
    sa.Index("ix_assignment_rules_position", "position", "id"),
)
