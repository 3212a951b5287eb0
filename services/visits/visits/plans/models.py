"""Daily visit plans (每日拜访计划表) and their items."""

from __future__ import annotations

import sqlalchemy as sa

from visits.models import metadata, timestamps

PLAN_STATUSES = ("draft", "submitted", "approved", "returned")
PURPOSES = (
    "new_development",
    "market_research",
    "collection",
    "service",
    "complaint",
    "order_taking",
    "other",
)

PLANS = sa.Table(
    "visit_plans",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("rep_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("plan_date", sa.Date, nullable=False),
    sa.Column("area", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    # The last decision's comment (why it was returned; a note with an approval).
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_by", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    *timestamps(),
    sa.UniqueConstraint("rep_id", "plan_date"),
    sa.CheckConstraint(f"status IN {PLAN_STATUSES}", name="status"),
    # The approval queue: plans in a state over a range of days, in keyset order.
    sa.Index("ix_visit_plans_status_date", "status", "plan_date", "id"),
    sa.Index("ix_visit_plans_date", "plan_date", "id"),
)

PLAN_ITEMS = sa.Table(
    "visit_plan_items",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("plan_id", sa.Uuid, sa.ForeignKey(PLANS.c.id, ondelete="CASCADE"), nullable=False),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("slot_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("slot_end", sa.DateTime(timezone=True), nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.CheckConstraint("slot_end > slot_start", name="slot_order"),
    sa.CheckConstraint(f"purpose IN {PURPOSES}", name="purpose"),
    sa.Index("ix_visit_plan_items_plan_slot", "plan_id", "slot_start"),
)
