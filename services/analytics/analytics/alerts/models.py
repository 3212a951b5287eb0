"""Insight alerts and the rules that raise them, kept as data.

- `alert_rules`: one row per rule for the company (`scope_key` ""), and a team's override of
  it (`scope_key` the team's id): whether it runs and its thresholds. The migration seeds the
  company's rows with the defaults of `alerts.rules`.
- `alerts`: what a rule found about one subject (a rep, a customer, a region, an opportunity),
  with the figures that triggered it. While an alert is not resolved it is the only one of its
  rule and subject (a partial unique index): evaluating again refreshes its figures, never
  raises a second. It resolves itself when the condition ends; a manager's decision
  (acknowledged or dismissed, with a note) stays on it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from analytics.models import metadata

ALERT_RULES = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("rule", sa.Text, primary_key=True),
    # "" for the company's rule, a team's id for that team's override.
    sa.Column("scope_key", sa.Text, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("thresholds", JSONB, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_by", sa.Text, nullable=True),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

ALERTS = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.func.gen_random_uuid()),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("subject_kind", sa.Text, nullable=False),
    # The rep's, customer's or opportunity's id, the region's name.
    sa.Column("subject_id", sa.Text, nullable=False),
    # Whose alert it is: the rep it is about, or the owner of its customer or opportunity, and
    # their team (what a rep's and a manager's view reads).
    sa.Column("rep_id", sa.Uuid, nullable=True),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("customer_id", sa.Uuid, nullable=True),
    sa.Column("region", sa.Text, nullable=True),
    sa.Column("figures", JSONB, nullable=False),
    # open, acknowledged, dismissed, resolved
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    # When an evaluation last found the condition holding (an evaluation resolves the alerts
    # of its subjects it did not find again).
    sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decision", sa.Text, nullable=True),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Index(
        "uq_alerts_live_rule_subject",
        "rule",
        "subject_kind",
        "subject_id",
        unique=True,
        postgresql_where=sa.text("resolved_at IS NULL"),
    ),
    sa.Index("ix_alerts_raised", "raised_at", "id"),
    sa.Index("ix_alerts_rep_raised", "rep_id", "raised_at", "id"),
    sa.Index("ix_alerts_team_raised", "team_id", "raised_at", "id"),
    sa.Index("ix_alerts_customer", "customer_id", postgresql_where=sa.text("resolved_at IS NULL")),
    sa.CheckConstraint(
        "status IN ('open', 'acknowledged', 'dismissed', 'resolved')", name="status"
    ),
)
