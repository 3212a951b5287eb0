"""The visit log (拜访纪要), and each customer's last contact as the log leaves it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from visits.models import metadata, money, timestamps
from visits.plans.models import PLAN_ITEMS, PURPOSES

CHANNELS = ("in_person", "phone", "online")
VISIT_STATUSES = ("planned", "completed", "cancelled")

VISITS = sa.Table(
    "visits",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("rep_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("contact_id", sa.Uuid, nullable=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("plan_item_id", sa.Uuid, sa.ForeignKey(PLAN_ITEMS.c.id), nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("check_in_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("check_out_at", sa.DateTime(timezone=True), nullable=True),
    # The company-time day of the check-in: the day the visit counts for.
    sa.Column("visit_date", sa.Date, nullable=False),
    sa.Column("check_in_lat", sa.Double, nullable=True),
    sa.Column("check_in_lon", sa.Double, nullable=True),
    sa.Column("check_in_accuracy_m", sa.Double, nullable=True),
    sa.Column("distance_m", sa.Double, nullable=True),
    sa.Column("far_from_customer", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("effective", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("order_taken", sa.Boolean, nullable=False, server_default=sa.false()),
    money("order_amount"),
    money("collected_amount"),
    sa.Column("memo", sa.Text, nullable=True),
    sa.Column("next_step", sa.Text, nullable=True),
    sa.Column("next_visit_on", sa.Date, nullable=True),
    sa.Column("expenses", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
    money("expenses_total"),
    sa.Column("competitor_news", sa.Text, nullable=True),
    sa.Column("customer_feedback", sa.Text, nullable=True),
    sa.Column("cancel_reason", sa.Text, nullable=True),
    # The customer as the read model knew it when the visit was logged (for the events).
    sa.Column("customer_status", sa.Text, nullable=False),
    sa.Column("customer_level", sa.Text, nullable=False),
    sa.Column("customer_region", sa.Text, nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_by", sa.Text, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    *timestamps(),
    sa.CheckConstraint(f"status IN {VISIT_STATUSES}", name="status"),
    sa.CheckConstraint(f"channel IN {CHANNELS}", name="channel"),
    sa.CheckConstraint(f"purpose IN {PURPOSES}", name="purpose"),
    sa.CheckConstraint("check_out_at IS NULL OR check_out_at >= check_in_at", name="checkout"),
    sa.CheckConstraint(
        "order_amount >= 0 AND collected_amount >= 0 AND expenses_total >= 0", name="money"
    ),
    # A rep's log by time (a day, a month), and a customer's.
    sa.Index("ix_visits_rep_check_in", "rep_id", "check_in_at", "id"),
    sa.Index("ix_visits_customer_check_in", "customer_id", "check_in_at", "id"),
    # One visit per plan item (a cancelled one frees the item).
    sa.Index(
        "uq_visits_plan_item",
        "plan_item_id",
        unique=True,
        postgresql_where=sa.text("plan_item_id IS NOT NULL AND status <> 'cancelled'"),
    ),
)

# Kept by the log as visits complete (a completed visit is final): what the follow-up list
# needs per customer without reading the log.
LAST_CONTACTS = sa.Table(
    "last_contacts",
    metadata,
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("last_visit_id", sa.Uuid, nullable=False),
    sa.Column("last_visit_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_effective_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_effective_on", sa.Date, nullable=True),
)
