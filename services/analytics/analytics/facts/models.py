"""The facts the other apps' feeds bring, as analytics keeps them (its read models).

Each fact keeps the attribution it carried when it happened (rep, team, region: the event's),
its company day (fixed when it is applied, in the company's time zone) and what the KPIs
read. Nothing here is edited by hand: the feeds fill it, and a replay from zero refills it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from analytics.models import metadata, money


def _attribution(prefix: str = "") -> list[sa.Column[object]]:
    return [
        sa.Column(f"{prefix}owner_id" if prefix else "owner_id", sa.Uuid, nullable=True),
        sa.Column(f"{prefix}team_id", sa.Uuid, nullable=True),
        sa.Column(f"{prefix}region", sa.Text, nullable=True),
    ]


# The customer as it stands now, with what its history decides: how it was created (for
# new_customers) and its first-ever order (developed_customers, repeat purchases).
CUSTOMERS = sa.Table(
    "customers",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("code", sa.Text, nullable=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("owner_id", sa.Uuid, nullable=True),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("region", sa.Text, nullable=True),
    sa.Column("level", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.Column("data_incomplete", sa.Boolean, nullable=False, server_default=sa.false()),
    # The data-quality score the customers service last announced (with data_incomplete).
    sa.Column("quality_score", sa.SmallInteger, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_day", sa.Date, nullable=True),
    *_attribution("created_"),
    sa.Column("first_order_id", sa.Uuid, nullable=True),
    sa.Column("first_order_day", sa.Date, nullable=True),
    *_attribution("first_"),
    # The day of its latest completed visit (null: never visited), kept as the visits arrive
    # so that a rep's neglected customers are read from their rows, not their visits.
    sa.Column("last_visit_day", sa.Date, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_customers_created_day", "created_day"),
    sa.Index("ix_customers_first_order_day", "first_order_day"),
    # A rep's book of customers from the index alone: the rep's alert rules read every
    # customer of the rep per event, and a rep's rows lie one to a page across the table.
    # The table's autovacuum runs often (migration 0009) so that the pages of customers
    # visited since stay few: those are read from the table.
    sa.Index(
        "ix_customers_owner_id",
        "owner_id",
        postgresql_include=["level", "status", "last_visit_day", "region", "id"],
    ),
)
# Every state the customer went through: owner, team, region, level and status from a moment
# on (`seq` orders two states of one moment as the feed did).
CUSTOMER_VERSIONS = sa.Table(
    "customer_versions",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    *_attribution(),
    sa.Column("level", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Index("ix_customer_versions_customer_day", "customer_id", "day", "seq"),
)

ORDERS = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    # The order in which the feed brought orders: of two orders of one day, the earlier.
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    *_attribution(),
    money("amount"),
    money("gross_profit", nullable=True),
    money("paid_amount"),
    sa.Column("cancelled", sa.Boolean, nullable=False, server_default=sa.false()),
    # The customer's first-ever order (not cancelled): every other order repeats a purchase.
    sa.Column("first", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_orders_customer_day", "customer_id", "day", "seq"),
    # Each customer's live order days in order, from the index alone (churn risk's rhythm).
    sa.Index(
        "ix_orders_live_customer_day",
        "customer_id",
        "day",
        postgresql_where=sa.text("NOT cancelled"),
    ),
    # A scope's orders of a period, answered from the index alone.
    *[
        sa.Index(
            f"ix_orders_{name}_day",
            *key,
            "day",
            postgresql_include=["customer_id", "amount", "cancelled", "first"],
        )
        for name, key in (
            ("day", ()),
            ("owner", ("owner_id",)),
            ("team", ("team_id",)),
            ("region", ("region",)),
        )
    ],
)

ORDER_LINES = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.Uuid, primary_key=True),
    sa.Column("line", sa.Integer, primary_key=True),
    sa.Column("product", sa.Text, nullable=False),
    money("amount"),
    sa.Index("ix_order_lines_product", "product"),
)

PAYMENTS = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("order_id", sa.Uuid, nullable=False),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    *_attribution(),
    money("amount"),
    sa.Column("reversed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_payments_order_id", "order_id"),
    sa.Index("ix_payments_customer_id", "customer_id"),
    sa.Index("ix_payments_day", "day"),
)

# Completed visits only (a completed visit is final in the visits service).
VISITS = sa.Table(
    "visits",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("rep_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("region", sa.Text, nullable=True),
    sa.Column("level", sa.Text, nullable=True),
    # The customer's status when it was visited: dormant or lost makes it a re-engagement.
    sa.Column("customer_status", sa.Text, nullable=True),
    sa.Column("purpose", sa.Text, nullable=True),
    sa.Column("channel", sa.Text, nullable=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("check_in_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("effective", sa.Boolean, nullable=False),
    sa.Column("order_taken", sa.Boolean, nullable=False),
    money("order_amount"),
    money("collected_amount"),
    sa.Column("plan_item_id", sa.Uuid, nullable=True),
    # What the rep heard (the weekly report's competitor news and customer feedback).
    sa.Column("competitor_news", sa.Text, nullable=True),
    sa.Column("customer_feedback", sa.Text, nullable=True),
    # A scope's visits of a period and the customers they saw, from the index alone; a rep's
    # also the regions (the regions a rep neglects, an alert rule).
    *[
        sa.Index(f"ix_visits_{name}_day", *key, "day", postgresql_include=include)
        for name, key, include in (
            ("day", (), ["customer_id"]),
            ("rep", ("rep_id",), ["customer_id", "region"]),
            ("team", ("team_id",), ["customer_id"]),
            ("region", ("region",), ["customer_id"]),
        )
    ],
    sa.Index("ix_visits_customer_day", "customer_id", "day"),
    sa.Index(
        "ix_visits_reengaged_day",
        "day",
        postgresql_include=["rep_id", "team_id", "region", "customer_id"],
        postgresql_where=sa.text("customer_status IN ('dormant', 'lost')"),
    ),
    # A rep's or a team's re-engaging visits of a period, from a small index alone (the
    # company's above holds every scope's: a rep would read them all).
    *[
        sa.Index(
            f"ix_visits_reengaged_{name}_day",
            key,
            "day",
            postgresql_include=["customer_id"],
            postgresql_where=sa.text("customer_status IN ('dormant', 'lost')"),
        )
        for name, key in (("rep", "rep_id"), ("team", "team_id"))
    ],
    # The few visits that brought news or feedback, by team and day.
    sa.Index(
        "ix_visits_remarks_team_day",
        "team_id",
        "day",
        postgresql_where=sa.text("competitor_news IS NOT NULL OR customer_feedback IS NOT NULL"),
    ),
)

# The items of visit plans; only those of approved plans count for plan_adherence.
PLAN_ITEMS = sa.Table(
    "plan_items",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("plan_id", sa.Uuid, nullable=False, index=True),
    sa.Column("rep_id", sa.Uuid, nullable=False),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("customer_id", sa.Uuid, nullable=True),
    sa.Column("purpose", sa.Text, nullable=True),
    sa.Column("approved", sa.Boolean, nullable=False),
    sa.Column("fulfilled_by", sa.Uuid, nullable=True),
    sa.Index("ix_plan_items_rep_day", "rep_id", "day"),
    sa.Index("ix_plan_items_team_day", "team_id", "day"),
    sa.Index("ix_plan_items_day", "day"),
)

LEADS = sa.Table(
    "leads",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("source", sa.Text, nullable=True),
    sa.Column("status", sa.Text, nullable=True),
    *_attribution(),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_day", sa.Date, nullable=False),
    sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("invalid", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("opportunity_id", sa.Uuid, nullable=True),
    sa.Index("ix_leads_received_day", "received_day"),
    sa.Index("ix_leads_owner_received_day", "owner_id", "received_day"),
    sa.Index("ix_leads_team_received_day", "team_id", "received_day"),
)

OPPORTUNITIES = sa.Table(
    "opportunities",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("lead_id", sa.Uuid, nullable=True, index=True),
    sa.Column("customer_id", sa.Uuid, nullable=True),
    *_attribution(),
    sa.Column("source", sa.Text, nullable=True),
    money("amount", nullable=True),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("won_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("won_day", sa.Date, nullable=True),
    # The next action the rep set and when it is due (the next visit plan's suggestions).
    sa.Column("next_action", sa.Text, nullable=True),
    sa.Column("next_action_on", sa.Date, nullable=True),
    sa.Index("ix_opportunities_won_day", "won_day"),
    sa.Index("ix_opportunities_owner_next_action_on", "owner_id", "next_action_on"),
)

# Every move of an opportunity from one stage to another (stage_conversion).
STAGE_MOVES = sa.Table(
    "stage_moves",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("opportunity_id", sa.Uuid, nullable=False),
    sa.Column("from_stage", sa.Text, nullable=False),
    sa.Column("to_stage", sa.Text, nullable=False),
    sa.Column("forward", sa.Boolean, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    *_attribution(),
    sa.Index("ix_stage_moves_day", "day"),
)

# Daily reports, complaints and market reports as the visits feed announces them (kept for
# the weekly report: competitor news, abnormal customers, next steps).
FIELD_REPORTS = sa.Table(
    "field_reports",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("rep_id", sa.Uuid, nullable=True),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("customer_id", sa.Uuid, nullable=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("status", sa.Text, nullable=True),
    sa.Column("severity", sa.Text, nullable=True),
    sa.Column("data", JSONB, nullable=False),
    # A daily report's competitor information and customer feedback, kept when a later event
    # of the report (its sign-off) does not repeat them.
    sa.Column("competitor_news", sa.Text, nullable=True),
    sa.Column("customer_feedback", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_field_reports_kind_day", "kind", "day"),
    sa.Index("ix_field_reports_kind_team_day", "kind", "team_id", "day"),
)

# Every step of a complaint or market report (raised, resolved, closed, reopened), on the day
# it happened: the complaints opened and resolved in a week, however they stand now.
CASE_STEPS = sa.Table(
    "case_steps",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("case_id", sa.Uuid, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("rep_id", sa.Uuid, nullable=True),
    sa.Column("team_id", sa.Uuid, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Index("ix_case_steps_team_day", "team_id", "day"),
    sa.Index("ix_case_steps_case_id", "case_id"),
)

# Who was a member of which team, and as what, from when to when (the identity feed's
# changes; a user's first known membership holds from the beginning): the reps a team or the
# company had during a period.
MEMBERSHIPS = sa.Table(
    "memberships",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Uuid, nullable=False, index=True),
    sa.Column("team_id", sa.Uuid, nullable=True, index=True),
    sa.Column("role", sa.Text, nullable=True),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
    sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
)
